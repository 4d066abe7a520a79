"""Units and architectures as tiny Keras models, converted to TFLite the cheap way.

Conversion dominates the cost of building a table, so units are converted from a frozen
concrete function instead of `tunas_tf.export.convert_to_tflite`'s SavedModel round trip:
`tf.function(model).get_concrete_function(spec)` then `convert_variables_to_constants_v2`
(the variables become constants, so the converter folds batch norm into the kernels and fuses
ReLU exactly as on the SavedModel path: same op list, same outputs to 2e-6; checked by
tests/test_latency_profile.py) and `TFLiteConverter.from_concrete_functions([f])`. Measured on
the 2-vCPU host: ~0.2 s per bottleneck (build 0.03, trace 0.04, freeze 0.05, convert 0.09)
versus ~0.9 s through a SavedModel. Architectures measured end to end for calibration and
validation go through the same path, so table entries and whole models are converted alike.
"""

import warnings
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.framework import convert_to_constants

from latency import keys as keys_lib
from tunas_tf.layers import blocks
from tunas_tf.models import standalone

# Weight decay only adds regularization losses; it has no effect on the converted graph.
_OPTIONS = blocks.ConvOptions(weight_decay=0.0)
_CALIBRATION_SAMPLES = 4


def unit_model(unit: keys_lib.Unit) -> keras.Model:
  """The unit as a Keras model with a batch-1 input of the unit's exact input shape."""
  shape = (1, unit.input_size, unit.input_size, unit.input_filters)
  x = keras.Input(batch_shape=shape, name='x')
  inputs = [x]
  if unit.op in keys_lib.LAYER_OPS:
    y = standalone.build_layer(x, unit.layer_shape(), _OPTIONS)
  elif unit.op == keys_lib.DEPTHWISE:
    y = blocks.depthwise_bn(x, unit.kernel_size, unit.strides, unit.activation, _OPTIONS, 'dw')
  elif unit.op == keys_lib.SQUEEZE_EXCITE:
    y = blocks.squeeze_excite(x, unit.mid_filters, _OPTIONS, 'se')
  elif unit.op == keys_lib.ADD:
    # The residual add of a layer adds two different tensors; a second input keeps the
    # converter from rewriting x + x.
    other = keras.Input(batch_shape=shape, name='y')
    inputs.append(other)
    y = keras.layers.Add(name='add')([x, other])
  elif unit.op == keys_lib.CLASSIFIER:
    y = standalone.classifier(x, unit.output_filters)
  else:
    raise ValueError(f'No model for unit op {unit.op!r}')
  return keras.Model(inputs if len(inputs) > 1 else x, y, name=unit.op)


def _representative(input_shapes: Sequence[tuple], seed: int = 0):
  rng = np.random.default_rng(seed)
  def generate():
    for _ in range(_CALIBRATION_SAMPLES):
      yield [rng.standard_normal(s).astype(np.float32) for s in input_shapes]
  return generate


def convert_frozen(model: keras.Model, dtype: str = 'float32') -> bytes:
  """Converts a functional Keras model to .tflite bytes with batch-1 inputs.

  Args:
    model: a functional model whose inputs have fully defined shapes (but the batch).
    dtype: 'float32', or 'int8' (full-integer post-training quantization; calibrated on
      random normal inputs: value ranges do not change int8 speed).

  Returns:
    The .tflite flatbuffer.
  """
  dtype = keys_lib.check_dtype(dtype)
  # Batch 1, so that every tensor of the traced graph has a static shape (as on a phone).
  specs = [tf.TensorSpec((1,) + tuple(i.shape[1:]), tf.float32) for i in model.inputs]
  function = tf.function(lambda *xs: model(list(xs) if len(xs) > 1 else xs[0], training=False))
  concrete = function.get_concrete_function(*specs)
  frozen = convert_to_constants.convert_variables_to_constants_v2(concrete)
  converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
  if dtype == 'float32':
    return converter.convert()
  converter.optimizations = [tf.lite.Optimize.DEFAULT]
  converter.representative_dataset = _representative([tuple(s.shape) for s in specs])
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
  converter.inference_input_type = tf.int8
  converter.inference_output_type = tf.int8
  with warnings.catch_warnings():
    # "Statistics for quantized inputs were expected": the int8 input scale is calibrated
    # from the representative data, which is all a timing model needs.
    warnings.filterwarnings('ignore', message='Statistics for quantized inputs')
    return converter.convert()


def convert_unit(unit: keys_lib.Unit) -> bytes:
  return convert_frozen(unit_model(unit), unit.dtype)


def convert_arch(space: Any, arch: Any, image_size: int, num_classes: int,
                 dtype: str = 'float32') -> bytes:
  """The stand-alone model of `arch` (as `build_model` builds it), converted like the units."""
  model = standalone.build_model(space, arch, num_classes=num_classes, image_size=image_size,
                                 weight_decay=0.0)
  return convert_frozen(model, dtype)
