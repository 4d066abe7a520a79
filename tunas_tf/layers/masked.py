"""Channel-masked layers of a supernet (TuNAS `rematlib/layers.py` `Masked*` layers).

Weights are allocated once at the largest width; a smaller width is simulated by keeping the
first N input/output channels of the kernel (prefix masks from
`tunas_tf.models.supernet_widths`) and zeroing the rest. Every mask is optional: None means
"all channels", so fixed-width layers pay nothing. Masks are float32 vectors of 0s and 1s and
are treated as constants (no gradient flows into them).

Variables are created in `__init__` (all shapes are static) and named like the matching Keras
layers ('kernel', 'bias', 'gamma', 'beta'); `prefix_weights()` lists them in the order of the
matching stand-alone layer's weights, and `load_prefix` / `read_prefix` copy smaller stand-alone
arrays into / out of their leading channels.
"""

from typing import Optional, Sequence

import keras
import numpy as np
import tensorflow as tf


def _outer(in_mask: Optional[tf.Tensor], out_mask: Optional[tf.Tensor]) -> Optional[tf.Tensor]:
  """[1, 1, in, out] product of the masks (None when both are None)."""
  if in_mask is None and out_mask is None:
    return None
  if out_mask is None:
    return tf.reshape(in_mask, [1, 1, -1, 1])
  if in_mask is None:
    return tf.reshape(out_mask, [1, 1, 1, -1])
  return tf.reshape(in_mask, [1, 1, -1, 1]) * tf.reshape(out_mask, [1, 1, 1, -1])


def _times(x, mask: Optional[tf.Tensor]):
  return x if mask is None else x * mask


def load_prefix(weights: Sequence[keras.Variable], arrays: Sequence[np.ndarray]) -> None:
  """Writes each array into the leading slice of the matching weight; the rest is kept.

  Args:
    weights: variables, e.g. a masked layer's `prefix_weights()`.
    arrays: one array per variable, no larger than it in any dimension (e.g. the weights of
      the matching stand-alone layer).
  """
  if len(arrays) != len(weights):
    raise ValueError(f'expected {len(weights)} arrays for {[w.path for w in weights]}, '
                     f'got {len(arrays)}')
  for w, a in zip(weights, arrays):
    a = np.asarray(a)
    if a.ndim != len(w.shape) or any(s > m for s, m in zip(a.shape, w.shape)):
      raise ValueError(f'cannot load an array of shape {a.shape} into {w.path} of shape '
                       f'{tuple(w.shape)}')
    value = keras.ops.convert_to_numpy(w).copy()
    value[tuple(slice(0, s) for s in a.shape)] = a
    w.assign(value)


def read_prefix(weights: Sequence[keras.Variable], shapes: Sequence[Sequence[int]]) -> list:
  """The leading slice of the given shape of each weight, as numpy arrays."""
  return [keras.ops.convert_to_numpy(w)[tuple(slice(0, s) for s in shape)]
          for w, shape in zip(weights, shapes)]


class MaskedConv2D(keras.layers.Layer):
  """A 'same'-padded convolution whose kernel is masked to a prefix of its input/output channels.

  Args:
    filters: largest number of output channels.
    kernel_size: square kernel size.
    input_channels: largest number of input channels.
    strides: stride.
    use_bias: whether to add a bias (masked like the output channels).
    kernel_initializer: initializer of the kernel (for the largest shape, as TuNAS does).
    bias_initializer: initializer of the bias.
    **kwargs: base `keras.layers.Layer` arguments.

  Call arguments:
    inputs: [batch, height, width, input_channels].
    input_mask: optional float32 [input_channels] prefix mask.
    output_mask: optional float32 [filters] prefix mask.

  Returns:
    [batch, ceil(height / strides), ceil(width / strides), filters]; masked-out channels are 0
    when there is a bias or the input's masked-out channels are 0.

  References:
    Bender et al., "Can weight sharing outperform random architecture search? An investigation
    with TuNAS", CVPR 2020, section 3.2 ("Channel Masking").
  """

  def __init__(self, filters: int, kernel_size: int, input_channels: int, strides: int = 1,
               use_bias: bool = False, kernel_initializer='he_normal',
               bias_initializer='zeros', **kwargs):
    super().__init__(**kwargs)
    self.filters, self.kernel_size, self.strides = filters, kernel_size, strides
    self.input_channels, self.use_bias = input_channels, use_bias
    self.kernel = self.add_weight(name='kernel',
                                  shape=(kernel_size, kernel_size, input_channels, filters),
                                  initializer=kernel_initializer)
    self.bias = self.add_weight(name='bias', shape=(filters,),
                                initializer=bias_initializer) if use_bias else None
    self.built = True

  def prefix_weights(self):
    return [self.kernel] + ([self.bias] if self.use_bias else [])

  def masked_kernel(self, input_mask=None, output_mask=None) -> tf.Tensor:
    return _times(tf.convert_to_tensor(self.kernel), _outer(input_mask, output_mask))

  def call(self, inputs, input_mask=None, output_mask=None):
    y = tf.nn.conv2d(inputs, self.masked_kernel(input_mask, output_mask), self.strides, 'SAME')
    if self.use_bias:
      y = y + _times(tf.convert_to_tensor(self.bias), output_mask)
    return y


