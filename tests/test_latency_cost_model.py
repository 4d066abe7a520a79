"""Tests of the cost models: exact sums, vectorized speed, exact DP range, calibration."""

import random
import time

import numpy as np
import pytest

import latency
from latency import cost_model as cost_lib
from latency import enumeration
from tests.latency_fixtures import all_archs, toy_space
from tests.latency_fixtures import fake_table
from tunas_tf.errors import UserError
from tunas_tf.models import count_macs
from tunas_tf.space import Architecture, get_space


def _hand_sum(table, space, arch, image_size):
  """Σ of the entries of an architecture's units, computed without the lattice."""
  header = table.header
  units = enumeration.arch_units(space, arch, image_size, header['granularity'],
                                 num_classes=header['num_classes'])
  return sum(table.entries[u.key].median_ms for u in units)


@pytest.mark.parametrize('name, granularity', [('proxylessnas', 'block'),
                                               ('mobilenet_v3_like', 'op'),
                                               ('proxylessnas_enlarged', 'block')])
def test_prediction_equals_hand_sum(name, granularity):
  space = get_space(name)
  table = fake_table(name, 32, granularity, seed=1)
  model = cost_lib.table_cost_model(table, name, 32, calibrate=False)
  archs = [space.sample(random.Random(i)) for i in range(50)]
  predicted = model.predict_many([a.indices for a in archs])
  expected = [_hand_sum(table, space, a, 32) for a in archs]
  np.testing.assert_allclose(predicted, expected, rtol=1e-12)
  assert model.predict_ms(archs[0]) == pytest.approx(expected[0], rel=1e-12)
  assert model.predict_ms(list(archs[1].indices)) == pytest.approx(expected[1], rel=1e-12)


def test_inactive_decisions_are_ignored():
  space = get_space('proxylessnas')
  model = cost_lib.table_cost_model(fake_table('proxylessnas', 32, 'block'), space, 32,
                                    calibrate=False)
  skip = next(d for d in space.decisions if d.oneof.labels == ('', 'skip'))
  inner = [d.index for d in space.decisions if d.parent == skip.index]
  base = [0] * space.num_decisions
  base[skip.index] = 1  # Skipped: the kernel / expansion inside are inactive.
  other = list(base)
  for i in inner:
    other[i] = space.decisions[i].num_choices - 1
  assert model.predict_ms(base) == model.predict_ms(other)
  base[skip.index] = other[skip.index] = 0
  assert model.predict_ms(base) != model.predict_ms(other)


def test_predict_many_is_vectorized_and_fast():
  space = get_space('mobilenet_v3_like')
  model = cost_lib.table_cost_model(fake_table('mobilenet_v3_like', 32, 'op'), space, 32,
                                    calibrate=False)
  rng = random.Random(0)
  batch = np.asarray([space.sample(rng).indices for _ in range(2000)])
  start = time.perf_counter()
  many = model.predict_many(batch)
  many_s = time.perf_counter() - start
  start = time.perf_counter()
  singles = [model.predict_ms(row) for row in batch[:200]]
  single_s = (time.perf_counter() - start) / 200
  np.testing.assert_allclose(many[:200], singles)
  assert many.shape == (2000,) and many.dtype == np.float64
  assert single_s < 1e-3, f'{single_s * 1e3:.2f} ms per architecture'
  assert many_s / 2000 < 0.05 * single_s, 'predict_many is not vectorized'


def test_bad_indices():
  model = latency.macs_cost_model('proxylessnas', 224)
  n = model.space.num_decisions
  with pytest.raises(UserError, match='shape'):
    model.predict_many(np.zeros((3, n + 1), dtype=int))
  bad = np.zeros((2, n), dtype=int)
  bad[1, 5] = 99
  with pytest.raises(UserError, match='row 1.*out of range'):
    model.predict_many(bad)
  with pytest.raises(UserError, match='integers'):
    model.predict_many(np.zeros((1, n)) + 0.5)
  with pytest.raises(UserError, match='space'):
    model.predict_ms(Architecture('mobilenet_v2', (0,) * n))


