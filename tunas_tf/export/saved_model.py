"""SavedModel export with a serving signature for float32 image batches."""

from typing import Any, Optional, Sequence

import tensorflow as tf
from absl import logging

from tunas_tf.fileio import atomic_directory
from tunas_tf.export.tflite import model_input_shape


def export_saved_model(model: Any,
                       path: str,
                       input_shape: Optional[Sequence[int]] = None,
                       overwrite: bool = False) -> str:
  """Exports `model` as a SavedModel, atomically.

  The SavedModel has the Keras 3 `serve` endpoint (also the `serving_default` signature)
  taking float32 [None, H, W, C] images and running the model with training=False.
  Reload with `tf.saved_model.load(path).serve(images)`.

  Args:
    model: a keras.Model mapping [N, H, W, C] float32 images to logits.
    path: destination directory; written into a temporary sibling and renamed into place.
    input_shape: optional (H, W, C), inferred from the model when omitted.
    overwrite: whether an existing `path` may be replaced.

  Returns:
    `path`.

  Raises:
    UserError: if `path` exists and `overwrite` is False, or the input shape is unknown.
  """
  shape = model_input_shape(model, input_shape)
  spec = tf.TensorSpec((None,) + shape, tf.float32, name='images')
  with atomic_directory(path, overwrite=overwrite) as tmp_dir:
    model.export(tmp_dir, format='tf_saved_model', input_signature=[spec], verbose=False)
  logging.info('Wrote SavedModel %s (input [None, %d, %d, %d])', path, *shape)
  return path
