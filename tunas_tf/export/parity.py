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


def float_parity_report(model: Any, tflite_bytes: bytes, num_samples: int = 8, seed: int = 0,
                        input_shape=None) -> dict:
  """Compares float TFLite with Keras on random inputs uniform in [0, 1] (pixel range).

  Returns:
    {'max_abs_diff': max |Keras - TFLite|, 'max_abs_logit': max |Keras|, 'max_rel_diff':
    their ratio}. The relative figure is what round-off bounds: an untrained network whose
    batch norms were never fitted can have logits in the hundreds, where float32 round-off
    alone exceeds 1e-4 in absolute terms.
  """
  if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
    raise UserError(f'num_samples must be a positive integer; got {num_samples!r}')
  shape = model_input_shape(model, input_shape)
  images = np.random.default_rng(seed).uniform(size=(num_samples,) + shape)
  images = images.astype(np.float32)
  expected = keras_logits(model, images)
  diff = float(np.max(np.abs(expected - run_tflite(tflite_bytes, images))))
  scale = float(np.max(np.abs(expected)))
  logging.info('Float TFLite vs Keras: max |diff| = %.3g (max |logit| %.3g) over %d random '
               'inputs', diff, scale, num_samples)
  return {'max_abs_diff': diff, 'max_abs_logit': scale,
          'max_rel_diff': diff / scale if scale > 0 else 0.0}


def float_parity(model: Any, tflite_bytes: bytes, num_samples: int = 8, seed: int = 0,
                 input_shape=None) -> float:
  """Returns max |Keras - TFLite| over the outputs for random inputs uniform in [0, 1].

  Args:
    model: the source keras.Model.
    tflite_bytes: its float .tflite conversion.
    num_samples: number of random images.
    seed: seed of the random images.
    input_shape: optional (H, W, C), inferred from the model when omitted.

  Returns:
    The maximum absolute difference (expected < 1e-4 for models with fitted batch norms).
  """
  return float_parity_report(model, tflite_bytes, num_samples, seed, input_shape)['max_abs_diff']


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
