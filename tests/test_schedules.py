"""Schedules at step 0, at the end of warmup and at the last step."""

import pytest

from tunas_tf.search import schedules


def test_linear_decay():
  assert float(schedules.linear_decay(0, 100)) == 1.0
  assert float(schedules.linear_decay(50, 100)) == pytest.approx(0.5)
  assert float(schedules.linear_decay(100, 100)) == 0.0
  assert float(schedules.linear_decay(400, 100)) == 0.0
  assert float(schedules.linear_decay(3, 0)) == 0.0


def test_cosine_with_warmup():
  f = lambda t: float(schedules.cosine_decay_with_linear_warmup(t, 1000, 100, 2.0))
  assert f(0) == 0.0
  assert f(50) == pytest.approx(1.0)
  assert f(100) == pytest.approx(2.0)
  assert f(550) == pytest.approx(1.0)
  assert f(1000) == pytest.approx(0.0, abs=1e-6)
  assert f(5000) == pytest.approx(0.0, abs=1e-6)


def test_exponential_rl_learning_rate():
  f = lambda t: float(schedules.exponential_rl_learning_rate(t, 1000, 250, 0.003))
  assert f(0) == 0.0
  assert f(249) == 0.0
  assert f(250) == pytest.approx(0.003)
  assert f(625) == pytest.approx(0.003 * 10 ** 0.5)
  assert f(1000) == pytest.approx(0.03)
