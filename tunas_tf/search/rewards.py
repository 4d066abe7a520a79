"""TuNAS rewards, the zero-debiased moving-average baseline and the REINFORCE loss.

References (anchors/tunas.md Sec. 3; paper Sec. 4.1, Eq. 1-3): with quality Q (top-1 accuracy
on a validation batch), estimated cost T(alpha), target T0 and exponent beta < 0:

  abs:        Q + beta * |T / T0 - 1|          (TuNAS's default; penalizes any deviation)
  mnas:       Q * (T / T0) ** beta             (MnasNet soft reward)
  mnas_hard:  Q * min((T / T0) ** beta, 1)     (MnasNet hard constraint: no bonus for being fast)

Every reward is a pure function written with `tf` ops, so it serves Python numbers in tests
and tensors inside a compiled step alike.
"""

from typing import Callable, Dict, Tuple

import tensorflow as tf

from tunas_tf.errors import UserError, unknown_name

DEFAULT_COST_EXPONENT = -0.10
DEFAULT_BASELINE_MOMENTUM = 0.95


def _ratio(cost, target):
  cost = tf.convert_to_tensor(cost, tf.float32)
  return cost / tf.convert_to_tensor(target, tf.float32)


def abs_reward(quality, cost, target, exponent=DEFAULT_COST_EXPONENT):
  """TuNAS absolute reward Q + beta * |T / T0 - 1| (Eq. 3 of the paper)."""
  quality = tf.convert_to_tensor(quality, tf.float32)
  return quality + exponent * tf.abs(_ratio(cost, target) - 1.0)


def mnas_reward(quality, cost, target, exponent=DEFAULT_COST_EXPONENT):
  """MnasNet soft reward Q * (T / T0)^beta."""
  quality = tf.convert_to_tensor(quality, tf.float32)
  return quality * tf.pow(_ratio(cost, target), exponent)


def mnas_hard_reward(quality, cost, target, exponent=DEFAULT_COST_EXPONENT):
  """MnasNet hard reward Q * min((T / T0)^beta, 1)."""
  quality = tf.convert_to_tensor(quality, tf.float32)
  return quality * tf.minimum(tf.pow(_ratio(cost, target), exponent), 1.0)


_REWARDS: Dict[str, Callable] = {
    'abs': abs_reward,
    'mnas': mnas_reward,
    'mnas_hard': mnas_hard_reward,
}


def list_rewards() -> Tuple[str, ...]:
  return tuple(sorted(_REWARDS))


def get_reward(name: str) -> Callable:
  """The reward function `name`; an unknown name raises a UserError listing the known ones."""
  if name not in _REWARDS:
    raise unknown_name('reward', name, _REWARDS)
  return _REWARDS[name]


def check_momentum(momentum) -> float:
  if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not (
      0.0 <= momentum < 1.0):
    raise UserError(f'baseline momentum must be a number in [0, 1), got {momentum!r}')
  return float(momentum)


def ema_update(numerator, denominator, value, momentum):
  """One step of TuNAS's zero-debiased EMA (`custom_layers.update_exponential_moving_average`).

  numerator <- m * numerator + (1 - m) * value; denominator <- m * denominator + (1 - m);
  the average is numerator / denominator. Starting from (0, 0), the first average is exactly
  the first value (no bias towards zero).

  Returns:
    (new numerator, new denominator, new average).
  """
  numerator = momentum * numerator + (1.0 - momentum) * value
  denominator = momentum * denominator + (1.0 - momentum)
  return numerator, denominator, numerator / denominator


class MovingAverageBaseline(tf.Module):
  """The REINFORCE baseline: a zero-debiased EMA of the (cross-replica mean) reward.

  Create it under the strategy scope. `update` may run in a replica context as long as every
  replica passes the same value (the cross-replica mean): the variables keep the first
  replica's write.

  Args:
    momentum: EMA momentum (TuNAS 0.95).
  """

  def __init__(self, momentum: float = DEFAULT_BASELINE_MOMENTUM, name: str = 'baseline'):
    super().__init__(name=name)
    self.momentum = check_momentum(momentum)
    kwargs = dict(trainable=False, dtype=tf.float32,
                  aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    self.numerator = tf.Variable(0.0, name='numerator', **kwargs)
    self.denominator = tf.Variable(0.0, name='denominator', **kwargs)

  def update(self, value) -> tf.Tensor:
    """Folds `value` in and returns the new baseline (the current step included, as TuNAS)."""
    numerator, denominator, average = ema_update(self.numerator, self.denominator,
                                                 tf.convert_to_tensor(value, tf.float32),
                                                 self.momentum)
    self.numerator.assign(numerator)
    self.denominator.assign(denominator)
    return average

  def value(self) -> tf.Tensor:
    """The current baseline (0 before the first update)."""
    return tf.math.divide_no_nan(self.numerator, self.denominator)


def reinforce_loss(advantage, log_prob):
  """REINFORCE surrogate -stop_gradient(advantage) * log_prob; its gradient is the estimator."""
  return -tf.stop_gradient(tf.convert_to_tensor(advantage, tf.float32)) * log_prob
