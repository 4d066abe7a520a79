"""Op warmup and filter warmup (TuNAS section 4.2; `controller._replace_sample_with_probability`).

Early in a search, each decision's sampled one-hot mask is replaced, independently and with a
probability p(t) that falls linearly from 1 to 0 over the warmup, by

* for an op decision: all 1/n (every candidate op runs and the outputs are averaged);
* for a filters decision: the one-hot of the last choice (the largest: our choices are sorted
  ascending), so the rightmost channels are trained as often as the leftmost ones.

p(t) = max(0, 1 - t / W) with W = 25% of the search steps by default. The RL controller is off
during the warmups, so both must end before the RL delay does (TuNAS `run_model` refuses a
longer filter warmup: the shared weights would be trained on other architectures than the
controller's).
"""

import dataclasses
from typing import Optional, Sequence, Tuple, Union

import tensorflow as tf

from tunas_tf.errors import UserError
from tunas_tf.search import schedules
from tunas_tf.space.schema import FILTERS_TAG, OP_TAG

DEFAULT_WARMUP_FRACTION = 0.25


def warmup_steps(total_steps: int, fraction: float = DEFAULT_WARMUP_FRACTION) -> int:
  """int(fraction * total_steps), as TuNAS derives its warmup lengths."""
  return int(fraction * total_steps)


def warmup_probability(step, warmup_length: int):
  """p(t) = max(0, 1 - t / W): the probability of replacing a mask at `step` (0 if W = 0)."""
  return schedules.linear_decay(step, warmup_length)


def _check_steps(name: str, value) -> int:
  if isinstance(value, bool) or not isinstance(value, int) or value < 0:
    raise UserError(f'{name} must be an integer >= 0, got {value!r}')
  return value


@dataclasses.dataclass(frozen=True)
class WarmupSchedule:
  """Lengths of op and filter warmup, checked against the RL controller's delay.

  Attributes:
    ops_warmup_steps: W for op warmup (0 disables it).
    filters_warmup_steps: W for filter warmup (0 disables it).
    rl_delay_steps: steps before the controller starts learning; both warmups must fit in it.
  """
  ops_warmup_steps: int
  filters_warmup_steps: int
  rl_delay_steps: int

  def __post_init__(self):
    for name in ('ops_warmup_steps', 'filters_warmup_steps', 'rl_delay_steps'):
      _check_steps(name, getattr(self, name))
    for name in ('ops_warmup_steps', 'filters_warmup_steps'):
      if getattr(self, name) > self.rl_delay_steps:
        raise UserError(
            f'{name} ({getattr(self, name)}) is longer than rl_delay_steps '
            f'({self.rl_delay_steps}); the warmups must end before the RL controller starts, '
            'otherwise the shared weights train on other architectures than the controller '
            'samples. Shorten the warmup or lengthen the RL delay')

  @classmethod
  def from_fractions(cls, total_steps: int, rl_delay_steps: Optional[int] = None,
                     ops_fraction: float = DEFAULT_WARMUP_FRACTION,
                     filters_fraction: float = DEFAULT_WARMUP_FRACTION) -> 'WarmupSchedule':
    """Warmups of `fraction` * `total_steps`; the RL delay defaults to the longer warmup."""
    _check_steps('total_steps', total_steps)
    for name, fraction in (('ops_fraction', ops_fraction), ('filters_fraction', filters_fraction)):
      if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not (
          0 <= fraction <= 1):
        raise UserError(f'{name} must be a number in [0, 1], got {fraction!r}')
    ops, filters = warmup_steps(total_steps, ops_fraction), warmup_steps(total_steps,
                                                                         filters_fraction)
    delay = max(ops, filters) if rl_delay_steps is None else rl_delay_steps
    return cls(ops, filters, delay)

  def ops_probability(self, step):
    return warmup_probability(step, self.ops_warmup_steps)

  def filters_probability(self, step):
    return warmup_probability(step, self.filters_warmup_steps)


def _as_seed(seed: Union[int, tf.Tensor]) -> tf.Tensor:
  """A [2] int seed for the stateless random ops (an int becomes [seed, 0])."""
  if isinstance(seed, int) and not isinstance(seed, bool):
    return tf.constant([seed, 0], tf.int64)
  seed = tf.convert_to_tensor(seed)
  if seed.shape.rank == 0:
    return tf.stack([tf.cast(seed, tf.int64), tf.constant(0, tf.int64)])
  return seed


def warmup_replacements(space, ops_prob, filters_prob,
                        seed: Union[int, tf.Tensor]) -> tf.Tensor:
  """Which decisions warmup replaces: bool [num_decisions], independently per decision.

  Decision i is replaced when u_i < p, with u_i uniform in [0, 1) from a stateless generator,
  so p = 0 never and p = 1 always replaces, and the same seed gives the same draw (e.g. a seed
  derived from the global step keeps a resumed search reproducible).

  Args:
    space: the `SearchSpace` whose `decisions` the masks follow.
    ops_prob: probability for op decisions (a float or a scalar tensor).
    filters_prob: probability for filters decisions.
    seed: an int, or a [2] (or scalar) integer tensor.
  """
  tags = [d.tag for d in space.decisions]
  if not tags:
    return tf.zeros([0], tf.bool)
  u = tf.random.stateless_uniform([len(tags)], seed=_as_seed(seed))
  is_op = tf.constant([t == OP_TAG for t in tags])
  is_filters = tf.constant([t == FILTERS_TAG for t in tags])
  ops_prob = tf.cast(ops_prob, tf.float32)
  filters_prob = tf.cast(filters_prob, tf.float32)
  return tf.logical_or(tf.logical_and(is_op, u < ops_prob),
                       tf.logical_and(is_filters, u < filters_prob))


def apply_warmup(one_hot_masks: Sequence[tf.Tensor], space, ops_prob, filters_prob,
                 seed: Union[int, tf.Tensor]) -> Tuple[tf.Tensor, ...]:
  """The masks with op and filter warmup applied (works inside a `tf.function`).

  Args:
    one_hot_masks: the sampled masks, one float32 [num_choices] per decision of `space`.
    space: the `SearchSpace`.
    ops_prob: op warmup probability p(t) (e.g. `WarmupSchedule.ops_probability(step)`).
    filters_prob: filter warmup probability.
    seed: see `warmup_replacements`.

  Returns:
    A tuple of masks: each replaced op mask is all 1/n, each replaced filters mask is the
    one-hot of the last (largest) choice; the others are unchanged.
  """
  decisions = space.decisions
  if len(one_hot_masks) != len(decisions):
    raise UserError(f'Space {space.name!r} has {len(decisions)} decisions, got '
                    f'{len(one_hot_masks)} masks')
  replaced = warmup_replacements(space, ops_prob, filters_prob, seed)
  result = []
  for i, (d, mask) in enumerate(zip(decisions, one_hot_masks)):
    mask = tf.convert_to_tensor(mask, tf.float32)
    n = d.num_choices
    if d.tag == OP_TAG:
      warm = tf.fill([n], 1.0 / n)
    else:
      warm = tf.one_hot(n - 1, n, dtype=tf.float32)
    result.append(tf.where(replaced[i], warm, mask))
  return tuple(result)
