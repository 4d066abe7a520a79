"""The cell-space ops (NAS-Bench-201, DARTS/GDAS, SETN) as compositions of standard Keras layers.

Definitions follow AutoDL's `cell_operations.py` (shared/docs/anchors/cellsearch.md §1.1):

* `nor_conv_kxk` = ReLU → Conv(k) → BN;
* `sep_conv_kxk` = DARTS SepConv: two stacked ReLU → depthwise(k) → 1×1 → BN (only the first
  strided; AutoDL `DualSepConv`);
* `dil_conv_kxk` = ReLU → depthwise(k, dilation 2) → 1×1 → BN;
* `conv_3x1_1x3` (SETN's "1x3 & 3x1 conv") = ReLU → Conv(1×3) → Conv(3×1) → BN;
* pooling 3×3, after a 1×1 ReLU-Conv-BN when the width changes; average pooling excludes
  the padding from the count (PyTorch `count_include_pad=False`): Keras/TF 'same' average
  pooling already divides by the number of valid inputs (checked in tests/test_cell_models.py);
* `skip_connect` = identity, or FactorizedReduce when the stride is 2 or the width changes;
* `none` = zeros (`Zero`).

Padding: every conv and pool uses 'same' padding. For stride 2 on an even map TF pads one
row/column at the end only, where PyTorch's padding=k//2 pads both sides; outputs have the
same shape, the windows are shifted by one pixel. Weights ported from PyTorch models would
need explicit padding; models trained here are unaffected.
"""

from typing import Callable, Dict

import keras

from tunas_tf.errors import unknown_name
from tunas_tf.layers import initializers
from tunas_tf.layers.blocks import ConvOptions

# AutoDL / PyTorch batch norm defaults: epsilon 1e-5, running-average momentum 0.1.
CELL_BATCH_NORM_EPSILON = 1e-5
CELL_BATCH_NORM_MOMENTUM = 0.9
CELL_WEIGHT_DECAY = 5e-4  # NB201 / GDAS SGD weight decay (== L2(wd / 2) on the loss).
FRC_GROUPS = 8  # Groups of the 1×3 / 3×1 convolutions of the GDAS reduction cell.


def cell_conv_options(weight_decay: float = CELL_WEIGHT_DECAY) -> ConvOptions:
  return ConvOptions(weight_decay=weight_decay, batch_norm_epsilon=CELL_BATCH_NORM_EPSILON,
                     batch_norm_momentum=CELL_BATCH_NORM_MOMENTUM)


def _conv(x, filters: int, kernel_size, strides, options: ConvOptions, name: str,
          dilation: int = 1, groups: int = 1, padding: str = 'same'):
  return keras.layers.Conv2D(
      filters, kernel_size, strides=strides, padding=padding, dilation_rate=dilation,
      groups=groups, use_bias=False, kernel_initializer=initializers.conv_initializer(),
      kernel_regularizer=initializers.kernel_regularizer(options.weight_decay), name=name)(x)


def _relu(x, name: str):
  return keras.layers.ReLU(name=name)(x)


def relu_conv_bn(x, filters: int, kernel_size: int, strides: int, options: ConvOptions,
                 name: str, dilation: int = 1):
  """ReLU → Conv(k, stride, dilation) → BN (AutoDL `ReLUConvBN`)."""
  x = _relu(x, f'{name}_relu')
  x = _conv(x, filters, kernel_size, strides, options, f'{name}_conv', dilation)
  return options.batch_norm(f'{name}_bn')(x)


def _relu_sep_bn(x, filters: int, kernel_size: int, strides: int, dilation: int,
                 options: ConvOptions, name: str):
  """ReLU → depthwise(k) → 1×1 → BN (AutoDL `SepConv`, DARTS `DilConv`)."""
  x = _relu(x, f'{name}_relu')
  x = keras.layers.DepthwiseConv2D(
      kernel_size, strides=strides, padding='same', dilation_rate=dilation, use_bias=False,
      depthwise_initializer=initializers.depthwise_initializer(),
      depthwise_regularizer=initializers.kernel_regularizer(options.weight_decay),
      name=f'{name}_depthwise')(x)
  x = _conv(x, filters, 1, 1, options, f'{name}_pointwise')
  return options.batch_norm(f'{name}_bn')(x)


