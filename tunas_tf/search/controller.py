"""The TuNAS REINFORCE policy: independent categorical logits, one per decision.

TuNAS `controller.independent_sample` (paper Sec. 4; anchors/tunas.md Sec. 3): every `OneOf`
of the space owns a trainable logits vector of shape [num_choices], initialized to zeros (a
uniform policy), named after the decision path. Logits are divided by a temperature.

Hierarchy: a decision under a skipped choice (its `parent` did not pick `parent_choice`) is
*inactive*. Its sample is still drawn (so every replica traces the same graph) but it does not
count in the log-probability or in the entropy, and the most-likely architecture is
canonicalized so that its value is 0.

Two entropies are offered:
  * `sample_entropy(indices)`: TuNAS's logged value, the sum of per-decision entropies over the
    decisions active in one sample;
  * `entropy()`: the exact entropy of the policy's distribution over hierarchically distinct
    architectures, sum_i P(decision i active) * H(p_i) (chain rule). It equals the expectation
    of `sample_entropy` and depends on the logits only, which makes it the better curve to plot.
`flat_entropy()` ignores the hierarchy (sum_i H(p_i) = sum log N at the start).

Randomness is stateless: `sample(seed)` with a [2] int seed, so a step is reproducible from
(run seed, step, replica) and no random state needs checkpointing.
"""

from typing import Dict, List, NamedTuple, Tuple

import numpy as np
import tensorflow as tf

from tunas_tf.errors import UserError
from tunas_tf.space.architecture import Architecture
from tunas_tf.space.search_space import SearchSpace

LOGITS_PREFIX = 'logits'


class Sample(NamedTuple):
  """One architecture drawn from the policy.

  Attributes:
    indices: int32 [num_decisions], the chosen index of every decision (inactive ones too).
    masks: one float32 [num_choices] one-hot tensor per decision, in `space.decisions` order
      (the supernet's `masks` input).
  """
  indices: tf.Tensor
  masks: Tuple[tf.Tensor, ...]


