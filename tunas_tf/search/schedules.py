"""Schedules as pure functions of the step (TuNAS `custom_layers` and `mobile_architecture_search`).

They are written with `keras.ops`, so the same formula serves Python numbers in tests and
tensors inside a compiled training step.
"""

import math

import keras
from keras import ops


def _as_float(step):
  return ops.cast(step, 'float32')


def linear_decay(step, decay_steps: int):
  """max(0, 1 - step / decay_steps): the op/filter warmup probability p(t); 0 if no warmup."""
  if decay_steps <= 0:
    return ops.zeros((), 'float32')
  return ops.maximum(0.0, 1.0 - _as_float(step) / float(decay_steps))


def cosine_decay_with_linear_warmup(step, total_steps: int, warmup_steps: int,
                                    peak: float, final: float = 0.0):
  """Linear rise from 0 to `peak` over `warmup_steps`, then cosine decay to `final`."""
  step = _as_float(step)
  warm = peak * step / float(max(warmup_steps, 1))
  span = float(max(total_steps - warmup_steps, 1))
  progress = ops.clip((step - warmup_steps) / span, 0.0, 1.0)
  cosine = final + (peak - final) * 0.5 * (1.0 + ops.cos(math.pi * progress))
  return ops.where(step < warmup_steps, warm, cosine)


def exponential_rl_learning_rate(step, total_steps: int, delay_steps: int, base: float):
  """TuNAS RL rate: 0 before `delay_steps`, then base * 10^progress (x10 by the last step)."""
  step = _as_float(step)
  progress = ops.maximum(0.0, (step - delay_steps) / float(max(1, total_steps - delay_steps)))
  on = ops.cast(step >= delay_steps, 'float32')
  return base * on * ops.power(10.0, progress)


@keras.saving.register_keras_serializable(package='tunas_tf')
class CosineWithWarmup(keras.optimizers.schedules.LearningRateSchedule):
  """`cosine_decay_with_linear_warmup` of the optimizer's step, as a Keras schedule."""

  def __init__(self, peak: float, total_steps: int, warmup_steps: int):
    self.peak, self.total_steps, self.warmup_steps = peak, total_steps, warmup_steps

  def __call__(self, step):
    return cosine_decay_with_linear_warmup(step, self.total_steps, self.warmup_steps, self.peak)

  def get_config(self):
    return {'peak': self.peak, 'total_steps': self.total_steps,
            'warmup_steps': self.warmup_steps}


@keras.saving.register_keras_serializable(package='tunas_tf')
class ExponentialRL(keras.optimizers.schedules.LearningRateSchedule):
  """`exponential_rl_learning_rate` of the optimizer's step, as a Keras schedule."""

  def __init__(self, base: float, total_steps: int, delay_steps: int):
    self.base, self.total_steps, self.delay_steps = base, total_steps, delay_steps

  def __call__(self, step):
    return exponential_rl_learning_rate(step, self.total_steps, self.delay_steps, self.base)

  def get_config(self):
    return {'base': self.base, 'total_steps': self.total_steps,
            'delay_steps': self.delay_steps}
