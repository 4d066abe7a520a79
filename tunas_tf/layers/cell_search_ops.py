"""Search-time cell ops (GDAS / SETN / DARTS supernets): the ops of `cell_ops`, as Keras layers
whose batch norms always use batch statistics.

Why separate layers from `cell_ops` (which builds functional stand-alone models):

* During a cell search every batch norm normalizes with the statistics of the current batch,
  also when candidates are scored (AutoDL `track_running_stats=False`, the better setting per
  NAS-Bench-201 appendix / AutoDL issue #70); `BatchStatNorm` therefore holds no moving
  averages, so an op run inside one branch of a `tf.switch_case` updates no state.
* Search cells have `affine=False` batch norms (AutoDL); the stem, the NB201 residual blocks
  and the head keep affine ones, as in AutoDL's `TinyNetworkGDAS` / `NASNetworkGDAS`.
* The kernels carry no regularizer: the searchers apply PyTorch-style (coupled) weight decay to
  every weight themselves, after gradient clipping (AutoDL order).

Op definitions (AutoDL `cell_operations.py`, shared/docs/anchors/cellsearch.md §1.1):
`nor_conv_kxk` = ReLU → Conv(k) → BN; `sep_conv_kxk` = two ReLU → depthwise(k) → 1×1 → BN
(only the first strided); `dil_conv_kxk` = ReLU → depthwise(k, dilation 2) → 1×1 → BN;
`conv_3x1_1x3` = ReLU → Conv(1×3) → Conv(3×1) → BN; pooling 3×3 after a 1×1 ReLU-Conv-BN when
the width changes; `skip_connect` = identity or FactorizedReduce; `none` = zeros.
"""

from typing import Sequence

import keras
import tensorflow as tf

from tunas_tf.errors import unknown_name
from tunas_tf.layers import initializers

BATCH_NORM_EPSILON = 1e-5  # PyTorch's default, as AutoDL.


class BatchStatNorm(keras.layers.Layer):
  """Batch normalization with the current batch's statistics, always (no moving averages).

  Args:
    affine: learn a per-channel scale (gamma) and offset (beta).
    epsilon: added to the variance.

  Call arguments:
    inputs: [batch, height, width, channels].
  """

  def __init__(self, affine: bool = False, epsilon: float = BATCH_NORM_EPSILON, **kwargs):
    super().__init__(**kwargs)
    self.affine = affine
    self.epsilon = epsilon

  def build(self, input_shape):
    channels = int(input_shape[-1])
    if self.affine:
      self.gamma = self.add_weight(shape=(channels,), initializer='ones', name='gamma')
      self.beta = self.add_weight(shape=(channels,), initializer='zeros', name='beta')

  def call(self, inputs):
    channels = inputs.shape[-1]
    scale = tf.convert_to_tensor(self.gamma) if self.affine else tf.ones([channels])
    offset = tf.convert_to_tensor(self.beta) if self.affine else tf.zeros([channels])
    # The fused kernel is several times faster than moments + arithmetic on CPU.
    y, _, _, _, _, _ = tf.raw_ops.FusedBatchNormV3(
        x=inputs, scale=scale, offset=offset, mean=tf.zeros([0]), variance=tf.zeros([0]),
        epsilon=self.epsilon, exponential_avg_factor=1.0, data_format='NHWC', is_training=True)
    return y

  def get_config(self):
    return {**super().get_config(), 'affine': self.affine, 'epsilon': self.epsilon}


def fast_call(layer: keras.layers.Layer, *args):
  """`layer.call(*args)` once the layer is built, else `layer(*args)` (which builds it).

  A supernet calls thousands of small layers inside `tf.switch_case` branches; skipping Keras's
  `__call__` bookkeeping (name scopes, autocasting, masks) on built layers makes tracing the
  search step several times faster and computes the same thing.
  """
  return layer.call(*args) if layer.built else layer(*args)


def _conv(filters: int, kernel_size, strides=1, dilation: int = 1, groups: int = 1,
          padding: str = 'same', name=None) -> keras.layers.Conv2D:
  return keras.layers.Conv2D(filters, kernel_size, strides=strides, padding=padding,
                             dilation_rate=dilation, groups=groups, use_bias=False,
                             kernel_initializer=initializers.conv_initializer(), name=name)


def _depthwise(kernel_size: int, strides: int, dilation: int) -> keras.layers.DepthwiseConv2D:
  return keras.layers.DepthwiseConv2D(kernel_size, strides=strides, padding='same',
                                      dilation_rate=dilation, use_bias=False,
                                      depthwise_initializer=initializers.depthwise_initializer())


