"""Tests of the profiler: real conversion and LiteRT timing of tiny units, resume, calibration."""

import dataclasses
import json
import os
import random

import numpy as np
import pytest

from latency import calibration, convert, enumeration, profiler, timing
from latency import keys as keys_lib
from latency.table import Entry, LatencyTable
from tests.latency_fixtures import fake_table
from tunas_tf.errors import UserError
from tunas_tf.export import convert_to_tflite, make_interpreter

SPACE = 'proxylessnas'
SIZE = 32


def _config(**changes):
  base = profiler.ProfileConfig(SPACE, SIZE, granularity='op', warmup=1, min_runs=3,
                                min_seconds=0.0, workers=1, flush_every=1)
  return dataclasses.replace(base, **changes)


@pytest.fixture(scope='module')
def units():
  """Six small op units of proxylessnas at 32 px (the stem first: it is the reference)."""
  all_units = enumeration.enumerate_units(SPACE, SIZE, 'op')
  return all_units[:6]


def _ops(content):
  loaded = make_interpreter(content, use_xnnpack=False)
  return [op['op_name'] for op in loaded.interpreter._get_ops_details()]  # pylint: disable=protected-access


def _run(content, inputs):
  interpreter = make_interpreter(content).interpreter
  for detail, x in zip(interpreter.get_input_details(), inputs):
    interpreter.set_tensor(detail['index'], x)
  interpreter.invoke()
  return interpreter.get_tensor(interpreter.get_output_details()[0]['index'])


def test_frozen_conversion_folds_bn_like_the_saved_model_path():
  unit = keys_lib.Unit('bottleneck', 8, 16, 16, mid_filters=48, kernel_size=5, strides=1,
                       se_filters=16, activation='hswish', residual=True)
  model = convert.unit_model(unit)
  rng = np.random.default_rng(0)
  for layer in model.layers:  # Non-trivial batch-norm statistics, so that folding matters.
    if 'bn' in layer.name:
      c = layer.moving_mean.shape[0]
      layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.2, c), rng.normal(0, 0.5, c),
                         rng.uniform(0.5, 2.0, c)])
  frozen = convert.convert_frozen(model)
  reference = convert_to_tflite(model)
  assert _ops(frozen) == _ops(reference)
  assert _ops(frozen) == ['CONV_2D', 'HARD_SWISH', 'DEPTHWISE_CONV_2D', 'HARD_SWISH', 'MEAN',
                          'CONV_2D', 'CONV_2D', 'LOGISTIC', 'MUL', 'CONV_2D', 'ADD']
  x = rng.standard_normal((1, 8, 8, 16)).astype(np.float32)
  expected = model(x, training=False).numpy()
  np.testing.assert_allclose(_run(frozen, [x]), expected, atol=1e-4)


def test_every_op_unit_converts(units):
  kinds = {}
  for unit in enumeration.enumerate_units(SPACE, SIZE, 'op'):
    kinds.setdefault(unit.op, unit)
  add = keys_lib.Unit('add', 4, 8, 8)
  se = keys_lib.Unit('se', 4, 16, 16, mid_filters=8, activation='relu')
  pool = keys_lib.Unit('global_pool', 2, 8, 8)
  expected = {'conv': ['CONV_2D'], 'depthwise': ['DEPTHWISE_CONV_2D'], 'add': ['ADD'],
              'global_pool': ['MEAN'], 'classifier': ['CONV_2D', 'RESHAPE'],
              'se': ['MEAN', 'CONV_2D', 'CONV_2D', 'LOGISTIC', 'MUL']}
  # At 32 px the last map is 1x1: its global pool is the identity and converts to no op at all
  # (its entry is then the bare invoke() overhead, still a positive number).
  assert kinds['global_pool'].input_size == 1 and _ops(
      convert.convert_unit(kinds.pop('global_pool'))) == []
  for unit in list(kinds.values()) + [add, se, pool]:
    assert _ops(convert.convert_unit(unit)) == expected[unit.op], unit.key
  int8 = convert.convert_unit(dataclasses.replace(add, dtype='int8'))
  details = make_interpreter(int8).interpreter.get_input_details()
  assert [d['dtype'] for d in details] == [np.int8, np.int8]


