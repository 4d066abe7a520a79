"""Tests of the on-device path: benchmark_model bundles and the import of their logs."""

import json
import os
import subprocess

import pytest

import latency
from latency import bundle
from latency.table import LatencyTable
from tunas_tf.errors import UserError
from tunas_tf.space import get_space

# benchmark_model output as printed by TF 2.x builds (no percentiles).
LOG_TF2 = """STARTING!
Log parameter values verbosely: [0]
Min num runs: [50]
Num threads: [1]
Min warmup runs: [10]
Graph: [/data/local/tmp/tunas_latency/models/unit_00000.tflite]
#threads used for CPU inference: [1]
Use xnnpack: [1]
Loaded model /data/local/tmp/tunas_latency/models/unit_00000.tflite
INFO: Initialized TensorFlow Lite runtime.
INFO: Created TensorFlow Lite XNNPACK delegate for CPU.
Explicitly applied XNNPACK delegate, and the model graph will be completely executed by the delegate.
The input model file size (MB): 0.003652
Initialized session in 3.214ms.
Running benchmark for at least 10 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
count=3071 first=318 curr=152 min=147 max=498 avg=162.63 std=21

Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
count=6263 first=163 curr=155 min=148 max=1041 avg=158.21 std=18

Inference timings in us: Init: 3214, First inference: 318, Warmup (avg): 162.63, Inference (avg): 158.21
Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the actual memory footprint of the model at runtime. Take the information at your discretion.
Memory footprint delta from the start of the tool (MB): init=1.12109 overall=1.97266
"""

# Newer LiteRT builds: INFO prefix, percentiles, exponent notation for large values.
LOG_LITERT = """INFO: STARTING!
INFO: Log parameter values verbosely: [0]
INFO: Num threads: [1]
INFO: Graph: [/data/local/tmp/tunas_latency/models/arch_000.tflite]
INFO: Loaded model /data/local/tmp/tunas_latency/models/arch_000.tflite
INFO: Created TensorFlow Lite XNNPACK delegate for CPU.
INFO: The input model file size (MB): 13.2108
INFO: Initialized session in 119.515ms.
INFO: Running benchmark for at least 10 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
INFO: count=9 first=87112 curr=51629 min=51629 max=87112 avg=58147.4 std=11478 p5=51629 median=51962 p95=87112

INFO: Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
INFO: count=50 first=1249964 curr=1240143 min=1238588 max=1252566 avg=1.24027e+06 std=2565 p5=1238753 median=1239807 p95=1247415

INFO: Inference timings in us: Init: 119515, First inference: 87112, Warmup (avg): 58147.4, Inference (avg): 1.24027e+06
INFO: Memory footprint delta from the start of the tool (MB): init=55.4961 overall=55.4961
"""

LOG_LOGCAT = """I tflite  : Loaded model /data/local/tmp/m.tflite
I tflite  : count=25 first=2201 curr=2150 min=2101 max=2398 avg=2187.5 std=61 p5=2110 median=2175 p95=2350
I tflite  : Inference timings in us: Init: 9231, First inference: 2201, Warmup (avg): 2210, Inference (avg): 2187.5
"""

LOG_FAILED = """STARTING!
Graph: [/data/local/tmp/tunas_latency/models/unit_00001.tflite]
ERROR: Could not open '/data/local/tmp/tunas_latency/models/unit_00001.tflite'.
Failed to mmap model /data/local/tmp/tunas_latency/models/unit_00001.tflite
"""


def test_parse_tf2_log_uses_the_timed_run_and_the_mean():
  result = bundle.parse_benchmark_log(LOG_TF2)
  assert (result.count, result.avg_us, result.std_us, result.min_us) == (6263, 158.21, 18, 148)
  assert result.median_us is None and result.init_us == 3214
  assert result.inference_avg_us == 158.21
  entry = result.entry()
  assert entry.median_ms == pytest.approx(0.15821) and entry.n == 6263
  assert entry.p10_ms is None and entry.p90_ms is None


def test_parse_litert_log_uses_the_median():
  result = bundle.parse_benchmark_log(LOG_LITERT)
  assert result.count == 50 and result.avg_us == pytest.approx(1.24027e6)
  assert (result.p5_us, result.median_us, result.p95_us) == (1238753, 1239807, 1247415)
  assert result.entry().median_ms == pytest.approx(1239.807)


def test_parse_logcat_prefixed_log():
  assert bundle.parse_benchmark_log(LOG_LOGCAT).entry().median_ms == pytest.approx(2.175)


@pytest.mark.parametrize('text', [LOG_FAILED, '', 'count=0 first=1 curr=1 min=1 max=1 avg=0 std=0'])
def test_parse_failed_log_is_a_clear_error(text):
  with pytest.raises(UserError, match='benchmark_model|count'):
    bundle.parse_benchmark_log(text, 'unit_00001.log')


@pytest.fixture(scope='module')
def bundle_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp('bundle'))
  bundle.export_bundle(path, 'proxylessnas', 32, granularity='op', num_classes=10, threads=2,
                       num_runs=40, warmup_runs=5, limit=3)
  return path