class Chain(keras.layers.Layer):
  """Applies `steps` in order; a step 'relu' is a ReLU (keeps op definitions one-liners)."""

  def __init__(self, steps: Sequence, **kwargs):
    super().__init__(**kwargs)
    self.steps = list(steps)
    self.built = True  # Composite: sub-layers build on their first call.

  def call(self, inputs):
    x = inputs
    for step in self.steps:
      x = tf.nn.relu(x) if isinstance(step, str) else fast_call(step, x)
    return x


def relu_conv_bn(filters: int, kernel_size: int, strides: int = 1, dilation: int = 1,
                 affine: bool = False, name=None) -> Chain:
  """ReLU → Conv(k, stride, dilation) → BN (AutoDL `ReLUConvBN`)."""
  return Chain(['relu', _conv(filters, kernel_size, strides, dilation), BatchStatNorm(affine)],
               name=name)


def _relu_sep_bn(filters: int, kernel_size: int, strides: int, dilation: int, affine: bool):
  return ['relu', _depthwise(kernel_size, strides, dilation), _conv(filters, 1),
          BatchStatNorm(affine)]


def sep_conv(in_channels: int, filters: int, kernel_size: int, strides: int,
             affine: bool = False) -> Chain:
  """DARTS `SepConv` (AutoDL `DualSepConv`): the first separable conv strides, keeps width."""
  return Chain(_relu_sep_bn(in_channels, kernel_size, strides, 1, affine) +
               _relu_sep_bn(filters, kernel_size, 1, 1, affine))


def dil_conv(filters: int, kernel_size: int, strides: int, affine: bool = False) -> Chain:
  return Chain(_relu_sep_bn(filters, kernel_size, strides, 2, affine))


def conv_1x3_3x1(filters: int, strides: int, affine: bool = False) -> Chain:
  """SETN's '1x3 & 3x1 conv'."""
  return Chain(['relu', _conv(filters, (1, 3), (1, strides)),
                _conv(filters, (3, 1), (strides, 1)), BatchStatNorm(affine)])