def test_tiny_real_profile(tmp_path, units):
  path = str(tmp_path / 'table.json')
  report = profiler.build_table(_config(), path, units=units)
  assert (report.needed, report.measured, report.already_present) == (6, 6, 0)
  assert report.complete and report.entries_per_minute > 0
  table = LatencyTable.read(path)
  assert sorted(table.entries) == sorted(u.key for u in units)
  for entry in table.entries.values():
    assert 0 < entry.p10_ms <= entry.median_ms <= entry.p90_ms and entry.min_ms > 0
    assert entry.n >= 3 * 5 and entry.value('min') == entry.min_ms  # 5 instances.
  header = table.header
  assert header['protocol'] == {'warmup': 1, 'min_runs': 3, 'min_seconds': 0.0,
                                'statistic': 'min', 'instances': 5}
  assert header['threads'] == 1 and header['xnnpack'] is True and header['cpu_model']
  assert header['libraries']['ai-edge-litert'] != 'missing'
  assert header['drift']['reference_key'] == units[0].key
  assert len(header['drift']['latency_ms']) == 2 and header['drift']['statistic'] == 'min'


def test_summarize_keeps_the_fastest_run_of_any_instance():
  entry = profiler.summarize([np.array([3.0, 1.5, 2.0]), np.array([5.0, 4.0, 6.0])])
  assert entry.min_ms == pytest.approx(1.5)
  assert entry.median_ms == pytest.approx(3.5) and entry.n == 6


def test_time_models_times_every_model_in_every_round(units):
  contents = [convert.convert_unit(u) for u in units[:2]]
  entries = profiler.time_models(contents, _config(instances=3, min_runs=4), seed=3)
  assert [e.n for e in entries] == [12, 12]
  assert all(0 < e.min_ms <= e.p10_ms <= e.median_ms for e in entries)


@pytest.mark.parametrize('instances', [0, -1, 1.5])
def test_bad_instances(instances):
  with pytest.raises(UserError, match='instances'):
    _config(instances=instances)


def test_resume_measures_only_missing_keys(tmp_path, units):
  path = str(tmp_path / 'table.json')
  first = []
  report = profiler.build_table(_config(), path, units=units, max_new_entries=2,
                                on_entry=lambda k, e: first.append(k))
  assert report.measured == 2 and not report.complete
  assert sorted(LatencyTable.read(path).entries) == sorted(first)

  class Interrupted(Exception):
    pass

  second = []

  def crash_after_two(key, entry):
    second.append(key)
    if len(second) == 2:
      raise Interrupted()

  with pytest.raises(Interrupted):
    profiler.build_table(_config(), path, units=units, on_entry=crash_after_two)
  # flush_every=1: both entries of the interrupted run were written before the crash.
  assert sorted(LatencyTable.read(path).entries) == sorted(first + second)
  third = []
  report = profiler.build_table(_config(), path, units=units, on_entry=lambda k, e: third.append(k))
  assert report.measured == 2 and report.already_present == 4 and report.complete
  assert sorted(first + second + third) == sorted(u.key for u in units)
  assert profiler.build_table(_config(), path, units=units).measured == 0


def test_resume_with_other_settings_is_refused(tmp_path, units):
  path = str(tmp_path / 'table.json')
  profiler.build_table(_config(), path, units=units[:1])
  with pytest.raises(UserError, match='threads=1.*threads=2'):
    profiler.build_table(_config(threads=2), path, units=units[:2])
  with pytest.raises(UserError, match='protocol'):
    profiler.build_table(_config(min_runs=7), path, units=units[:2])
  with pytest.raises(UserError, match='granularity'):
    profiler.build_table(_config(granularity='block'), path, units=units[:2])
  # 'auto' adopts the existing table's granularity.
  assert profiler.build_table(_config(granularity='auto'), path, units=units[:2]).measured == 1


