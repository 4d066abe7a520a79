"""Keras model -> .tflite flatbuffer (float32 or full-integer int8).

Conversion path (chosen after trying the alternatives on TF 2.21 + Keras 3.15):
the model is exported with `model.export(..., input_signature=[TensorSpec([1, H, W, C])])`
into a temporary SavedModel, which `tf.lite.TFLiteConverter.from_saved_model` converts.
- `from_keras_model` works too but keeps a dynamic batch dimension (shape_signature
  [-1, H, W, C]) and prints the export summary to stdout.
- `from_concrete_functions([f], trackable_obj=model)` leaves Keras 3 variables as
  resources (VAR_HANDLE / READ_VARIABLE ops, BatchNorm not folded), and without
  `trackable_obj` it takes the deprecated conversion path (warnings).
The SavedModel path yields a fixed [1, H, W, C] input, folds BatchNorm into the
convolutions and fuses activations (CONV_2D, DEPTHWISE_CONV_2D, MEAN, FULLY_CONNECTED for a
conv-BN-ReLU-dwconv-BN-GAP-Dense net), which is what a phone runs.
"""

import os
import tempfile
from typing import Any, Optional, Sequence

import numpy as np
import tensorflow as tf
from absl import logging

from tunas_tf.errors import UserError, unknown_name
from tunas_tf.fileio import atomic_write_bytes

QUANTIZATIONS = ('none', 'int8')


def list_quantizations() -> list[str]:
  """Returns the supported `quantize` values."""
  return list(QUANTIZATIONS)


def check_quantize(quantize: str) -> str:
  """Returns `quantize` if supported, else raises UserError listing the valid values."""
  if quantize not in QUANTIZATIONS:
    raise unknown_name('quantization', quantize, QUANTIZATIONS)
  return quantize


def model_input_shape(model: Any,
                      input_shape: Optional[Sequence[int]] = None) -> tuple[int, int, int]:
  """Returns the (H, W, C) image shape of a single-input image model.

  Args:
    model: a keras.Model taking [N, H, W, C] images.
    input_shape: optional explicit (H, W, C); needed for subclassed models without a
      functional input.

  Returns:
    (H, W, C) as ints.

  Raises:
    UserError: if the shape cannot be determined or is not 3 positive ints.
  """
  if input_shape is None:
    try:
      inputs = model.inputs
    except (AttributeError, ValueError):
      inputs = None
    if not inputs:
      raise UserError(f'Cannot infer the input shape of model {model.name!r} (no functional '
                      'inputs); pass input_shape=(H, W, C)')
    if len(inputs) != 1:
      raise UserError(f'Export expects a single image input; model {model.name!r} has '
                      f'{len(inputs)} inputs')
    input_shape = tuple(inputs[0].shape[1:])
  shape = tuple(input_shape)
  if len(shape) != 3 or not all(isinstance(d, (int, np.integer)) and d > 0 for d in shape):
    raise UserError(f'input_shape must be (H, W, C) with positive ints; got {input_shape!r}')
  return tuple(int(d) for d in shape)


def _as_images(element: Any) -> np.ndarray:
  """Returns one dataset element as a float32 [N, H, W, C] array."""
  if isinstance(element, (tuple, list)):  # (image, label) pairs: keep the image.
    element = element[0]
  images = np.asarray(element, dtype=np.float32)
  return images[None] if images.ndim == 3 else images


def calibration_images(data: Any, input_shape: Sequence[int]) -> np.ndarray:
  """Collects representative images into one float32 [N, H, W, C] array.

  Args:
    data: an array [N, H, W, C] (or one [H, W, C] image); an iterable of such arrays or of
      (image, label) tuples (a tf.data.Dataset works); or a callable returning such an
      iterable. Images must be preprocessed exactly as the model expects.
    input_shape: the model's (H, W, C).

  Returns:
    The images, float32, [N, H, W, C] with N >= 1.

  Raises:
    UserError: if there is no data or an image has the wrong shape.
  """
  if data is None:
    raise UserError('Representative images are required (got None): pass real, '
                    'preprocessed [N, H, W, C] float32 images')
  if callable(data):
    data = data()
  chunks = [_as_images(data)] if isinstance(data, np.ndarray) else [
      _as_images(e) for e in data]
  expected = tuple(input_shape)
  for chunk in chunks:
    if chunk.ndim != 4 or chunk.shape[1:] != expected:
      raise UserError(f'Representative images must have shape [N, {expected[0]}, '
                      f'{expected[1]}, {expected[2]}]; got an element of shape {chunk.shape}')
  images = np.concatenate(chunks, axis=0) if chunks else np.zeros((0,) + expected, np.float32)
  if images.shape[0] == 0:
    raise UserError('Representative data yielded no images; int8 calibration needs at '
                    'least one real image')
  return images


def _converter(model: Any, shape: tuple[int, int, int], saved_model_dir: str):
  """Exports `model` with a fixed [1, H, W, C] signature and returns a converter for it."""
  spec = tf.TensorSpec((1,) + shape, tf.float32, name='images')
  model.export(saved_model_dir, format='tf_saved_model', input_signature=[spec],
               verbose=False)
  return tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)


def convert_to_tflite(model: Any,
                      quantize: str = 'none',
                      representative_data: Any = None,
                      input_shape: Optional[Sequence[int]] = None) -> bytes:
  """Converts an image classifier to a .tflite flatbuffer with a [1, H, W, C] input.

  Args:
    model: a keras.Model mapping float32 [N, H, W, C] images to logits; it is called with
      training=False (BatchNorm uses its moving statistics and is folded).
    quantize: 'none' (float32) or 'int8' (full-integer post-training quantization: int8
      kernels only, int8 input and output tensors).
    representative_data: real preprocessed images for int8 calibration (see
      `calibration_images` for accepted forms); required for 'int8', ignored otherwise.
    input_shape: optional (H, W, C), inferred from the model when omitted.

  Returns:
    The .tflite model bytes.

  Raises:
    UserError: for an unknown `quantize`, missing/malformed representative data, or an
      undeterminable input shape.
  """
  check_quantize(quantize)
  shape = model_input_shape(model, input_shape)
  images = None
  if quantize == 'int8':
    images = calibration_images(representative_data, shape)
  with tempfile.TemporaryDirectory(prefix='tunas_tflite_') as tmp:
    converter = _converter(model, shape, os.path.join(tmp, 'saved_model'))
    if quantize == 'int8':
      converter.optimizations = [tf.lite.Optimize.DEFAULT]
      converter.representative_dataset = lambda: ([images[i:i + 1]] for i in
                                                  range(images.shape[0]))
      converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
      converter.inference_input_type = tf.int8
      converter.inference_output_type = tf.int8
    content = converter.convert()
  logging.info('Converted %s to TFLite (quantize=%s, input %s, %d calibration images): '
               '%d bytes', model.name, quantize, (1,) + shape,
               0 if images is None else images.shape[0], len(content))
  return content


def write_tflite(content: bytes, path: str) -> str:
  """Writes .tflite bytes to `path` atomically (temp file + rename) and returns the path."""
  atomic_write_bytes(path, content)
  logging.info('Wrote %s (%d bytes)', path, len(content))
  return path
