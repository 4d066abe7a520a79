"""Initializers and regularizers of the TuNAS mobile models (`rematlib/mobile_model_v3.get_model`).

* ordinary convolutions: He normal (truncated normal, scale 2, fan_in = kh·kw·cin);
* depthwise convolutions: TuNAS `depthwise_he_normal`, i.e. the same with fan_in = kh·kw;
* the classifier: N(0, 0.01), no weight decay;
* every other kernel: L2 with factor weight_decay / 2 (TuNAS keeps tf.nn.l2_loss's 1/2).
"""

from typing import Optional

import keras

CLASSIFIER_STDDEV = 0.01


def conv_initializer() -> keras.initializers.Initializer:
  return keras.initializers.VarianceScaling(2.0, 'fan_in', 'truncated_normal')


def depthwise_initializer() -> keras.initializers.Initializer:
  """He normal over a depthwise kernel's kh·kw receptive field.

  Keras computes fans of a depthwise kernel of shape (kh, kw, channels, multiplier) as if it
  were a regular conv kernel: fan_in = kh·kw·channels (wrong by a factor `channels`) and
  fan_out = kh·kw·multiplier. With multiplier 1, 'fan_out' is exactly TuNAS's fan_in = kh·kw.
  """
  return keras.initializers.VarianceScaling(2.0, 'fan_out', 'truncated_normal')


def classifier_initializer() -> keras.initializers.Initializer:
  return keras.initializers.RandomNormal(stddev=CLASSIFIER_STDDEV)


def kernel_regularizer(weight_decay: float) -> Optional[keras.regularizers.Regularizer]:
  """L2(weight_decay / 2) as in TuNAS (`_l2_regularizer`); None when weight_decay is 0."""
  if weight_decay == 0:
    return None
  return keras.regularizers.L2(weight_decay / 2)
