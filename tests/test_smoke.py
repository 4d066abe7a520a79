"""Registry-wide smoke test: every mobile space samples, builds, runs and converts to TFLite."""

import random

import numpy as np
import pytest

from tunas_tf import export
from tunas_tf import space
from tunas_tf.models import build_model, count_macs

MOBILE_SPACES = [n for n in space.list_spaces() if space.get_space(n).family == 'mobile']


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
