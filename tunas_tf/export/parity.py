"""Numerical checks of an exported model against its source.

Float TFLite must match Keras to round-off (BatchNorm folding and op fusion reorder float
arithmetic, nothing more); int8 cannot match logits, so it is judged by how often its top-1
class agrees with the float model on real images.
"""

from typing import Any, Union

import numpy as np
import tensorflow as tf
from absl import logging

from tunas_tf.errors import UserError
from tunas_tf.export.inference import run_tflite
from tunas_tf.export.tflite import model_input_shape


def keras_logits(model: Any, images: np.ndarray) -> np.ndarray:
  """Returns the model's float32 outputs for `images` in inference mode."""
  return np.asarray(model(tf.constant(images, tf.float32), training=False), dtype=np.float32)


def float_parity(model: Any, tflite_bytes: bytes, num_samples: int = 8, seed: int = 0,
                 input_shape=None) -> float:
  """Returns max |Keras - TFLite| over the outputs for random standard-normal inputs.

  Args:
    model: the source keras.Model.
    tflite_bytes: its float .tflite conversion.
    num_samples: number of random images.
    seed: seed of the random images.
    input_shape: optional (H, W, C), inferred from the model when omitted.

  Returns:
    The maximum absolute difference (expected < 1e-4 for small float models).
  """
  if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
    raise UserError(f'num_samples must be a positive integer; got {num_samples!r}')
  shape = model_input_shape(model, input_shape)
  images = np.random.default_rng(seed).standard_normal((num_samples,) + shape)
  images = images.astype(np.float32)
  diff = float(np.max(np.abs(keras_logits(model, images) - run_tflite(tflite_bytes, images))))
  logging.info('Float TFLite vs Keras: max |diff| = %.3g over %d random inputs', diff,
               num_samples)
  return diff


def int8_agreement(reference: Union[Any, bytes], int8_bytes: bytes,
                   images: np.ndarray) -> float:
  """Returns the fraction of images whose top-1 class agrees between float and int8.

  Args:
    reference: the float model, either a keras.Model or float .tflite bytes.
    int8_bytes: the int8 .tflite model.
    images: real preprocessed float [N, H, W, C] images (random noise says little about
      quantization error on the data the model is meant for).

  Returns:
    Top-1 agreement in [0, 1].
  """
  images = np.asarray(images, dtype=np.float32)
  if images.ndim != 4 or images.shape[0] == 0:
    raise UserError(f'int8_agreement needs a non-empty [N, H, W, C] batch of images; got '
                    f'shape {images.shape}')
  if isinstance(reference, (bytes, bytearray)):
    ref_logits = run_tflite(bytes(reference), images)
  else:
    ref_logits = keras_logits(reference, images)
  int8_logits = run_tflite(int8_bytes, images)
  agreement = float(np.mean(np.argmax(ref_logits, -1) == np.argmax(int8_logits, -1)))
  logging.info('int8 vs float top-1 agreement: %.4f on %d images', agreement, images.shape[0])
  return agreement