class FactorizedReduce(keras.layers.Layer):
  """AutoDL `FactorizedReduce`: stride 2: ReLU, two 1×1 stride-2 convs on x and on x shifted by
  one pixel, concatenated, BN; stride 1: 1×1 conv + BN (as `cell_ops.factorized_reduce`)."""

  def __init__(self, filters: int, strides: int, affine: bool = False, **kwargs):
    super().__init__(**kwargs)
    self.strides = strides
    if strides == 1:
      self.conv = _conv(filters, 1)
    else:
      self.conv_a = _conv(filters // 2, 1, 2, padding='valid')
      self.conv_b = _conv(filters - filters // 2, 1, 2, padding='valid')
    self.bn = BatchStatNorm(affine)
    self.built = True  # Composite: sub-layers build on their first call.

  def call(self, inputs):
    if self.strides == 1:
      return fast_call(self.bn, fast_call(self.conv, inputs))
    x = tf.nn.relu(inputs)
    shifted = tf.pad(x[:, 1:, 1:, :], [[0, 0], [0, 1], [0, 1], [0, 0]])
    both = [fast_call(self.conv_a, x), fast_call(self.conv_b, shifted)]
    return fast_call(self.bn, tf.concat(both, axis=-1))


class Pool(keras.layers.Layer):
  """3×3 'avg' (padding excluded from the count) or 'max' pooling, after a 1×1 ReLU-Conv-BN
  when the width changes."""

  def __init__(self, kind: str, in_channels: int, filters: int, strides: int,
               affine: bool = False, **kwargs):
    super().__init__(**kwargs)
    self.pre = relu_conv_bn(filters, 1, affine=affine) if in_channels != filters else None
    layer = keras.layers.AveragePooling2D if kind == 'avg' else keras.layers.MaxPooling2D
    self.pool = layer(3, strides=strides, padding='same')
    self.built = True  # Composite: sub-layers build on their first call.

  def call(self, inputs):
    return fast_call(self.pool, inputs if self.pre is None else fast_call(self.pre, inputs))


class Identity(keras.layers.Layer):

  def call(self, inputs):
    return inputs


class Zero(keras.layers.Layer):
  """The 'none' op: zeros of the op's output shape (no weights, no work worth the name)."""

  def __init__(self, filters: int, strides: int = 1, **kwargs):
    super().__init__(**kwargs)
    self.filters = filters
    self.strides = strides

  def call(self, inputs):
    return zeros_output(inputs, self.filters, self.strides)


def zeros_output(x: tf.Tensor, filters: int, strides: int) -> tf.Tensor:
  """Zeros of shape [batch, ceil(h / strides), ceil(w / strides), filters]."""
  corner = tf.zeros_like(x[:, ::strides, ::strides, :1])
  return tf.tile(corner, [1, 1, 1, filters])  # Keeps the static shape, unlike tf.zeros(shape).


def make_search_op(op: str, in_channels: int, filters: int, strides: int,
                   affine: bool = False) -> keras.layers.Layer:
  """The search layer of cell op `op` (a name of `tunas_tf.space.cell.CELL_OPS`).

  Args:
    op: op name.
    in_channels: channels of the op's input.
    filters: channels of its output.
    strides: 1, or 2 on the input edges of a reduction cell.
    affine: affine batch norms (search cells: False).
  """
  if op == 'none':
    return Zero(filters, strides)
  if op == 'skip_connect':
    if strides == 1 and in_channels == filters:
      return Identity()
    return FactorizedReduce(filters, strides, affine)
  if op in ('nor_conv_1x1', 'nor_conv_3x3'):
    return relu_conv_bn(filters, int(op[-1]), strides, affine=affine)
  if op in ('avg_pool_3x3', 'max_pool_3x3'):
    return Pool(op[:3], in_channels, filters, strides, affine)
  if op in ('sep_conv_3x3', 'sep_conv_5x5'):
    return sep_conv(in_channels, filters, int(op[-1]), strides, affine)
  if op in ('dil_conv_3x3', 'dil_conv_5x5'):
    return dil_conv(filters, int(op[-1]), strides, affine)
  if op == 'conv_3x1_1x3':
    return conv_1x3_3x1(filters, strides, affine)
  raise unknown_name('cell op', op, ('none', 'skip_connect', 'nor_conv_1x1', 'nor_conv_3x3',
                                     'avg_pool_3x3', 'max_pool_3x3', 'sep_conv_3x3',
                                     'sep_conv_5x5', 'dil_conv_3x3', 'dil_conv_5x5',
                                     'conv_3x1_1x3'))


class ResNetBasicBlock(keras.layers.Layer):
  """NB201's reduction block (AutoDL `ResNetBasicblock`, affine BN): two 3×3 ReLU-Conv-BN (the
  first strided) plus a shortcut (2×2 average pool + 1×1 conv at stride 2)."""

  def __init__(self, filters: int, strides: int, **kwargs):
    super().__init__(**kwargs)
    self.strides = strides
    self.filters = filters
    self.a = relu_conv_bn(filters, 3, strides, affine=True)
    self.b = relu_conv_bn(filters, 3, 1, affine=True)
    self.down_pool = keras.layers.AveragePooling2D(2, 2, padding='valid')
    self.down_conv = _conv(filters, 1)
    self.down = relu_conv_bn(filters, 1, affine=True)
    self.built = True  # Composite: sub-layers build on their first call.

  def call(self, inputs):
    y = fast_call(self.b, fast_call(self.a, inputs))
    if self.strides == 2:
      shortcut = fast_call(self.down_conv, fast_call(self.down_pool, inputs))
    elif inputs.shape[-1] != self.filters:
      shortcut = fast_call(self.down, inputs)
    else:
      shortcut = inputs
    return shortcut + y


class FixedReductionCell(keras.layers.Layer):
  """GDAS's fixed reduction cell (FRC, AutoDL `GDAS_Reduction_Cell`, affine BN) on the two
  preprocessed inputs; as `cell_ops.gdas_reduction_cell`: concat[conv(s0), conv(s1),
  maxpool(s0) + BN, maxpool(s1) + BN] at half resolution, 4 × filters channels."""

  GROUPS = 8

  def __init__(self, filters: int, **kwargs):
    super().__init__(**kwargs)
    g = self.GROUPS
    self.convs = [Chain(['relu', _conv(filters, (1, 3), (1, 2), groups=g),
                         _conv(filters, (3, 1), (2, 1), groups=g), BatchStatNorm(True), 'relu',
                         _conv(filters, 1), BatchStatNorm(True)]) for _ in range(2)]
    self.pools = [Chain([keras.layers.MaxPooling2D(3, 2, padding='same'), BatchStatNorm(True)])
                  for _ in range(2)]
    self.built = True  # Composite: sub-layers build on their first call.

  def call(self, s0, s1):
    outputs = [fast_call(conv, s) for conv, s in zip(self.convs, (s0, s1))]
    outputs += [fast_call(pool, s) for pool, s in zip(self.pools, (s0, s1))]
    return tf.concat(outputs, axis=-1)