class Controller(tf.Module):
  """Independent categorical distributions over the decisions of a space.

  Create it under the distribution strategy's scope so its logits are mirrored.

  Args:
    space: the search space.
    temperature: logits are divided by it (TuNAS default 1.0); > 0.
  """

  def __init__(self, space: SearchSpace, temperature: float = 1.0,
               name: str = 'controller'):
    super().__init__(name=name)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not (
        temperature > 0):
      raise UserError(f'controller temperature must be a number > 0, got {temperature!r}')
    if not space.decisions:
      raise UserError(f'Search space {space.name!r} has no decisions; there is nothing to search')
    self.space = space
    self.temperature = float(temperature)
    self.logits = [
        tf.Variable(tf.zeros([d.num_choices], tf.float32), name=f'{LOGITS_PREFIX}/{d.path}',
                    trainable=True)
        for d in space.decisions
    ]

  @property
  def num_decisions(self) -> int:
    return len(self.logits)

  def scaled_logits(self) -> List[tf.Tensor]:
    return [tf.convert_to_tensor(v) / self.temperature for v in self.logits]

  def probabilities(self) -> List[tf.Tensor]:
    """Per-decision choice probabilities."""
    return [tf.nn.softmax(l) for l in self.scaled_logits()]

  def sample(self, seed: tf.Tensor) -> Sample:
    """Draws one architecture.

    Args:
      seed: int32/int64 [2] stateless seed (e.g. from `step_seed`).

    Returns:
      A `Sample` (indices and one-hot masks).
    """
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), self.num_decisions)
    indices, masks = [], []
    for i, (d, logits) in enumerate(zip(self.space.decisions, self.scaled_logits())):
      if d.num_choices == 1:
        index = tf.zeros([], tf.int32)  # Nothing to draw; skip the op.
      else:
        index = tf.random.stateless_categorical(logits[tf.newaxis], 1, seeds[i],
                                                dtype=tf.int32)[0, 0]
      indices.append(index)
      masks.append(tf.one_hot(index, d.num_choices, dtype=tf.float32))
    return Sample(tf.stack(indices), tuple(masks))

  def active(self, indices: tf.Tensor) -> tf.Tensor:
    """float32 [num_decisions]: 1 where the decision is active in `indices`, else 0."""
    active: List = [None] * self.num_decisions
    # Post-order: a parent comes after its children, so resolve from the end.
    for d in reversed(self.space.decisions):
      if d.parent is None:
        active[d.index] = tf.constant(True)
      else:
        active[d.index] = tf.logical_and(active[d.parent],
                                         tf.equal(indices[d.parent], d.parent_choice))
    return tf.cast(tf.stack(active), tf.float32)

  def log_prob(self, indices: tf.Tensor, hierarchical: bool = True) -> tf.Tensor:
    """Log-probability of `indices`; with `hierarchical`, inactive decisions are excluded."""
    per_decision = tf.stack([
        tf.gather(tf.nn.log_softmax(l), indices[i])
        for i, l in enumerate(self.scaled_logits())
    ])
    if hierarchical:
      per_decision = per_decision * self.active(indices)
    return tf.reduce_sum(per_decision)

  def decision_entropies(self) -> tf.Tensor:
    """float32 [num_decisions]: the entropy of each decision's distribution."""
    return tf.stack([
        -tf.reduce_sum(tf.nn.softmax(l) * tf.nn.log_softmax(l)) for l in self.scaled_logits()
    ])

  def flat_entropy(self) -> tf.Tensor:
    """Sum of all per-decision entropies, ignoring the hierarchy (sum log N when uniform)."""
    return tf.reduce_sum(self.decision_entropies())

  def sample_entropy(self, indices: tf.Tensor) -> tf.Tensor:
    """TuNAS's hierarchical entropy: per-decision entropies summed over the active decisions."""
    return tf.reduce_sum(self.decision_entropies() * self.active(indices))

  def active_probabilities(self) -> tf.Tensor:
    """float32 [num_decisions]: the probability that each decision is active."""
    probs = self.probabilities()
    p_active: List = [None] * self.num_decisions
    for d in reversed(self.space.decisions):
      if d.parent is None:
        p_active[d.index] = tf.constant(1.0)
      else:
        p_active[d.index] = p_active[d.parent] * probs[d.parent][d.parent_choice]
    return tf.stack(p_active)

  def entropy(self) -> tf.Tensor:
    """Exact entropy of the distribution over hierarchically distinct architectures."""
    return tf.reduce_sum(self.decision_entropies() * self.active_probabilities())

  def most_likely_indices(self) -> np.ndarray:
    """Per-decision argmax of the logits (ties go to the lowest index), not canonicalized."""
    return np.array([int(np.argmax(v.numpy())) for v in self.logits], np.int64)

  def most_likely(self) -> Architecture:
    """The final architecture: per-decision argmax (TuNAS `analyze_mobile_search`), canonical."""
    return self.space.canonical(Architecture(self.space.name,
                                             tuple(self.most_likely_indices())))

  def probabilities_by_path(self) -> Dict[str, np.ndarray]:
    """{decision path: choice probabilities} as numpy arrays (for summaries and reports)."""
    return {d.path: p.numpy() for d, p in zip(self.space.decisions, self.probabilities())}


def step_seed(run_seed: int, step: tf.Tensor, replica_id: tf.Tensor, stream: int = 0) -> tf.Tensor:
  """The stateless [2] seed of one (step, replica, stream): distinct for every combination.

  Args:
    run_seed: the run's seed.
    step: the global step (scalar integer tensor).
    replica_id: the replica index within the sync group.
    stream: distinguishes independent uses within a step (sampling, warmup, ...).
  """
  base = tf.stack([tf.constant(run_seed, tf.int64), tf.cast(step, tf.int64)])
  seed = tf.random.experimental.stateless_fold_in(base, tf.cast(replica_id, tf.int64))
  return tf.random.experimental.stateless_fold_in(seed, tf.constant(stream, tf.int64))

