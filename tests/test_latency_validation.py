"""Tests of validation metrics, the CLI and the export's --latency_table."""

import json
import math
import os
import random
import subprocess
import sys

import numpy as np
import pytest

import latency
from latency import validation
from tests.latency_fixtures import fake_table
from tunas_tf.errors import UserError
from tunas_tf.space import get_space, parse_architecture

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_metrics_by_hand():
  predicted, measured = [11.0, 9.0, 21.0, 40.0], [10.0, 10.0, 20.0, 50.0]
  m = validation.metrics(predicted, measured)
  # Relative errors: +10 %, -10 %, +5 %, -20 %.
  assert m['n'] == 4
  assert m['mape'] == pytest.approx(0.1125)
  assert m['rmse_ms'] == pytest.approx(math.sqrt((1 + 1 + 1 + 100) / 4))
  assert m['bias'] == pytest.approx((1.1 + 0.9 + 1.05 + 0.8) / 4)
  assert m['mean_relative_error'] == pytest.approx(-0.0375)
  assert m['within_5pct'] == 0.25 and m['within_10pct'] == 0.75
  # 5 concordant pairs, 0 discordant, one pair tied in `measured` (tau-b).
  assert m['kendall_tau'] == pytest.approx(5 / math.sqrt(6 * 5))
  perfect = validation.metrics([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
  assert perfect['mape'] == 0 and perfect['kendall_tau'] == pytest.approx(1.0)
  assert validation.metrics([3.0, 2.0, 1.0], [1.0, 2.0, 3.0])['kendall_tau'] == pytest.approx(-1)


@pytest.mark.parametrize('predicted, measured', [([], []), ([1.0], [1.0, 2.0]),
                                                 ([1.0, 2.0], [0.0, 2.0])])
def test_metrics_errors(predicted, measured):
  with pytest.raises(UserError):
    validation.metrics(predicted, measured)


def test_plot_writes_a_png(tmp_path):
  path = str(tmp_path / 'sub' / 'v.png')
  rng = np.random.default_rng(0)
  measured = rng.uniform(5, 10, 20)
  validation.plot(measured * rng.uniform(0.9, 1.1, 20), measured, path, 'title')
  with open(path, 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_held_out_architectures_avoid_the_calibration_set():
  space = get_space('proxylessnas')
  first = validation.held_out_architectures(space, 20, seed=4, exclude=())
  strings = [space.to_string(a) for a in first]
  assert len(set(strings)) == 20
  second = validation.held_out_architectures(space, 20, seed=4, exclude=strings[:10])
  assert not {space.to_string(a) for a in second} & set(strings[:10])
  with pytest.raises(UserError, match='fewer'):
    validation.held_out_architectures(get_space('mobilenet_v3_large'), 2, seed=0, exclude=())


def test_export_adds_the_table_prediction(tmp_path):
  from tunas_tf.export import from_arch  # pylint: disable=g-import-not-at-top
  path = str(tmp_path / 't.json')
  table = fake_table('proxylessnas', 32, 'block', num_classes=10)
  table.write(path)
  config = from_arch.ExportConfig(arch='random:3', search_space='proxylessnas', image_size=32,
                                  num_classes=10, latency_table=path)
  arch = parse_architecture('random:3', 'proxylessnas')
  expected = latency.load_cost_model(path, 'proxylessnas', 32).predict_ms(arch)
  assert from_arch._predicted_latency(config, arch) == pytest.approx(expected)  # pylint: disable=protected-access
  wrong = from_arch.ExportConfig(arch='random:3', search_space='proxylessnas', image_size=32,
                                 num_classes=1000, latency_table=path)
  with pytest.raises(UserError, match='num_classes=10'):
    from_arch._predicted_latency(wrong, arch)  # pylint: disable=protected-access
  other_size = from_arch.ExportConfig(arch='random:3', search_space='proxylessnas',
                                      image_size=64, num_classes=10, latency_table=path)
  with pytest.raises(UserError, match='image_size'):
    from_arch._predicted_latency(other_size, arch)  # pylint: disable=protected-access


def _cli(*args, module='launch.profile_latency'):
  return subprocess.run([sys.executable, '-m', module, *args], cwd=ROOT, capture_output=True,
                        text=True, env={**os.environ, 'PYTHONPATH': ROOT})


def test_cli_count_keys_and_errors(tmp_path):
  result = _cli('--count_keys', '--search_space=proxylessnas', '--image_size=224')
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip() == 'block=73 op=98'
  result = _cli('--validate', '--search_space=proxylessnas')
  assert result.returncode == 2 and 'error: --table, --output_dir required' in result.stderr
  result = _cli('--count_keys', '--export_bundle=/tmp/x', '--search_space=proxylessnas')
  assert result.returncode == 2 and 'Choose one mode' in result.stderr
  bad = tmp_path / 'bad.json'
  bad.write_text('{"schema_version": 1, "header": {"threads": 0')
  result = _cli(f'--output={bad}', '--search_space=proxylessnas', '--image_size=32')
  assert result.returncode == 2 and 'not valid JSON' in result.stderr


@pytest.mark.slow
def test_cli_build_calibrate_validate_export(tmp_path):
  """The whole host path on a tiny image: build, calibrate, validate, export with prediction."""
  table = str(tmp_path / 'table.json')
  common = ['--search_space=proxylessnas', '--image_size=32', '--num_classes=10']
  result = _cli(*common, f'--output={table}', '--min_runs=5', '--min_seconds=0', '--warmup=2',
                '--workers=1', '--calibrate_archs=3')
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'calibration: measured =' in result.stdout
  out = str(tmp_path / 'val')
  result = _cli('--validate', *common, f'--table={table}', '--num_archs=3', '--seed=7',
                f'--output_dir={out}', '--workers=1')
  assert result.returncode == 0, result.stderr[-3000:]
  with open(os.path.join(out, 'validation.json')) as f:
    summary = json.load(f)
  for key in ('within_5pct', 'within_10pct', 'kendall_tau', 'mape', 'rmse_ms', 'bias'):
    assert key in summary
  assert os.path.getsize(os.path.join(out, 'validation.png')) > 1000
  calibration_archs = {a['arch'] for a in latency.LatencyTable.read(table).calibration['archs']}
  assert not calibration_archs & {a['arch'] for a in summary['archs']}
  export_dir = str(tmp_path / 'export')
  result = _cli('--arch=random:5', *common, f'--output_dir={export_dir}',
                f'--latency_table={table}', '--nosaved_model', module='launch.export_tflite')
  assert result.returncode == 0, result.stderr[-3000:]
  with open(os.path.join(export_dir, 'summary.json')) as f:
    exported = json.load(f)
  arch = get_space('proxylessnas').parse(exported['arch'])
  expected = latency.load_cost_model(table, 'proxylessnas', 32).predict_ms(arch)
  assert exported['predicted_latency_ms'] == pytest.approx(expected)


def test_random_arch_strings_are_stable():
  # The validation set is defined by (seed, calibration set): sampling must be deterministic.
  space = get_space('mobilenet_v3_like')
  a = [space.to_string(x) for x in validation.held_out_architectures(space, 5, 1, ())]
  rng = random.Random(1)
  assert a == [space.to_string(space.sample(rng)) for _ in range(5)]