@pytest.mark.parametrize('changes, match', [
    ({'threads': 0}, 'num_threads'), ({'granularity': 'layer'}, 'granularity'),
    ({'dtype': 'float16'}, 'dtype'), ({'search_space': 'nope'}, 'search space'),
    ({'min_runs': 0}, 'min_runs'), ({'min_seconds': -1.0}, 'min_seconds'),
    ({'device': ' '}, 'device'), ({'num_classes': 0}, 'num_classes')])
def test_bad_config(changes, match):
  with pytest.raises(UserError, match=match):
    _config(**changes)


def test_auto_granularity_picks_fewer_keys():
  assert profiler.resolve_granularity(_config(granularity='auto')) == 'block'  # 73 < 98
  config = profiler.ProfileConfig('mobilenet_v3_like', SIZE)
  assert profiler.resolve_granularity(config) == 'op'  # 1512 < 7584


def test_pinning_is_checked_and_restored():
  before = os.sched_getaffinity(0)
  with profiler.pinned([min(before)]):
    assert os.sched_getaffinity(0) == {min(before)}
  assert os.sched_getaffinity(0) == before
  with pytest.raises(UserError, match='not all available'):
    with profiler.pinned([10 ** 5]):
      pass


def _calibrate_and_resume(tmp_path, num_archs):
  path = str(tmp_path / 'table.json')
  table = fake_table(SPACE, SIZE, 'block')
  table.write(path)
  config = _config(granularity='block')
  fit = calibration.calibrate_table(path, num_archs, seed=3, config=config)
  stored = LatencyTable.read(path).calibration
  assert fit.num_archs == num_archs and len(stored['archs']) == num_archs and fit.a > 0
  assert all(a['measured_ms'] > 0 and a['sum_ms'] > 0 for a in stored['archs'])
  assert len({a['arch'] for a in stored['archs']}) == num_archs
  with open(path) as f:
    assert json.load(f)['calibration']['a'] == pytest.approx(fit.a)
  # Nothing new is measured (it would take seconds); the fit is recomputed from the stored
  # numbers.
  measured_before = [a['measured_ms'] for a in stored['archs']]
  again = calibration.calibrate_table(path, num_archs, seed=3, config=config)
  assert again == fit
  assert [a['measured_ms'] for a in LatencyTable.read(path).calibration['archs']] == (
      measured_before)


def test_calibration_measures_and_resumes(tmp_path):
  _calibrate_and_resume(tmp_path, 1)  # One whole model: a pure-scale fit.


@pytest.mark.slow
def test_calibration_with_an_intercept(tmp_path):
  _calibrate_and_resume(tmp_path, 3)


def test_spread_architectures_cover_the_range():
  from latency import cost_model  # pylint: disable=g-import-not-at-top
  from tunas_tf.space import get_space  # pylint: disable=g-import-not-at-top
  space = get_space('mobilenet_v3_like')
  model = cost_model.macs_cost_model(space, 224)
  archs = calibration.spread_architectures(space, model, 10, seed=0)
  values = model.predict_many([a.indices for a in archs])
  assert len({space.to_string(a) for a in archs}) == 10
  assert np.all(np.diff(values) >= 0)
  rng = random.Random(0)
  uniform = model.predict_many([space.sample(rng).indices for _ in range(10)])
  assert np.ptp(values) > 2 * np.ptp(uniform)  # Much wider than 10 uniform samples.
  low, high = model.latency_range_ms()
  assert values[0] - low < 0.05 * (high - low) and high - values[-1] < 0.05 * (high - low)


