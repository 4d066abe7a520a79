"""The mobile ops as compositions of standard Keras layers (for stand-alone models).

Every convolution is a plain `Conv2D` / `DepthwiseConv2D` without bias followed by
`BatchNormalization` and a separate activation layer, so the TFLite converter folds the batch
norm into the kernel and fuses ReLU/ReLU6 into the convolution. Layer names extend a prefix
derived from the spec path (e.g. 'blocks_3_layers_1' + '_expand'), so weights can be copied
from a supernet by name.
"""

import dataclasses

import keras

from tunas_tf.errors import UserError
from tunas_tf.layers import initializers
from tunas_tf.layers.activations import activation_layer
from tunas_tf.layers.squeeze_excite import SqueezeExcite

DEFAULT_WEIGHT_DECAY = 4e-5


@dataclasses.dataclass(frozen=True)
class ConvOptions:
  """Settings shared by every convolution of a model.

  Attributes:
    weight_decay: TuNAS weight decay; kernels get L2(weight_decay / 2), 0 disables it.
    batch_norm_epsilon: batch norm epsilon (TuNAS: 1e-3).
    batch_norm_momentum: moving-average momentum of the batch norm statistics.
  """
  weight_decay: float = DEFAULT_WEIGHT_DECAY
  batch_norm_epsilon: float = 1e-3
  batch_norm_momentum: float = 0.99

  def __post_init__(self):
    if not isinstance(self.weight_decay, (int, float)) or self.weight_decay < 0:
      raise UserError(f'weight_decay must be a number >= 0, got {self.weight_decay!r}')
    if not self.batch_norm_epsilon > 0:
      raise UserError(f'batch_norm_epsilon must be > 0, got {self.batch_norm_epsilon!r}')
    if not 0 <= self.batch_norm_momentum < 1:
      raise UserError(f'batch_norm_momentum must be in [0, 1), got {self.batch_norm_momentum!r}')

  def batch_norm(self, name: str) -> keras.layers.BatchNormalization:
    return keras.layers.BatchNormalization(epsilon=self.batch_norm_epsilon,
                                           momentum=self.batch_norm_momentum, name=name)


def _maybe_activation(x, activation: str, name: str):
  return activation_layer(activation, name)(x) if activation else x


def conv_bn(x, filters: int, kernel_size: int, strides: int, activation: str,
            options: ConvOptions, name: str, use_batch_norm: bool = True):
  """k×k conv ('same' padding) + batch norm + activation; with no batch norm the conv has a bias.

  Layers: `name` (Conv2D), `name`_bn, `name`_act.
  """
  x = keras.layers.Conv2D(filters, kernel_size, strides=strides, padding='same',
                          use_bias=not use_batch_norm,
                          kernel_initializer=initializers.conv_initializer(),
                          kernel_regularizer=initializers.kernel_regularizer(options.weight_decay),
                          name=name)(x)
  if use_batch_norm:
    x = options.batch_norm(f'{name}_bn')(x)
  return _maybe_activation(x, activation, f'{name}_act')


def depthwise_bn(x, kernel_size: int, strides: int, activation: str, options: ConvOptions,
                 name: str):
  """Depthwise k×k conv + batch norm + activation. Layers: `name`, `name`_bn, `name`_act."""
  x = keras.layers.DepthwiseConv2D(
      kernel_size, strides=strides, padding='same', use_bias=False,
      depthwise_initializer=initializers.depthwise_initializer(),
      depthwise_regularizer=initializers.kernel_regularizer(options.weight_decay), name=name)(x)
  x = options.batch_norm(f'{name}_bn')(x)
  return _maybe_activation(x, activation, f'{name}_act')


def squeeze_excite(x, hidden_filters: int, options: ConvOptions, name: str):
  """TuNAS squeeze-and-excite (ReLU inside, sigmoid gate) as one `SqueezeExcite` layer."""
  return SqueezeExcite(hidden_filters, 'relu', 'sigmoid',
                       kernel_initializer=initializers.conv_initializer(),
                       kernel_regularizer=initializers.kernel_regularizer(options.weight_decay),
                       name=name)(x)


def separable_conv(x, output_filters: int, kernel_size: int, strides: int, activation: str,
                   options: ConvOptions, name: str):
  """Depthwise k×k + BN + activation, then 1×1 conv + BN (TuNAS `SeparableConvSpec`).

  Layers: `name`_dw (+ _bn, _act), `name`_project (+ _bn).
  """
  x = depthwise_bn(x, kernel_size, strides, activation, options, f'{name}_dw')
  return conv_bn(x, output_filters, 1, 1, '', options, f'{name}_project')


def inverted_bottleneck(x, expanded_filters: int, output_filters: int, kernel_size: int,
                        strides: int, activation: str, se_filters: int, options: ConvOptions,
                        name: str):
  """Inverted bottleneck (TuNAS `_build_depthwise_bottleneck`), without the residual.

  1×1 expand + BN + act, depthwise k×k (stride) + BN + act, squeeze-and-excite when
  `se_filters` > 0, 1×1 project + BN without activation. The expand conv is always present,
  even when `expanded_filters` equals the input width (as in TuNAS).

  Layers: `name`_expand, `name`_dw, `name`_se, `name`_project (each with _bn / _act).

  References:
    Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018,
    section 3.3; Howard et al., "Searching for MobileNetV3", ICCV 2019, section 5.
  """
  x = conv_bn(x, expanded_filters, 1, 1, activation, options, f'{name}_expand')
  x = depthwise_bn(x, kernel_size, strides, activation, options, f'{name}_dw')
  if se_filters:
    x = squeeze_excite(x, se_filters, options, f'{name}_se')
  return conv_bn(x, output_filters, 1, 1, '', options, f'{name}_project')
