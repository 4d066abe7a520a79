"""Registry-wide smoke test: every mobile space samples, builds, runs and converts to TFLite."""

import random

import numpy as np
import pytest

from tunas_tf import export
from tunas_tf import space
from tunas_tf.models import build_model, count_macs

# The three TuNAS spaces run by default; the reference-model spaces (same layer types, other
# widths) convert in the slow run, which keeps the default suite under 10 minutes.
TUNAS_SPACES = ('proxylessnas', 'proxylessnas_enlarged', 'mobilenet_v3_like')
MOBILE_SPACES = [name if name in TUNAS_SPACES else pytest.param(name, marks=pytest.mark.slow)
                 for name in space.list_spaces('mobile')]


@pytest.mark.parametrize('name', MOBILE_SPACES)
def test_sample_build_forward_tflite(name):
  s = space.get_space(name)
  arch = s.sample(random.Random(11))
  model = build_model(s, arch, num_classes=10, image_size=32)
  logits = model(np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype('float32'))
  assert logits.shape == (2, 10)
  assert np.all(np.isfinite(np.asarray(logits)))
  content = export.convert_to_tflite(model)
  assert export.float_parity(model, content, num_samples=2) < 1e-4
  assert count_macs(s, arch, 32, 10) > 0


def test_recalibrated_batch_norm_normalizes_an_untrained_model():
  from tunas_tf.models.batch_norm import recalibrate_batch_norm
  arch = space.get_reference('mobilenet_v2')
  model = build_model(arch.space, arch, num_classes=10, image_size=32)
  images = np.random.default_rng(1).uniform(size=(32, 32, 32, 3)).astype('float32')
  before = [v.numpy().copy() for v in model.trainable_variables]
  recalibrate_batch_norm(model, images)
  assert all(np.array_equal(b, v.numpy()) for b, v in zip(before, model.trainable_variables))
  # Every batch norm now holds statistics of the images instead of the initial (0, 1).
  norms = [l for l in model.layers if 'BatchNormalization' in type(l).__name__]
  assert norms and all(not np.allclose(l.moving_variance.numpy(), 1.0) for l in norms)
  assert all(not np.allclose(l.moving_mean.numpy(), 0.0) for l in norms)
  content = export.convert_to_tflite(model)
  assert export.float_parity_report(model, content, 2)['max_rel_diff'] < 1e-4