def sep_conv(x, filters: int, kernel_size: int, strides: int, options: ConvOptions, name: str):
  """DARTS `SepConv`: two stacked separable convs, the first strided and keeping the width."""
  x = _relu_sep_bn(x, x.shape[-1], kernel_size, strides, 1, options, f'{name}_a')
  return _relu_sep_bn(x, filters, kernel_size, 1, 1, options, f'{name}_b')


def dil_conv(x, filters: int, kernel_size: int, strides: int, options: ConvOptions, name: str):
  """DARTS `DilConv`: one separable conv with dilation 2."""
  return _relu_sep_bn(x, filters, kernel_size, strides, 2, options, name)


def conv_1x3_3x1(x, filters: int, strides: int, options: ConvOptions, name: str):
  """SETN's '1x3 & 3x1 conv' (AutoDL genotype name `conv_3x1_1x3`, as DARTS's conv_7x1_1x7)."""
  x = _relu(x, f'{name}_relu')
  x = _conv(x, filters, (1, 3), (1, strides), options, f'{name}_conv1x3')
  x = _conv(x, filters, (3, 1), (strides, 1), options, f'{name}_conv3x1')
  return options.batch_norm(f'{name}_bn')(x)


def factorized_reduce(x, filters: int, strides: int, options: ConvOptions, name: str):
  """AutoDL `FactorizedReduce`.

  Stride 2: ReLU, then two 1×1 stride-2 convs (filters // 2 and the rest) on x and on x shifted
  by one pixel (zero-padded at the end, as AutoDL's ConstantPad2d((0, 1, 0, 1))), concatenated,
  BN; so every input pixel reaches the output. Stride 1: 1×1 conv + BN (no ReLU, as AutoDL).
  """
  if strides == 1:
    x = _conv(x, filters, 1, 1, options, f'{name}_conv')
    return options.batch_norm(f'{name}_bn')(x)
  x = _relu(x, f'{name}_relu')
  a = _conv(x, filters // 2, 1, 2, options, f'{name}_conv_a', padding='valid')
  shifted = keras.layers.ZeroPadding2D(((0, 1), (0, 1)), name=f'{name}_pad')(x)
  shifted = keras.layers.Cropping2D(((1, 0), (1, 0)), name=f'{name}_shift')(shifted)
  b = _conv(shifted, filters - filters // 2, 1, 2, options, f'{name}_conv_b', padding='valid')
  x = keras.layers.Concatenate(name=f'{name}_concat')([a, b])
  return options.batch_norm(f'{name}_bn')(x)


def pooling(x, kind: str, filters: int, strides: int, options: ConvOptions, name: str):
  """3×3 'avg' or 'max' pooling; a 1×1 ReLU-Conv-BN first when the width changes."""
  if x.shape[-1] != filters:
    x = relu_conv_bn(x, filters, 1, 1, options, f'{name}_pre')
  layer = keras.layers.AveragePooling2D if kind == 'avg' else keras.layers.MaxPooling2D
  return layer(3, strides=strides, padding='same', name=f'{name}_{kind}pool')(x)


@keras.saving.register_keras_serializable(package='tunas_tf')
class Zero(keras.layers.Layer):
  """The 'none' op: zeros of the op's output shape.

  Args:
    filters: output channels.
    strides: spatial stride (the output has the strided input's size).

  Call arguments:
    inputs: [batch, height, width, channels].
  """

  def __init__(self, filters: int, strides: int = 1, **kwargs):
    super().__init__(**kwargs)
    self.filters = filters
    self.strides = strides

  def call(self, inputs):
    x = inputs[:, ::self.strides, ::self.strides, :1]
    return keras.ops.repeat(keras.ops.zeros_like(x), self.filters, axis=-1)

  def compute_output_shape(self, input_shape):
    batch, h, w, _ = input_shape
    size = lambda d: None if d is None else -(-d // self.strides)
    return (batch, size(h), size(w), self.filters)

  def get_config(self):
    return {**super().get_config(), 'filters': self.filters, 'strides': self.strides}


def skip_connect(x, filters: int, strides: int, options: ConvOptions, name: str):
  if strides == 1 and x.shape[-1] == filters:
    return x
  return factorized_reduce(x, filters, strides, options, name)


_OPS: Dict[str, Callable] = {
    'none': lambda x, f, s, o, n: Zero(f, s, name=f'{n}_zero')(x),
    'skip_connect': skip_connect,
    'nor_conv_1x1': lambda x, f, s, o, n: relu_conv_bn(x, f, 1, s, o, n),
    'nor_conv_3x3': lambda x, f, s, o, n: relu_conv_bn(x, f, 3, s, o, n),
    'avg_pool_3x3': lambda x, f, s, o, n: pooling(x, 'avg', f, s, o, n),
    'max_pool_3x3': lambda x, f, s, o, n: pooling(x, 'max', f, s, o, n),
    'sep_conv_3x3': lambda x, f, s, o, n: sep_conv(x, f, 3, s, o, n),
    'sep_conv_5x5': lambda x, f, s, o, n: sep_conv(x, f, 5, s, o, n),
    'dil_conv_3x3': lambda x, f, s, o, n: dil_conv(x, f, 3, s, o, n),
    'dil_conv_5x5': lambda x, f, s, o, n: dil_conv(x, f, 5, s, o, n),
    'conv_3x1_1x3': conv_1x3_3x1,
}


def apply_cell_op(op: str, x, filters: int, strides: int, options: ConvOptions, name: str):
  """Applies the cell op `op` (a name of `tunas_tf.space.cell.CELL_OPS`) to `x`.

  Args:
    op: op name.
    x: input tensor [batch, h, w, c].
    filters: output channels.
    strides: 1, or 2 on the input edges of a reduction cell.
    options: convolution settings (`cell_conv_options()`).
    name: layer-name prefix.

  Returns:
    The output tensor [batch, ceil(h / strides), ceil(w / strides), filters].
  """
  if op not in _OPS:
    raise unknown_name('cell op', op, _OPS)
  return _OPS[op](x, filters, strides, options, name)


def resnet_basic_block(x, filters: int, strides: int, options: ConvOptions, name: str):
  """NB201's reduction block (AutoDL `ResNetBasicblock`): two 3×3 ReLU-Conv-BN (the first
  strided) plus a shortcut: 2×2 average pool + 1×1 conv at stride 2, a 1×1 ReLU-Conv-BN when
  only the width changes, else the identity. No activation after the sum."""
  y = relu_conv_bn(x, filters, 3, strides, options, f'{name}_a')
  y = relu_conv_bn(y, filters, 3, 1, options, f'{name}_b')
  if strides == 2:
    shortcut = keras.layers.AveragePooling2D(2, 2, padding='valid', name=f'{name}_down_pool')(x)
    shortcut = _conv(shortcut, filters, 1, 1, options, f'{name}_down_conv')
  elif x.shape[-1] != filters:
    shortcut = relu_conv_bn(x, filters, 1, 1, options, f'{name}_down')
  else:
    shortcut = x
  return keras.layers.Add(name=f'{name}_add')([shortcut, y])


def _frc_conv_branch(x, filters: int, options: ConvOptions, name: str):
  x = _relu(x, f'{name}_relu')
  x = _conv(x, filters, (1, 3), (1, 2), options, f'{name}_conv1x3', groups=FRC_GROUPS)
  x = _conv(x, filters, (3, 1), (2, 1), options, f'{name}_conv3x1', groups=FRC_GROUPS)
  x = options.batch_norm(f'{name}_bn_a')(x)
  x = _relu(x, f'{name}_relu_b')
  x = _conv(x, filters, 1, 1, options, f'{name}_conv1x1')
  return options.batch_norm(f'{name}_bn_b')(x)


def gdas_reduction_cell(s0, s1, filters: int, options: ConvOptions, name: str):
  """GDAS's fixed reduction cell (FRC, AutoDL `GDAS_Reduction_Cell`) on preprocessed inputs.

  Outputs concat[conv(s0), conv(s1), maxpool(s0) + BN, maxpool(s1) + BN], 4 × filters
  channels at half resolution; the convs are ReLU → grouped 1×3 (stride (1, 2)) → grouped 3×1
  (stride (2, 1)) → BN → ReLU → 1×1 → BN with 8 groups.
  """
  outputs = [_frc_conv_branch(s, filters, options, f'{name}_conv{i}') for i, s in
             enumerate((s0, s1))]
  for i, s in enumerate((s0, s1)):
    y = keras.layers.MaxPooling2D(3, 2, padding='same', name=f'{name}_pool{i}')(s)
    outputs.append(options.batch_norm(f'{name}_pool{i}_bn')(y))
  return keras.layers.Concatenate(name=f'{name}_concat')(outputs)
