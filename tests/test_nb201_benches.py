"""bench.nb201_ranking and bench.nb201_study on `digits` (C=4, N=1, a few steps)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from bench import nb201_ranking
from tunas_tf.benchmarks import NB201Benchmark, default_csv_path
from tunas_tf.search import cell_search
from tunas_tf.search.cell_config import CellSearchConfig
from tunas_tf.space import cell, registry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
needs_csv = pytest.mark.skipif(not os.path.isfile(default_csv_path()),
                               reason='no NB201 accuracy CSV')


def _bench(module, *args):
  return subprocess.run([sys.executable, '-m', module, *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=600)


def test_top_recall_counts_the_true_top_share_found():
  truth = list(range(20))  # The true top 10% are items 18 and 19.
  assert nb201_ranking.top_recall(truth, truth) == 1.0
  assert nb201_ranking.top_recall([-t for t in truth], truth) == 0.0
  scores = [0] * 20
  scores[19], scores[3] = 5, 6  # One of the two found.
  assert nb201_ranking.top_recall(scores, truth) == 0.5


def test_budget_fit_extrapolates_the_steps_a_target_tau_would_take():
  steps = [250, 1000, 4000, 16000]
  fit = nb201_ranking.budget_fit(steps, [0.1 + 0.05 * np.log2(s) for s in steps], target=0.7)
  assert fit['slope_per_doubling'] == pytest.approx(0.05)
  assert fit['steps_to_target'] == pytest.approx(4096)  # 0.1 + 0.05 * 12 = 0.7.
  assert nb201_ranking.budget_fit(steps, [0.3, 0.2, 0.1, 0.0])['steps_to_target'] is None
  assert nb201_ranking.budget_fit(steps[:2], [0.1, 0.2]) is None  # Too few snapshots.


def test_parameterized_ops_count_the_edges_with_weights():
  space = registry.get_space('nas_bench_201')
  arch = cell.from_nb201_string('|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|'
                                'avg_pool_3x3~1|nor_conv_3x3~2|')
  assert cell.parameterized_ops(space, arch) == 3


@needs_csv
def test_ranking_scores_snapshots_and_proxies_on_the_same_cells(tmp_path):
  run = tmp_path / 'run'
  config = CellSearchConfig(algorithm='random', dataset='digits', channels=4, num_cells=1,
                            steps=4, batch_size=16, eval_batch_size=32, num_candidates=3,
                            checkpoint_every=2, keep_checkpoints=5)
  cell_search.search_cell(config, str(run))
  out = tmp_path / 'rank' / 'r.json'
  args = [f'--run_dir={run}', '--num_cells=12', '--seed=3', '--eval_examples=64',
          '--proxies=params,naswot', '--proxy_images=16', f'--output_json={out}']
  bad = _bench('bench.nb201_ranking', *args, '--snapshot_steps=3')
  assert bad.returncode == 2
  assert bad.stderr.strip().splitlines()[-1] == (
      "error: --snapshot_steps: '3' is not a step the run kept a checkpoint of; kept: 2,4 "
      '(or "all")')
  too_many = _bench('bench.nb201_ranking', *args[:-1], '--eval_examples=100000',
                    f'--output_json={out}')
  assert too_many.returncode == 2 and 'error: --eval_examples=100000: search_valid holds' in (
      too_many.stderr)
  done = _bench('bench.nb201_ranking', *args, '--snapshot_steps=2')
  assert done.returncode == 0, done.stderr[-3000:]
  result = json.loads(out.read_text())
  assert [s['step'] for s in result['snapshots']] == [2, 4]
  assert set(result['estimators']) == {'oneshot', 'params', 'naswot'}
  assert (tmp_path / 'rank' / 'r.png').stat().st_size > 10000
  # The figures are those of the cells drawn with the seed, against the ground truth.
  nb201 = NB201Benchmark.load()
  every = list(nb201)
  picks = np.random.default_rng(3).choice(len(every), 12, replace=False)
  cache = json.loads((tmp_path / 'rank' / 'r.json.cache.json').read_text())['entries']
  assert set(cache['proxies']) == {every[i].genotype for i in picks}
  records = [every[i] for i in sorted(picks.tolist())]
  params = [cache['proxies'][r.genotype]['params'] for r in records]
  truth = [r.cifar10 for r in records]
  expected = nb201_ranking.correlations(params, truth, [
      cell.parameterized_ops(registry.get_space('nas_bench_201'), r.arch) for r in records])
  assert result['estimators']['params'] == pytest.approx(expected)


@pytest.mark.slow  # Four searches and the baselines in subprocesses: ~1 min.
@needs_csv
def test_study_judges_every_searcher_and_baseline_per_seed(tmp_path):
  out = tmp_path / 'study'
  args = ['--preset=quick', '--seeds=0', '--dataset=digits', '--baselines=params,synflow',
          '--algorithms=gdas,setn,darts,random,random+synflow',
          '--set=steps=3,channels=4,num_cells=1,batch_size=16,eval_batch_size=64,'
          'num_candidates=4', f'--output_dir={out}']
  done = _bench('bench.nb201_study', *args)
  assert done.returncode == 0, done.stderr[-3000:]
  study = json.loads((out / 'study.json').read_text())
  nb201 = NB201Benchmark.load()
  assert set(study['results']) == {'gdas', 'setn', 'darts', 'random', 'random+synflow',
                                   'best-of-4 params', 'best-of-4 synflow'}
  for name in ('gdas', 'setn', 'darts', 'random'):
    summary = json.loads((out / name / 'seed0' / 'summary.json').read_text())
    pick = study['results'][name]['picks'][0]
    assert pick['accuracy'] == nb201.query(summary['nb201_string']).cifar10
    assert summary['settings']['preset'] == 'quick' and summary['settings']['steps'] == 3
  # random+synflow picked from random's template: its one kept candidate has random's score.
  filtered = json.loads((out / 'random+synflow' / 'seed0' / 'summary.json').read_text())
  assert filtered['candidate_filter'] == {'proxy': 'synflow', 'drawn': 4, 'kept': 1}
  scores = {}
  for name in ('random', 'random+synflow'):
    for line in (out / name / 'seed0' / 'candidates.jsonl').read_text().splitlines():
      row = json.loads(line)
      scores.setdefault(name, {})[row['arch']] = row['accuracy']
  (arch, accuracy), = scores['random+synflow'].items()
  assert scores['random'][arch] == accuracy
  assert (study['results']['random+synflow']['picks'][0]['seconds'] >
          study['results']['random']['picks'][0]['seconds'])  # The template's training counts.
  assert (out / 'study.png').stat().st_size > 10000
  again = _bench('bench.nb201_study', *args)  # Every run and baseline is reused.
  assert again.returncode == 0 and json.loads((out / 'study.json').read_text()) == study


def test_study_bad_input_is_one_error_line(tmp_path):
  for args, message in ((['--preset=fast'], "error: Unknown preset 'fast'; known presets: "
                                            'cpu, paper, quick'),
                        (['--seeds=0,x'], "error: --seeds='0,x': pass integers, e.g. 0,1,2"),
                        (['--baselines=snip'], "error: Unknown proxy 'snip'"),
                        (['--algorithms=gdas+synflow'],
                         "error: --algorithms: 'gdas+synflow' is not a searcher")):
    done = _bench('bench.nb201_study', *args, f'--output_dir={tmp_path / "s"}')
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1].startswith(message)
  assert not (tmp_path / 's').exists()