def test_export_bundle_layout(bundle_dir):
  manifest = bundle.read_manifest(bundle_dir)
  units = latency.enumerate_units('proxylessnas', 32, 'op', num_classes=10)[:3]
  assert [u['key'] for u in manifest['units']] == [u.key for u in units]
  for item in manifest['units']:
    with open(os.path.join(bundle_dir, 'models', item['file']), 'rb') as f:
      assert f.read(8)[4:8] == b'TFL3'  # The flatbuffer identifier of .tflite files.
  with open(os.path.join(bundle_dir, 'models.txt')) as f:
    assert sorted(f.read().split()) == sorted(u['file'] for u in manifest['units'])
  with open(os.path.join(bundle_dir, bundle.SCRIPT)) as f:
    script = f.read()
  for flag in ('--num_threads=2', '--num_runs=40', '--warmup_runs=5', '--use_xnnpack=true',
               '--graph='):
    assert flag in script
  assert os.access(os.path.join(bundle_dir, bundle.SCRIPT), os.X_OK)


def _fake_adb(tmp_path):
  """An `adb` stand-in: 'push' succeeds, 'shell ... --graph=...' prints a benchmark_model log."""
  calls = tmp_path / 'calls.txt'
  script = tmp_path / 'adb'
  script.write_text(f"""#!/bin/sh
echo "$@" >> {calls}
case "$*" in
  *--graph=*) cat <<'EOF'
{LOG_LOGCAT}EOF
  ;;
esac
""")
  script.chmod(0o755)
  return str(script), calls


def test_script_runs_every_model_once_and_resumes(bundle_dir, tmp_path):
  adb, calls = _fake_adb(tmp_path)
  run = lambda: subprocess.run(['sh', os.path.join(bundle_dir, bundle.SCRIPT)], check=True,
                               env={**os.environ, 'ADB': adb, 'CPU_MASK': 'f0'},
                               capture_output=True, text=True)
  run()
  lines = calls.read_text().splitlines()
  graphs = [l for l in lines if '--graph=' in l]
  assert len(graphs) == 3 and all(l.startswith('shell taskset f0 ') for l in graphs)
  logs = sorted(os.listdir(os.path.join(bundle_dir, 'logs')))
  assert logs == sorted(u['file'][:-7] + '.log' for u in bundle.read_manifest(bundle_dir)['units'])
  os.remove(os.path.join(bundle_dir, 'logs', logs[0]))
  run()
  graphs = [l for l in calls.read_text().splitlines() if '--graph=' in l]
  assert len(graphs) == 4  # Only the deleted log was measured again.


def _write_logs(directory, manifest, text_of):
  os.makedirs(os.path.join(directory, 'logs'), exist_ok=True)
  for item in manifest['units'] + manifest.get('archs', []):
    text = text_of(item)
    if text is not None:
      with open(os.path.join(directory, 'logs', item['file'][:-7] + '.log'), 'w') as f:
        f.write(text)


def _copy_bundle(src, dst):
  os.makedirs(dst, exist_ok=True)
  manifest = bundle.read_manifest(src)
  with open(os.path.join(dst, bundle.MANIFEST), 'w') as f:
    json.dump(manifest, f)
  return manifest


def test_import_logs_builds_a_table(bundle_dir, tmp_path):
  work = str(tmp_path / 'b')
  manifest = _copy_bundle(bundle_dir, work)
  space = get_space('proxylessnas')
  arch = space.sample(__import__('random').Random(0))
  manifest['archs'] = [{'arch': space.to_string(arch), 'indices': list(arch.indices),
                        'file': 'arch_000.tflite'}]
  with open(os.path.join(work, bundle.MANIFEST), 'w') as f:
    json.dump(manifest, f)
  values = {}

  def log_of(item):
    if item['file'].startswith('arch'):
      return LOG_LITERT
    i = len(values) + 1
    values[item.get('key')] = 0.1 * i
    return LOG_TF2.replace('avg=158.21', f'avg={100 * i}')

  _write_logs(work, manifest, log_of)
  out = str(tmp_path / 'pixel.json')
  table = bundle.import_logs(work, out, device='pixel4', cpu='Cortex-A76')
  again = LatencyTable.read(out)
  assert {k: e.median_ms for k, e in again.entries.items()} == pytest.approx(values)
  header = again.header
  assert (header['runtime'], header['device'], header['cpu_model']) == (
      'benchmark_model', 'pixel4', 'Cortex-A76')
  assert header['threads'] == 2 and header['num_classes'] == 10
  assert header['protocol']['statistic'] == 'mean'  # The TF2 logs print no median.
  assert again.calibration['archs'][0]['measured_ms'] == pytest.approx(1239.807)
  assert table.entries == again.entries


def test_import_with_missing_logs(bundle_dir, tmp_path):
  work = str(tmp_path / 'b')
  manifest = _copy_bundle(bundle_dir, work)
  first = manifest['units'][0]['file']
  _write_logs(work, manifest, lambda item: LOG_LOGCAT if item['file'] == first else None)
  out = str(tmp_path / 'partial.json')
  with pytest.raises(UserError, match='2 of 3 logs are missing.*run_benchmarks.sh'):
    bundle.import_logs(work, out, device='pixel4')
  table = bundle.import_logs(work, out, device='pixel4', allow_missing=True)
  assert list(table.entries) == [manifest['units'][0]['key']]
  assert table.header['protocol']['statistic'] == 'median'
  with pytest.raises(UserError, match='misses'):
    latency.load_cost_model(out, 'proxylessnas', 32)


def test_import_errors(tmp_path):
  with pytest.raises(UserError, match='manifest.json'):
    bundle.import_logs(str(tmp_path), str(tmp_path / 't.json'), device='x')
  (tmp_path / bundle.MANIFEST).write_text('{"manifest_version": 7}')
  with pytest.raises(UserError, match='manifest_version'):
    bundle.import_logs(str(tmp_path), str(tmp_path / 't.json'), device='x')
