"""Tests of bench.cell_search_cifar and bench.setn_ranking on `digits` (C=4, N=1, a few steps)."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from bench import oneshot
from tunas_tf import data as data_lib
from tunas_tf.benchmarks import NB201Benchmark, default_csv_path
from tunas_tf.search import cell_search
from tunas_tf.search.cell_config import CellSearchConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
needs_csv = pytest.mark.skipif(not os.path.isfile(default_csv_path()),
                               reason='no NB201 accuracy CSV')
TINY = ['--dataset=digits', '--channels=4', '--num_cells=1', '--batch_size=16',
        '--eval_batch_size=32', '--log_every=1']


def _tau_b(x, y):
  """Kendall's τ-b by counting pairs (an independent check of the library's O(n log n) one)."""
  concordant = discordant = ties_x = ties_y = 0
  for i in range(len(x)):
    for j in range(i + 1, len(x)):
      dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
      concordant += dx * dy > 0
      discordant += dx * dy < 0
      ties_x += dx == 0 and dy != 0
      ties_y += dy == 0 and dx != 0
  denominator = np.sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y))
  return (concordant - discordant) / denominator if denominator else float('nan')


def _run(module, *args):
  result = subprocess.run([sys.executable, '-m', module, *TINY, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stdout


def test_spearman_handles_ties_and_matches_scipy():
  assert oneshot.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
  assert oneshot.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
  assert np.isnan(oneshot.spearman([1, 1, 1], [1, 2, 3]))
  np.testing.assert_array_equal(oneshot._ranks([5, 1, 5, 3]), [2.5, 0, 2.5, 1])
  stats = pytest.importorskip('scipy.stats')
  rng = np.random.default_rng(0)
  x, y = rng.integers(0, 5, 40), rng.integers(0, 7, 40)
  assert oneshot.spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0])


def test_restored_template_reproduces_the_searchs_candidate_scores(tmp_path):
  config = CellSearchConfig(algorithm='random', dataset='digits', channels=4, num_cells=1,
                            steps=3, batch_size=16, eval_batch_size=32, num_candidates=3)
  cell_search.search_cell(config, str(tmp_path))
  dataset = data_lib.load_dataset('digits', split_seed=config.seed)
  searcher = oneshot.template(config, str(tmp_path), dataset)
  batches = oneshot.held_out(dataset, config, 64)
  assert [int(y.shape[0]) for _, y in batches] == [32, 32]
  lines = (tmp_path / cell_search.CANDIDATES_FILE).read_text().splitlines()
  for line in map(json.loads, lines):
    acc, loss = searcher.evaluate(np.asarray(line['indices']), *batches[0])
    # Exactly the search's own scores: every trained weight came back (not only the stem
    # and head, which restoring the supernet alone would give).
    assert (acc, loss) == pytest.approx((line['accuracy'], line['loss']), rel=1e-6)


@pytest.mark.slow  # Two searches and a ranking in subprocesses: ~1 min.
@needs_csv
def test_search_bench_judges_cells_and_the_ranking_reuses_its_run(tmp_path):
  out = tmp_path / 'search'
  stdout = _run('bench.cell_search_cifar', '--algorithms=gdas,random', '--steps=3',
                '--budget=random=2', '--num_candidates=3', f'--output_dir={out}')
  assert 'Reductions from the reference search: channels 4 (reference 16)' in stdout
  results = json.loads((out / 'results.json').read_text())
  nb201 = NB201Benchmark.load()
  rows = {r['algorithm']: r for r in results['results']}
  assert results['budgets'] == {'gdas': 3, 'random': 2}
  assert rows['gdas']['steps'] == 3 and rows['random']['steps'] == 2
  for row in rows.values():
    assert row['accuracy'] == nb201.query(row['genotype']).cifar10
    assert not row['reused'] and row['seconds_per_step'] is None  # Too few steps to time.
  assert results['reference_points']['space_median'] == pytest.approx(90.75, abs=0.01)
  again = _run('bench.cell_search_cifar', '--algorithms=random', '--budget=random=2',
               '--num_candidates=3', f'--output_dir={out}')
  assert rows['random']['genotype'] in again
  assert json.loads((out / 'results.json').read_text())['results'][0]['reused']

  ranking_dir = tmp_path / 'ranking'
  stdout = _run('bench.setn_ranking', f'--run_dir={out / "random"}', '--num_archs=12',
                '--eval_examples=32', f'--output_dir={ranking_dir}')
  ranking = json.loads((ranking_dir / 'ranking.json').read_text())
  assert ranking['reused'] and ranking['steps'] == 2 and len(ranking['cells']) == 12
  assert len({c['genotype'] for c in ranking['cells']}) == 12
  # The written τ is the one of the written scores (NaN if every cell scored the same).
  tau = ranking['kendall_tau_accuracy']
  expected = _tau_b([c['oneshot_accuracy'] for c in ranking['cells']],
                    [c['cifar10_test_accuracy'] for c in ranking['cells']])
  assert (math.isnan(tau) and math.isnan(expected)) or tau == pytest.approx(expected, abs=1e-9)
  assert 'Kendall tau-b' in stdout
  for cell in ranking['cells']:
    assert cell['cifar10_test_accuracy'] == nb201.query(cell['genotype']).cifar10
