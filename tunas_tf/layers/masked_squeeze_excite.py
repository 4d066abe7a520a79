"""Channel-masked squeeze-and-excite of a supernet bottleneck."""

import keras
import tensorflow as tf

from tunas_tf.layers.masked import MaskedConv2D


class MaskedSqueezeExcite(keras.layers.Layer):
  """`x * sigmoid(expand(relu(reduce(mean(x)))))` on a prefix of the channels.

  The stand-alone `SqueezeExcite` with both 1×1 convs (with biases) allocated at the largest
  widths. With the input masked to its first C channels and the hidden layer to its first
  make_divisible(C / 4, 8), the masked-out hidden units are relu(0) = 0 and the masked-out
  output channels are x * sigmoid(0) = 0 * 0.5 = 0, so the active channels equal the
  stand-alone module's.

  Args:
    channels: largest input (= output) width.
    hidden_filters: largest hidden width.
    kernel_initializer: initializer of both kernels.
    **kwargs: base `keras.layers.Layer` arguments.

  Call arguments:
    inputs: [batch, height, width, channels].
    channel_mask: optional float32 [channels] prefix mask of the input.
    hidden_mask: optional float32 [hidden_filters] prefix mask of the hidden layer.

  Returns:
    A tensor of the input's shape.

  References:
    Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018; TuNAS
    `rematlib/mobile_model_v3._squeeze_and_excite` (the masked code path).
  """

  def __init__(self, channels: int, hidden_filters: int, kernel_initializer='he_normal',
               **kwargs):
    super().__init__(**kwargs)
    self.channels, self.hidden_filters = channels, hidden_filters
    self.reduce = MaskedConv2D(hidden_filters, 1, channels, use_bias=True,
                               kernel_initializer=kernel_initializer, name='reduce')
    self.expand = MaskedConv2D(channels, 1, hidden_filters, use_bias=True,
                               kernel_initializer=kernel_initializer, name='expand')
    self.built = True

  def prefix_weights(self):
    """In the order of `SqueezeExcite`'s reduce kernel/bias, then expand kernel/bias."""
    return self.reduce.prefix_weights() + self.expand.prefix_weights()

  def masked_kernels(self, channel_mask=None, hidden_mask=None):
    return [self.reduce.masked_kernel(channel_mask, hidden_mask),
            self.expand.masked_kernel(hidden_mask, channel_mask)]

  def call(self, inputs, channel_mask=None, hidden_mask=None):
    squeezed = tf.reduce_mean(inputs, axis=(1, 2), keepdims=True)
    hidden = tf.nn.relu(self.reduce(squeezed, input_mask=channel_mask, output_mask=hidden_mask))
    gate = tf.sigmoid(self.expand(hidden, input_mask=hidden_mask, output_mask=channel_mask))
    return inputs * gate