@pytest.mark.parametrize('curve', [0.0, 0.3])
@pytest.mark.parametrize('granularity', ['op', 'block'])
def test_range_is_brute_force_min_max(granularity, curve):
  space = toy_space()
  table = fake_table(space, 32, granularity, seed=3)
  model = cost_lib.table_cost_model(table, space, 32, calibrate=False)
  model.scale, model.bias_ms, model.curve = 1.7, 0.25, curve
  archs = list(all_archs(space))
  values = model.predict_many([a.indices for a in archs])
  lo, hi = model.latency_range_ms()
  assert lo == pytest.approx(values.min(), rel=1e-12)
  assert hi == pytest.approx(values.max(), rel=1e-12)


def test_macs_model_equals_count_macs_and_its_range():
  space = toy_space()
  model = latency.macs_cost_model(space, 32, ms_per_mmac=2.0, bias_ms=1.5, num_classes=10)
  archs = list(all_archs(space))
  values = model.predict_many([a.indices for a in archs])
  expected = [2.0 * count_macs(space, a, 32, 10) / 1e6 + 1.5 for a in archs]
  np.testing.assert_allclose(values, expected, rtol=1e-12)
  assert model.latency_range_ms() == pytest.approx((min(expected), max(expected)), rel=1e-12)
  assert isinstance(model, latency.CostModel)
  assert model.space_name == 'toy' and model.image_size == 32
  with pytest.raises(UserError, match='ms_per_mmac'):
    latency.macs_cost_model('proxylessnas', 224, ms_per_mmac=0)


def test_macs_model_of_registered_space():
  space = get_space('mobilenet_v3_like')
  model = latency.macs_cost_model('mobilenet_v3_like', 224)
  arch = space.sample(random.Random(5))
  assert model.predict_ms(arch) == pytest.approx(
      cost_lib.DEFAULT_MS_PER_MMAC * count_macs(space, arch, 224) / 1e6)
  lo, hi = model.latency_range_ms()
  assert 0 < lo < model.predict_ms(arch) < hi


def test_calibration_fit_recovers_a_line():
  rng = np.random.default_rng(0)
  sums = rng.uniform(5, 20, 30)
  measured = 1.2 * sums + 0.8
  fit = latency.fit_calibration(sums, measured)
  assert fit.a == pytest.approx(1.2) and fit.b == pytest.approx(0.8, abs=1e-9)
  assert fit.rmse_ms < 1e-9 and fit.num_archs == 30
  noisy = measured * rng.uniform(0.97, 1.03, 30)
  fit = latency.fit_calibration(sums, noisy)
  assert fit.a == pytest.approx(1.2, rel=0.05) and 0 < fit.mape < 0.03
  # Too few points for an intercept: a pure scale.
  fit = latency.fit_calibration([2.0, 4.0], [3.0, 6.0])
  assert (fit.a, fit.b) == (pytest.approx(1.5), 0.0)
  with pytest.raises(UserError):
    latency.fit_calibration([], [])
  with pytest.raises(UserError):
    latency.fit_calibration([1.0, -2.0, 3.0], [1.0, 2.0, 3.0])


def test_calibration_follows_a_bend_with_a_monotone_curve():
  rng = np.random.default_rng(1)
  sums = rng.uniform(0.1, 3.0, 40)
  bent = (0.9 * sums + 0.1 * sums ** 2 + 0.02) * rng.uniform(0.99, 1.01, 40)
  fit = latency.fit_calibration(sums, bent)
  assert fit.c == pytest.approx(0.1, rel=0.2) and fit.a == pytest.approx(0.9, rel=0.05)
  assert fit.mape < 0.01
  np.testing.assert_allclose(fit.predict(sums), fit.a * sums + fit.c * sums ** 2 + fit.b)
  assert '* sum^2' in fit.formula()
  # The straight line misses the same points by more.
  line = np.polyfit(sums, bent, 1)
  assert np.mean(np.abs(np.polyval(line, sums) / bent - 1)) > 2 * fit.mape
  # Too few architectures for a curve, or a bend the wrong way (c < 0 would fall at large Σ):
  # a line.
  assert latency.fit_calibration(sums[:7], bent[:7]).c == 0.0
  concave = 2.0 * sums - 0.2 * sums ** 2 + 1.0
  fit = latency.fit_calibration(sums, concave)
  assert fit.c == 0.0 and fit.a > 0 and '^2' not in fit.formula()


