"""The search loop with the TuNAS searcher: outputs, learning, resume, NaN, bad inputs, tf.distribute.

Most tests search a tiny mobile space (a stem with two filter choices, one searchable block
with a fixed and a skippable bottleneck, a head) so that tracing the supernet step takes
seconds; the registered ProxylessNAS space runs in the slow tests.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

from latency import cost_model as latency_cost_model
from latency.table import MATCHED_FIELDS, LatencyTable
from tunas_tf.errors import UserError
from tunas_tf.search import loop, tunas
from tunas_tf.search.config import SearchConfig
from tunas_tf.space import OP_TAG, OneOf, SearchSpace, specs
from tunas_tf.space.mobile import expansion_oneof, filters_oneof, kernel_oneof, skippable
from tunas_tf.space.specs import (Block, ConvSpec, DepthwiseBottleneckSpec, GlobalAveragePoolSpec,
                                  MobileSpaceSpec, ResidualSpec)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = 'tiny_mobile'


def _bneck(strides):
  return DepthwiseBottleneckSpec(expansion_filters=expansion_oneof((1, 3)),
                                 kernel_size=kernel_oneof((3, 5)), strides=strides,
                                 activation=specs.RELU)


def tiny_space() -> SearchSpace:
  """9 decisions: stem filters {8, 16}, two bottlenecks (e1/e3, k3/k5), the second skippable."""
  spec = MobileSpaceSpec((
      Block((ConvSpec(3, strides=2, activation=specs.RELU),), filters_oneof((8, 16))),
      Block((OneOf((_bneck(2),), OP_TAG), ResidualSpec(skippable(_bneck(1)))),
            filters_oneof((16,))),
      Block((ConvSpec(1, activation=specs.RELU), GlobalAveragePoolSpec()), filters_oneof((32,))),
  ), 8)
  return SearchSpace(TINY, spec, 'mobile')


def tiny_config(**overrides) -> SearchConfig:
  base = dict(search_space=TINY, dataset='digits', image_size=32, target_latency_ms=0.1,
              cost_model='macs', steps=6, batch_size=4, checkpoint_every=2, summary_every=1,
              log_every=2, rematerialize=False)
  return SearchConfig(**{**base, **overrides})


def _macs_model():
  return latency_cost_model.macs_cost_model(tiny_space(), 32, num_classes=10)


def _read_rows(output_dir):
  with open(os.path.join(output_dir, loop.METRICS_FILE)) as f:
    return [json.loads(line) for line in f]


def test_search_learns_towards_the_target_and_writes_outputs(tmp_path):
  model = _macs_model()
  low, high = model.latency_range_ms()
  # Latency dominates the reward (beta = -1) and the controller learns from step 0 at a
  # high rate, so a few steps must move the policy towards the cheapest architectures.
  # Five steps run per compiled call (the tf.while_loop path of the loop).
  config = tiny_config(steps=30, target_latency_ms=low, cost_exponent=-1.0,
                       rl_learning_rate=30.0, rl_delay_fraction=0.0, op_warmup_fraction=0.0,
                       filter_warmup_fraction=0.0, summary_every=5, log_every=10,
                       checkpoint_every=10, steps_per_loop=5)
  summary = tunas.search(config, str(tmp_path), space=tiny_space())
  for name in ('arch.json', 'summary.json', 'report.png', 'config.json', 'metrics.jsonl'):
    assert (tmp_path / name).stat().st_size > 0, name
  assert os.listdir(tmp_path / 'tensorboard')
  written = json.loads((tmp_path / 'summary.json').read_text())
  assert written == json.loads(json.dumps(summary))
  for key in ('arch', 'predicted_latency_ms', 'target_latency_ms', 'steps', 'final_entropy'):
    assert key in written
  assert written['steps'] == 30 and written['resumed_from_step'] == 0
  arch = json.loads((tmp_path / 'arch.json').read_text())
  assert arch['space'] == TINY and arch['indices'] == written['indices']
  assert written['predicted_latency_ms'] == pytest.approx(model.predict_ms(arch['indices']))
  # The policy sharpened (entropy fell from sum log 2 over the decisions) and the result is
  # cheaper than an average uniform sample.
  initial_entropy = _initial_entropy(tiny_space())
  assert written['final_entropy'] < initial_entropy - 0.5
  rng = np.random.default_rng(0)
  uniform = np.stack([rng.integers(0, d.num_choices, 2000) for d in tiny_space().decisions], 1)
  assert written['predicted_latency_ms'] < float(np.mean(model.predict_many(uniform)))
  assert written['predicted_latency_ms'] < low + 0.5 * (high - low)
  rows = _read_rows(tmp_path)
  assert [r['step'] for r in rows] == [5, 10, 15, 20, 25, 30]
  assert rows[0]['rl_learning_rate'] == pytest.approx(30.0 * 4 / 256 * 10 ** (4 / 30), rel=1e-4)
  # A finished run is not repeated.
  assert tunas.search(config, str(tmp_path), space=tiny_space()) == written


def _initial_entropy(space):
  p_active = [1.0] * space.num_decisions
  for d in reversed(space.decisions):
    if d.parent is not None:
      p_active[d.index] = p_active[d.parent] / space.decisions[d.parent].num_choices
  return sum(p * np.log(d.num_choices) for p, d in zip(p_active, space.decisions))


class _Crash(Exception):
  pass


def test_interrupted_search_resumes_from_its_checkpoint(tmp_path):
  config = tiny_config(steps=6, checkpoint_every=2)
  seen = []

  def crash_after_three(step, metrics):
    seen.append(step)
    if step == 3:
      raise _Crash()

  with pytest.raises(_Crash):
    tunas.search(config, str(tmp_path), crash_after_three, space=tiny_space())
  assert not (tmp_path / 'summary.json').exists()
  assert [r['step'] for r in _read_rows(tmp_path)] == [1, 2, 3]
  resumed = []
  summary = tunas.search(config, str(tmp_path), lambda s, m: resumed.append(s),
                         space=tiny_space())
  # The checkpoint of step 2 was restored: steps 3..6 ran again, not 1..6.
  assert seen == [1, 2, 3] and resumed == [3, 4, 5, 6]
  assert summary['resumed_from_step'] == 2 and summary['steps'] == 6
  # The row of the lost step 3 was replaced, not duplicated.
  assert [r['step'] for r in _read_rows(tmp_path)] == [1, 2, 3, 4, 5, 6]
  with pytest.raises(UserError, match="another configuration.*batch_size: 4 -> 8"):
    tunas.search(tiny_config(steps=6, batch_size=8), str(tmp_path), space=tiny_space())


def _interrupt_after_five(config, tmp_path):
  def crash(step, metrics):
    if step == 5:
      raise _Crash()
  with pytest.raises(_Crash):
    tunas.search(config, str(tmp_path), crash, space=tiny_space())


def _truncate(path):
  with open(path, 'r+b') as f:
    f.truncate(os.path.getsize(path) // 2)


@pytest.mark.parametrize('damage', ['truncated data', 'missing index', 'random bytes'])
def test_a_damaged_newest_checkpoint_is_set_aside_and_the_older_one_resumed(tmp_path, damage):
  config = tiny_config(steps=6, checkpoint_every=2)
  _interrupt_after_five(config, tmp_path)
  ckpt = tmp_path / 'checkpoints'
  data = next(ckpt.glob('ckpt-4.data-*'))
  if damage == 'truncated data':
    _truncate(data)
  elif damage == 'missing index':
    (ckpt / 'ckpt-4.index').unlink()
  else:
    data.write_bytes(np.random.default_rng(0).bytes(data.stat().st_size))
  resumed = []
  summary = tunas.search(config, str(tmp_path), lambda s, m: resumed.append(s),
                         space=tiny_space())
  assert summary['resumed_from_step'] == 2 and resumed == [3, 4, 5, 6]
  assert (ckpt / 'damaged' / data.name).exists()  # Kept for a post-mortem, not deleted.
  steps = sorted(int(p.name.split('-')[1].split('.')[0]) for p in ckpt.glob('ckpt-*.index'))
  assert steps == [2, 4, 6]  # The good ckpt-2 outlived the damaged ckpt-4.


def test_a_run_whose_every_checkpoint_is_damaged_stops_instead_of_restarting(tmp_path):
  config = tiny_config(steps=6, checkpoint_every=2)
  _interrupt_after_five(config, tmp_path)
  for data in (tmp_path / 'checkpoints').glob('ckpt-*.data-*'):
    _truncate(data)
  before = sorted(p.name for p in (tmp_path / 'checkpoints').iterdir())
  with pytest.raises(UserError, match=r"every checkpoint in .* is unreadable \(ckpt-4, ckpt-2\)"):
    tunas.search(config, str(tmp_path), space=tiny_space())
  assert sorted(p.name for p in (tmp_path / 'checkpoints').iterdir()) == before


def test_nan_stops_without_saving_and_keeps_the_last_checkpoint(tmp_path):
  # An absurd learning rate overflows the shared weights within a few steps.
  config = tiny_config(steps=12, model_learning_rate=1e35, model_warmup_fraction=0.0,
                       checkpoint_every=1, summary_every=1)
  with pytest.raises(loop.SearchDiverged, match='Search diverged at step') as error:
    tunas.search(config, str(tmp_path), space=tiny_space())
  message = str(error.value)
  bad_step = int(message.split('at step ')[1].split(':')[0])
  saved = sorted(int(f.split('-')[1].split('.')[0]) for f in os.listdir(tmp_path / 'checkpoints')
                 if f.startswith('ckpt-') and f.endswith('.index'))
  assert saved and saved[-1] == bad_step - 1  # The NaN state was not saved.
  assert 'the last good checkpoint' in message and f'ckpt-{bad_step - 1}' in message
  assert not (tmp_path / 'summary.json').exists()


def _table(tmp_path, **header):
  base = {field: 'x' for field in MATCHED_FIELDS}
  base.update(search_space=TINY, image_size=32, num_classes=10, granularity='op',
              dtype='float32', threads=1)
  base.update(header)
  path = str(tmp_path / 'table.json')
  LatencyTable(base, {}).write(path)
  return path


@pytest.mark.parametrize('overrides,message', [
    (dict(target_latency_ms=5.0), r'target_latency_ms=5.0 is outside the latency range'),
    (dict(batch_size=200), r'search_valid has \d+ .* validation batch 800 .* batch size <= 180'),
    (dict(dataset='no_such_dataset'), 'known datasets'),
    (dict(cost_model='table', latency_table='TABLE:search_space=proxylessnas'),
     "built with search_space='proxylessnas'"),
    (dict(cost_model='table', latency_table='TABLE:image_size=64'), 'built with image_size=64'),
])
def test_bad_inputs_fail_before_training(tmp_path, overrides, message):
  table = overrides.get('latency_table', '')
  if table.startswith('TABLE:'):
    key, value = table[len('TABLE:'):].split('=')
    overrides['latency_table'] = _table(tmp_path, **{key: int(value) if key == 'image_size'
                                                     else value})
  with pytest.raises(UserError, match=message):
    tunas.search(tiny_config(**overrides), str(tmp_path / 'run'), space=tiny_space())
  assert not (tmp_path / 'run' / 'checkpoints').exists()


def test_search_rejects_a_space_without_decisions(tmp_path):
  with pytest.raises(UserError, match='Searchable spaces: .*proxylessnas'):
    tunas.search(SearchConfig(search_space='mobilenet_v3_large', cost_model='macs'),
                 str(tmp_path))


_MIRRORED = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices('CPU')[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from tests.test_search_loop import tiny_config, tiny_space
from tunas_tf.search import tunas
summary = tunas.search(tiny_config(steps=4, strategy='mirrored'), sys.argv[1], space=tiny_space())
print('RESULT', json.dumps(summary))
"""