def test_calibration_refuses_phone_tables(tmp_path):
  path = str(tmp_path / 'table.json')
  table = fake_table(SPACE, SIZE, 'block')
  table.header['runtime'] = 'benchmark_model'
  table.write(path)
  with pytest.raises(UserError, match='benchmark_model'):
    calibration.calibrate_table(path, 2)


@pytest.mark.slow
def test_parallel_workers_build(tmp_path):
  units = enumeration.enumerate_units(SPACE, SIZE, 'op')[:40]
  path = str(tmp_path / 'table.json')
  report = profiler.build_table(_config(workers=2), path, units=units)
  assert report.measured == 40 and len(LatencyTable.read(path).entries) == 40


def test_quiet_guard_waits_and_repeats_rounds_while_the_host_is_busy(units):
  config = _config(instances=2, min_runs=2)
  guard = profiler.QuietGuard(max_wait_s=0.1)
  assert guard.quiet() and 0 < guard.best_ms < 100  # The first probe sets the best.
  guard.tolerance = -0.5  # Never within 50 % *below* its best: the host always looks busy.
  entries = profiler.time_models([convert.convert_unit(units[1])], config, guard=guard)
  assert entries[0].n == 2 * 2  # Two rounds kept, each of 2 runs.
  assert guard.repeated_rounds == 2 * 2  # Each round measured 3 times (2 repeats).
  assert guard.busy_rounds == 2 * 3 and guard.waited_s >= 6 * 0.1
  assert guard.summary()['repeated_rounds'] == 4


def test_quiet_guard_gives_up_on_a_lasting_slowdown_and_adopts_it():
  guard = profiler.QuietGuard(max_wait_s=0.1, best_ms=1e-9)  # Built on a far faster host.
  guard.wait()
  assert guard.busy_rounds == 1 and guard.best_ms == guard.last_ms > 1e-9


def test_clean_judges_against_the_fastest_probe_not_an_adopted_speed():
  guard = profiler.QuietGuard()
  guard.quiet()
  assert guard.clean() and guard.floor_ms == guard.last_ms
  guard.best_ms = guard.floor_ms = guard.last_ms / 2  # As if adopted after a faster start...
  guard.best_ms = guard.last_ms  # ...then a slower speed adopted: quiet, but not clean.
  assert guard.last_ms <= guard.best_ms * 1.1 and not guard.clean()


def test_build_retimes_units_timed_only_while_the_host_was_busy(tmp_path, units, monkeypatch):
  # The host cannot be made busy on demand: every round is reported as run at a busy speed.
  monkeypatch.setattr(timing.QuietGuard, 'clean', lambda self: False)
  path = str(tmp_path / 'table.json')
  profiler.build_table(_config(instances=1), path, units=units[:3])
  table = LatencyTable.read(path)
  assert table.header['quiet_guard']['retimed'] == 3
  assert all(table.entries[u.key].min_ms > 0 for u in units[:3])
  old, new = Entry(1.0, 0.9, 1.1, 3, min_ms=0.8), Entry(1.2, 1.0, 1.3, 3, min_ms=0.7)
  assert timing.faster(old, new, 'min') is new and timing.faster(old, new, 'median') is old


def test_probe_best_of_reads_the_build_guard(tmp_path, units):
  path = str(tmp_path / 'table.json')
  profiler.build_table(_config(instances=1), path, units=units[:2])
  best = LatencyTable.read(path).header['quiet_guard']['probe_best_ms']
  assert 0 < best < 100 and profiler.probe_best_of(LatencyTable.read(path).header) == best
  assert profiler.probe_best_of({}) == float('inf')


def test_quiet_guard_lets_a_quiet_host_through(units):
  config = _config(instances=3, min_runs=2)
  guard = profiler.QuietGuard(tolerance=100.0)
  profiler.time_models([convert.convert_unit(units[1])], config, guard=guard)
  assert (guard.repeated_rounds, guard.busy_rounds) == (0, 0)