@pytest.mark.parametrize('num_archs, curve', [(6, 0.0), (12, 0.05)])
def test_stored_calibration_is_applied_and_ranged(tmp_path, num_archs, curve):
  # 6 architectures: a line (too few for a curve); 12 measured on a bend: the curve.
  space = get_space('proxylessnas')
  table = fake_table('proxylessnas', 32, 'block', seed=2)
  raw = cost_lib.table_cost_model(table, space, 32, calibrate=False)
  true_ms = lambda s: 2.0 * s + curve * s ** 2 + 0.5
  archs = [space.sample(random.Random(i)) for i in range(num_archs)]
  sums = raw.predict_many([a.indices for a in archs])
  table.calibration = {'archs': [{'arch': space.to_string(a), 'indices': list(a.indices),
                                  'measured_ms': float(true_ms(s))}
                                 for a, s in zip(archs, sums)]}
  path = str(tmp_path / 't.json')
  table.write(path)
  model = latency.load_cost_model(path, 'proxylessnas', 32)
  assert model.scale == pytest.approx(2.0) and model.bias_ms == pytest.approx(0.5)
  assert model.curve == pytest.approx(curve, rel=1e-6, abs=1e-9)
  arch = space.sample(random.Random(99))
  assert model.predict_ms(arch) == pytest.approx(true_ms(raw.predict_ms(arch)))
  raw_lo, raw_hi = raw.latency_range_ms()
  assert model.latency_range_ms() == pytest.approx((true_ms(raw_lo), true_ms(raw_hi)))


def _measured_only_table(space, num_archs=6):
  table = fake_table('proxylessnas', 32, 'block', seed=2)
  archs = [space.sample(random.Random(i)) for i in range(num_archs)]
  table.calibration = {'archs': [{'arch': space.to_string(a), 'indices': list(a.indices),
                                  'measured_ms': 1.0 + i} for i, a in enumerate(archs)]}
  return table


def test_stored_coefficients_are_what_predictions_apply(tmp_path):
  # A table calibrated by calibrate_table stores (a, b, c) beside its measurements; those, not
  # a refit of the measurements, are applied (its validation was made with them).
  space = get_space('proxylessnas')
  table = _measured_only_table(space)
  table.calibration.update({'a': 1.5, 'b': -0.25, 'c': 0.125})
  path = str(tmp_path / 't.json')
  table.write(path)
  model = latency.load_cost_model(path, 'proxylessnas', 32)
  assert (model.scale, model.bias_ms, model.curve) == (1.5, -0.25, 0.125)
  raw = cost_lib.table_cost_model(table, space, 32, calibrate=False)
  arch = space.sample(random.Random(7))
  total = raw.predict_ms(arch)
  assert model.predict_ms(arch) == pytest.approx(1.5 * total + 0.125 * total ** 2 - 0.25)


@pytest.mark.parametrize('damage,match', [
    (lambda c: c['archs'][2].update(measured_ms=float('nan')),
     r"calibration architecture 2 has measured_ms nan; it must be a positive"),
    (lambda c: c['archs'][1].update(measured_ms=-3.0), 'calibration architecture 1 has '
                                                       'measured_ms -3.0'),
    (lambda c: c['archs'][0].update(indices=[0, 1, 2]),
     r"calibration architecture 0: Space 'proxylessnas' has 73 decisions, got 3 indices"),
    (lambda c: c['archs'][3].update(indices='0:1'),
     r'calibration architecture 3: "indices" must be a list of integers'),
    (lambda c: c['archs'][4].pop('measured_ms'),
     r'calibration architecture 4 needs "indices" and "measured_ms"'),
    (lambda c: c.update(a=float('nan'), b=0.0), r"calibration coefficients .* must be finite"),
])
def test_a_damaged_calibration_is_a_clear_error(tmp_path, damage, match):
  table = _measured_only_table(get_space('proxylessnas'))
  damage(table.calibration)
  path = str(tmp_path / 't.json')
  table.write(path)
  with pytest.raises(UserError, match=r"Latency table '.*t\.json': " + match):
    latency.load_cost_model(path, 'proxylessnas', 32)
