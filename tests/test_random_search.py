"""The random-search baseline: rejection sampling to T0 +- tolerance through a keras-tuner Oracle."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from latency import cost_model as latency_cost_model
from tunas_tf.errors import UserError
from tunas_tf.search import random_search as rs
from tunas_tf.space import get_space

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(**kwargs):
  base = dict(search_space='proxylessnas', image_size=32, target_latency_ms=1.6,
              tolerance_ms=0.05, num_samples=6, cost_model='macs', num_classes=10, seed=3)
  return rs.RandomSearchConfig(**{**base, **kwargs})


def _rows(output_dir):
  with open(os.path.join(output_dir, rs.ARCHITECTURES_FILE)) as f:
    return [json.loads(line) for line in f]


def test_samples_are_distinct_canonical_and_inside_the_window(tmp_path):
  config = _config()
  summary = rs.random_search(config, str(tmp_path))
  rows = _rows(tmp_path)
  assert summary['num_samples'] == len(rows) == 6
  space = get_space('proxylessnas')
  model = latency_cost_model.macs_cost_model('proxylessnas', 32, num_classes=10)
  seen = set()
  for row in rows:
    arch = space.parse(':'.join(str(i) for i in row['indices']))
    assert tuple(row['indices']) == space.canonical(arch).indices
    assert row['arch'] == space.to_string(arch)
    # Recomputed independently of the oracle: the latency really is inside T0 +- tolerance.
    latency = model.predict_ms(arch.indices)
    assert latency == pytest.approx(row['predicted_latency_ms'])
    assert abs(latency - 1.6) <= 0.05
    seen.add(tuple(row['indices']))
  assert len(seen) == 6


def test_rerun_reproduces_and_resumes(tmp_path):
  first = tmp_path / 'a'
  rs.random_search(_config(num_samples=3), str(first))
  again = tmp_path / 'b'
  rs.random_search(_config(num_samples=3), str(again))
  assert _rows(first) == _rows(again)  # Same seed, same proposals.
  # Re-running in the same directory continues the oracle's trials instead of restarting.
  with pytest.raises(UserError, match='another configuration'):
    rs.random_search(_config(num_samples=3, seed=4), str(first))
  assert len(_rows(first)) == 3


def test_uniform_candidates_are_uniform_and_canonical():
  space = get_space('proxylessnas')
  candidates = rs.uniform_candidates(space, np.random.default_rng(0), 4000)
  for d in space.decisions[:12]:
    column = candidates[:, d.index]
    if d.parent is None and d.num_choices > 1:
      counts = np.bincount(column, minlength=d.num_choices) / len(column)
      np.testing.assert_allclose(counts, 1.0 / d.num_choices, atol=0.03)
  for row in candidates[:50]:
    assert tuple(row) == space.canonical(space.parse(':'.join(map(str, row)))).indices


def test_hyperparameters_follow_the_hierarchy():
  space = get_space('proxylessnas')
  hp = rs.space_hyperparameters(space)
  assert len(hp.space) == space.num_decisions
  skip = next(d for d in space.decisions if d.num_choices == 2 and d.tag == 'op')
  child = next(d for d in space.decisions if d.parent == skip.index)
  hp.values[skip.path] = 1  # Skipped: the layer's own decisions are inactive.
  assert not hp.is_active(child.path)
  hp.values[skip.path] = 0
  assert hp.is_active(child.path)


def test_unreachable_window_is_a_clear_error(tmp_path):
  with pytest.raises(UserError, match='outside the latency range'):
    rs.random_search(_config(target_latency_ms=50.0), str(tmp_path / 'a'))
  with pytest.raises(UserError, match='No new architecture'):
    # Inside the range but far in the tail: no uniform draw lands within 1 microsecond.
    rs.random_search(_config(target_latency_ms=0.88, tolerance_ms=1e-6, max_attempts=2000),
                     str(tmp_path / 'b'))


def test_cli(tmp_path):
  env = dict(os.environ, PYTHONPATH=ROOT)
  args = [sys.executable, '-m', 'launch.random_search', '--search_space=proxylessnas',
          '--image_size=32', '--target_latency_ms=1.6', '--tolerance_ms=0.05',
          '--num_samples=2', '--cost_model=macs', '--num_classes=10',
          f'--output_dir={tmp_path}']
  good = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                        check=False)
  assert good.returncode == 0, good.stderr[-2000:]
  assert 'num_samples: 2' in good.stdout and len(_rows(tmp_path)) == 2


@pytest.mark.parametrize('kwargs,message', [
    (dict(cost_model='table'), 'needs --latency_table'),
    (dict(cost_model='flops'), 'known cost models: macs, table'),
    (dict(num_samples=0), 'num_samples must be an integer >= 1, got 0'),
    (dict(tolerance_ms=-1.0), 'tolerance_ms must be >= 0'),
])
def test_bad_config_is_a_user_error(kwargs, message):
  with pytest.raises(UserError, match=message):
    _config(**kwargs)
