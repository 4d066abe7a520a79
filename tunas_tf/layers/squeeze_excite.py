"""Squeeze-and-excite module of the TuNAS inverted bottleneck."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package='tunas_tf')
class SqueezeExcite(keras.layers.Layer):
  """Channel gating: x * gate(conv(act(conv(mean(x))))).

  Global average pool (keeping a 1×1 map), a 1×1 conv with bias to `hidden_filters` followed by
  `inner_activation`, a 1×1 conv with bias back to the input width followed by
  `gating_activation`, then a channel-wise product with the input. The two convs are sublayers
  named 'reduce' and 'expand'.

  Args:
    hidden_filters: width of the hidden layer (TuNAS: make_divisible(channels / 4, 8)).
    inner_activation: Keras activation of the hidden layer (TuNAS: ReLU).
    gating_activation: Keras activation of the gate (TuNAS: sigmoid).
    kernel_initializer: initializer of both kernels.
    kernel_regularizer: regularizer of both kernels.
    **kwargs: base `keras.layers.Layer` arguments.

  Call arguments:
    inputs: a tensor of shape [batch, height, width, channels].

  Returns:
    A tensor of the input's shape.

  References:
    Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018, section 3;
    Howard et al., "Searching for MobileNetV3", ICCV 2019, section 5.3.
  """

  def __init__(self, hidden_filters: int, inner_activation='relu', gating_activation='sigmoid',
               kernel_initializer='he_normal', kernel_regularizer=None, **kwargs):
    super().__init__(**kwargs)
    if isinstance(hidden_filters, bool) or not isinstance(hidden_filters, int) or (
        hidden_filters < 1):
      raise ValueError(f'hidden_filters must be a positive integer, got {hidden_filters!r}')
    self.hidden_filters = hidden_filters
    self.inner_activation = keras.activations.get(inner_activation)
    self.gating_activation = keras.activations.get(gating_activation)
    self.kernel_initializer = keras.initializers.get(kernel_initializer)
    self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
    self.reduce = None
    self.expand = None

  def build(self, input_shape):
    channels = int(input_shape[-1])
    # The expand width is the input width, only known here, so both sublayers are made here.
    self.reduce = self._conv(self.hidden_filters, self.inner_activation, 'reduce')
    self.expand = self._conv(channels, self.gating_activation, 'expand')
    self.reduce.build((None, 1, 1, channels))
    self.expand.build((None, 1, 1, self.hidden_filters))

  def _conv(self, filters, activation, name):
    return keras.layers.Conv2D(filters, 1, use_bias=True, activation=activation,
                               kernel_initializer=self.kernel_initializer,
                               kernel_regularizer=self.kernel_regularizer, name=name,
                               dtype=self.dtype_policy)

  def call(self, inputs):
    squeezed = ops.mean(inputs, axis=(1, 2), keepdims=True)
    return inputs * self.expand(self.reduce(squeezed))

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    config = super().get_config()
    config.update({
        'hidden_filters': self.hidden_filters,
        'inner_activation': keras.activations.serialize(self.inner_activation),
        'gating_activation': keras.activations.serialize(self.gating_activation),
        'kernel_initializer': keras.initializers.serialize(self.kernel_initializer),
        'kernel_regularizer': keras.regularizers.serialize(self.kernel_regularizer),
    })
    return config
