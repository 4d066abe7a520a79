"""Stand-alone Keras models of mobile architectures (TuNAS `get_standalone_model`).

`build_model(space, arch)` builds a functional Keras model of standard layers from the per-layer
walk `tunas_tf.space.shapes.layer_shapes`, which the MAC counter and the latency tables share.
Layer names derive from the spec path of each layer (e.g. 'blocks_3_layers_1_expand').
"""

from typing import Any, Optional

import keras

from tunas_tf.errors import UserError
from tunas_tf.layers import blocks
from tunas_tf.layers import initializers
from tunas_tf.models import macs
from tunas_tf.space import registry
from tunas_tf.space import shapes as shapes_lib
from tunas_tf.space.shapes import LayerShape

INPUT_NAME = 'image'
CLASSIFIER_NAME = 'classifier'


def build_layer(x, shape: LayerShape, options: blocks.ConvOptions):
  """Applies the layer described by `shape` to `x` (with its residual, if any).

  Args:
    x: a Keras tensor of shape [batch, shape.input_size, shape.input_size, shape.input_filters].
    shape: the layer, from `tunas_tf.space.shapes`.
    options: convolution settings.

  Returns:
    The output tensor.
  """
  name = shape.name
  if shape.op == shapes_lib.SKIP:
    return x
  if shape.op == shapes_lib.GLOBAL_POOL:
    return keras.layers.GlobalAveragePooling2D(keepdims=True, name=f'{name}_pool')(x)
  if shape.op == shapes_lib.CONV:
    y = blocks.conv_bn(x, shape.output_filters, shape.kernel_size, shape.strides,
                       shape.activation, options, f'{name}_conv', shape.use_batch_norm)
  elif shape.op == shapes_lib.SEPARABLE_CONV:
    y = blocks.separable_conv(x, shape.output_filters, shape.kernel_size, shape.strides,
                              shape.activation, options, name)
  elif shape.op == shapes_lib.BOTTLENECK:
    y = blocks.inverted_bottleneck(x, shape.mid_filters, shape.output_filters, shape.kernel_size,
                                   shape.strides, shape.activation, shape.se_filters, options,
                                   name)
  else:
    raise ValueError(f'Unknown layer op {shape.op!r} at {shape.path!r}')
  if shape.residual:
    y = keras.layers.Add(name=f'{name}_add')([y, x])
  return y


def classifier(x, num_classes: int, dropout_rate: float = 0.0):
  """TuNAS head: [dropout] → 1×1 conv with bias, N(0, 0.01) init, no weight decay → logits.

  On a 1×1 map (the mobile spaces end with global pooling) the logits are a reshape; on a
  larger map they are averaged, as TuNAS's head does.
  """
  if dropout_rate > 0:
    x = keras.layers.Dropout(dropout_rate, name=f'{CLASSIFIER_NAME}_dropout')(x)
  x = keras.layers.Conv2D(num_classes, 1, use_bias=True,
                          kernel_initializer=initializers.classifier_initializer(),
                          name=CLASSIFIER_NAME)(x)
  if x.shape[1] == 1 and x.shape[2] == 1:
    return keras.layers.Flatten(name='logits')(x)
  return keras.layers.GlobalAveragePooling2D(name='logits')(x)


def _check_dropout(dropout_rate: Any) -> float:
  if isinstance(dropout_rate, bool) or not isinstance(dropout_rate, (int, float)) or not (
      0 <= dropout_rate < 1):
    raise UserError(f'dropout_rate must be a number in [0, 1), got {dropout_rate!r}')
  return float(dropout_rate)


def build_model(space: Any, arch: Any, num_classes: int = macs.DEFAULT_NUM_CLASSES,
                image_size: int = macs.DEFAULT_IMAGE_SIZE, dropout_rate: float = 0.0,
                weight_decay: float = blocks.DEFAULT_WEIGHT_DECAY,
                name: Optional[str] = None) -> keras.Model:
  """Builds the stand-alone classifier of `arch`.

  Args:
    space: a mobile `SearchSpace` or its registered name.
    arch: an `Architecture` of `space`.
    num_classes: number of logits.
    image_size: height (= width) of the float32 RGB input.
    dropout_rate: dropout before the classifier, in [0, 1).
    weight_decay: TuNAS weight decay; every kernel but the classifier's gets L2(wd / 2).
    name: model name; defaults to the space name.

  Returns:
    A functional `keras.Model` mapping [batch, image_size, image_size, 3] float32 images to
    [batch, num_classes] logits (no softmax).

  Raises:
    UserError: for an architecture of another space, bad indices, a bad size or setting.
  """
  if isinstance(space, str):
    space = registry.get_space(space)
  macs.check_num_classes(num_classes)
  dropout_rate = _check_dropout(dropout_rate)
  options = blocks.ConvOptions(weight_decay=weight_decay)
  layer_shapes = shapes_lib.layer_shapes(space, arch, image_size)
  inputs = keras.Input((image_size, image_size, shapes_lib.IMAGE_CHANNELS), dtype='float32',
                       name=INPUT_NAME)
  x = inputs
  for shape in layer_shapes:
    x = build_layer(x, shape, options)
  logits = classifier(x, num_classes, dropout_rate)
  return keras.Model(inputs, logits, name=name or space.name)
