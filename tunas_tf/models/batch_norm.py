"""Batch-norm statistics of a model that was built but not trained."""

import keras
import numpy as np


def recalibrate_batch_norm(model: keras.Model, images: np.ndarray) -> None:
  """Sets every BatchNormalization's moving mean and variance to its statistics on `images`.

  A freshly built network has moving statistics (0, 1), so at inference its batch norms do
  not normalize and activations grow layer after layer (logits in the hundreds at 224 px).
  One training-mode pass with momentum 0 gives it the statistics a trained network would have
  on these images, which makes untrained exports numerically representative (parity checks,
  int8 calibration) without changing any trainable weight.

  Args:
    model: the Keras model (modified in place).
    images: a float32 batch [N, H, W, C] of real preprocessed images.
  """
  layers = [l for l in model._flatten_layers() if isinstance(l, keras.layers.BatchNormalization)]  # pylint: disable=protected-access
  momenta = [l.momentum for l in layers]
  try:
    for layer in layers:
      layer.momentum = 0.0
    model(np.asarray(images, np.float32), training=True)
  finally:
    for layer, momentum in zip(layers, momenta):
      layer.momentum = momentum
