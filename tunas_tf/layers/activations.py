"""Activations of the mobile search spaces, by their spec names (`tunas_tf.space.specs`)."""

import keras
from keras import ops

from tunas_tf.errors import unknown_name
from tunas_tf.space import specs


@keras.saving.register_keras_serializable(package='tunas_tf')
class HardSwish(keras.layers.Layer):
  """Hard swish, `x * relu6(x + 3) / 6` (TuNAS's `Swish6`).

  Written as `x * relu6(x + 3) * (1/6)`, the form the TFLite converter fuses into a single
  HARD_SWISH op.

  Args:
    **kwargs: base `keras.layers.Layer` arguments (name, dtype...).

  Call arguments:
    inputs: a tensor of any shape.

  Returns:
    A tensor of the same shape.

  References:
    Howard et al., "Searching for MobileNetV3", ICCV 2019, section 5.2 (h-swish);
    Bender et al., "Can weight sharing outperform random architecture search?" (TuNAS), CVPR
    2020, section 4 (the MobileNetV3-Like space).
  """

  def __init__(self, **kwargs):
    super().__init__(**kwargs)

  def call(self, inputs):
    return inputs * ops.relu6(inputs + 3.0) * (1.0 / 6.0)

  def compute_output_shape(self, input_shape):
    return input_shape


def activation_layer(activation: str, name: str) -> keras.layers.Layer:
  """A Keras layer computing the spec activation `activation` ('relu', 'relu6', ...).

  Args:
    activation: one of `specs.ACTIVATIONS` (not '': callers skip the layer for no activation).
    name: the Keras layer name.
  """
  if activation == specs.RELU:
    return keras.layers.ReLU(name=name)
  if activation == specs.RELU6:
    return keras.layers.ReLU(max_value=6.0, name=name)
  if activation == specs.HSWISH:
    return HardSwish(name=name)
  if activation == specs.SIGMOID:
    return keras.layers.Activation('sigmoid', name=name)
  raise unknown_name('activation', activation, specs.ACTIVATIONS)