class MaskedDepthwiseConv2D(keras.layers.Layer):
  """A 'same'-padded depthwise convolution (multiplier 1) masked to a prefix of its channels.

  Args:
    channels: largest number of channels.
    kernel_size: square kernel size.
    strides: stride.
    depthwise_initializer: initializer of the [k, k, channels, 1] kernel.
    **kwargs: base `keras.layers.Layer` arguments.

  Call arguments:
    inputs: [batch, height, width, channels].
    channel_mask: optional float32 [channels] prefix mask.

  Returns:
    [batch, ceil(height / strides), ceil(width / strides), channels].
  """

  def __init__(self, channels: int, kernel_size: int, strides: int = 1,
               depthwise_initializer='he_normal', **kwargs):
    super().__init__(**kwargs)
    self.channels, self.kernel_size, self.strides = channels, kernel_size, strides
    self.kernel = self.add_weight(name='kernel', shape=(kernel_size, kernel_size, channels, 1),
                                  initializer=depthwise_initializer)
    self.built = True

  def prefix_weights(self):
    return [self.kernel]

  def masked_kernel(self, channel_mask=None) -> tf.Tensor:
    return _times(tf.convert_to_tensor(self.kernel), _outer(channel_mask, None))

  def call(self, inputs, channel_mask=None):
    strides = (1, self.strides, self.strides, 1)
    return tf.nn.depthwise_conv2d(inputs, self.masked_kernel(channel_mask), strides, 'SAME')


class StatelessBatchNorm(keras.layers.Layer):
  """Batch norm that always normalizes with the batch statistics, then masks its channels.

  TuNAS runs every batch norm of a supernet in training mode, even at evaluation time
  (`force_stateless_batch_norm`): the shared weights serve many architectures, and no moving
  average could describe all of them. Masked-out channels are all zero, so their mean and
  variance are zero and the output there is `beta`, which the mask then zeroes.

  Args:
    channels: largest number of channels.
    epsilon: variance epsilon (TuNAS: 1e-3).
    **kwargs: base `keras.layers.Layer` arguments.

  Call arguments:
    inputs: [batch, height, width, channels].
    channel_mask: optional float32 [channels] prefix mask applied to the output.

  Returns:
    The normalized tensor, same shape.

  References:
    TuNAS `rematlib/layers.py` `MaskedStatelessBatchNorm`; Ioffe and Szegedy, "Batch
    Normalization", ICML 2015, algorithm 1.
  """

  def __init__(self, channels: int, epsilon: float = 1e-3, **kwargs):
    super().__init__(**kwargs)
    self.channels, self.epsilon = channels, epsilon
    self.gamma = self.add_weight(name='gamma', shape=(channels,), initializer='ones')
    self.beta = self.add_weight(name='beta', shape=(channels,), initializer='zeros')
    self.built = True

  def prefix_weights(self):
    return [self.gamma, self.beta]

  def call(self, inputs, channel_mask=None):
    # The fused kernel (one op forward, one backward) keeps supernet graphs, which hold one
    # batch norm per candidate op, small enough to trace and optimize quickly; it normalizes
    # with the biased batch variance, as keras.layers.BatchNormalization(training=True) does.
    empty = tf.zeros([0], inputs.dtype)
    y = tf.raw_ops.FusedBatchNormV3(x=inputs, scale=tf.convert_to_tensor(self.gamma),
                                    offset=tf.convert_to_tensor(self.beta), mean=empty,
                                    variance=empty, epsilon=self.epsilon, is_training=True)[0]
    return _times(y, channel_mask)