def _pythonpath():
  return os.pathsep.join(p for p in (ROOT, os.environ.get('PYTHONPATH', '')) if p)


def _python(code, *args, env=None):
  env = dict(os.environ, PYTHONPATH=_pythonpath(), **(env or {}))
  return subprocess.Popen([sys.executable, '-c', code, *args], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(process, timeout=300):
  try:
    out, err = process.communicate(timeout=timeout)
  except subprocess.TimeoutExpired:
    process.kill()  # A worker waiting on a dead peer would otherwise hang forever.
    out, err = process.communicate()
    pytest.fail(f'worker timed out after {timeout} s: {err[-3000:]}')
  assert process.returncode == 0, err[-4000:]
  line = [l for l in out.splitlines() if l.startswith('RESULT ')][-1]
  return json.loads(line[len('RESULT '):])


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
  summary = _result(_python(_MIRRORED, str(tmp_path)))
  assert summary['num_replicas'] == 2 and summary['steps'] == 4
  assert (tmp_path / 'report.png').exists()
  rows = _read_rows(tmp_path)
  assert len(rows) == 4 and all(np.isfinite(r['reward']) for r in rows)
  # Each replica samples its own architecture (seeded by replica id).
  assert max(r['distinct_architectures'] for r in rows) == 2


_WORKER = """
import json, sys
from tests.test_search_loop import tiny_config, tiny_space
from tunas_tf.search import tunas
summary = tunas.search(tiny_config(steps=4, strategy='multi_worker'), sys.argv[1],
                       space=tiny_space())
print('RESULT', json.dumps(summary))
"""


def _free_ports(n):
  sockets = [socket.socket() for _ in range(n)]
  for s in sockets:
    s.bind(('localhost', 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def test_multi_worker_mirrored_strategy_with_two_local_workers(tmp_path):
  workers = [f'localhost:{p}' for p in _free_ports(2)]
  processes = []
  for index in range(2):
    tf_config = json.dumps({'cluster': {'worker': workers},
                            'task': {'type': 'worker', 'index': index}})
    processes.append(_python(_WORKER, str(tmp_path), env={'TF_CONFIG': tf_config}))
  summaries = [_result(p, timeout=240) for p in processes]
  assert [s['num_replicas'] for s in summaries] == [2, 2]
  assert summaries[0]['arch'] == summaries[1]['arch']  # One policy, kept in sync.
  written = json.loads((tmp_path / 'summary.json').read_text())
  assert written['steps'] == 4 and not (tmp_path / '.workers' / 'worker_1').exists()
  assert max(r['distinct_architectures'] for r in _read_rows(tmp_path)) == 2


def _cli(*args):
  env = dict(os.environ, PYTHONPATH=_pythonpath())
  return subprocess.run([sys.executable, '-m', 'launch.search', *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=1800, check=False)


def test_cli_bad_input_is_one_error_line(tmp_path):
  result = _cli('--search_space=proxylessnas', '--dataset=digits', '--image_size=32',
                '--target_latency_ms=84', '--cost_model=macs', f'--output_dir={tmp_path}')
  assert result.returncode == 2, result.stderr[-2000:]
  assert 'error: target_latency_ms=84.0 is outside the latency range' in result.stderr
  assert 'Traceback' not in result.stderr


@pytest.mark.slow
def test_cli_searches_proxylessnas_on_digits(tmp_path):
  result = _cli('--search_space=proxylessnas', '--dataset=digits', '--image_size=32',
                '--target_latency_ms=1.6', '--cost_model=macs', '--steps=4', '--batch_size=4',
                '--checkpoint_every=2', '--summary_every=1', f'--output_dir={tmp_path}')
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'arch: ' in result.stdout and 'predicted_latency_ms: ' in result.stdout
  summary = json.loads((tmp_path / 'summary.json').read_text())
  assert summary['steps'] == 4 and len(summary['indices']) == 73
  with Image.open(tmp_path / 'report.png') as report:  # A real image, of a readable size.
    assert report.format == 'PNG' and min(report.size) >= 200
