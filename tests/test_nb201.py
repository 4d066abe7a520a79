"""Tests of the NAS-Bench-201 ground-truth lookup and the ranking helpers (no TensorFlow)."""

import ast
import itertools
import math
import os
import pathlib
import random
import subprocess
import sys

import pytest

from tunas_tf.benchmarks import NB201Benchmark, default_csv_path, kendall_tau
from tunas_tf.errors import UserError
from tunas_tf.space import cell
from tunas_tf.space.architecture import Architecture

REPO = pathlib.Path(__file__).resolve().parents[1]
CSV = default_csv_path()
needs_csv = pytest.mark.skipif(not os.path.isfile(CSV), reason=f'no NB201 CSV at {CSV}')
HEADER = ('CIFAR10TestAccuracy200Epochs,CIFAR100TestAccuracy200Epochs,'
          'ImageNetTestAccuracy200Epochs,ArchitectureString,UniqueString')
ALL_SKIP = ('|skip_connect~0|+|skip_connect~0|skip_connect~1|+'
            '|skip_connect~0|skip_connect~1|skip_connect~2|')
RESNET = '|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|'


@pytest.fixture(scope='module')
def bench():
  return NB201Benchmark.load(CSV)


@needs_csv
def test_every_csv_genotype_parses_and_round_trips(bench):
  assert len(bench) == 15625
  for record in bench:
    assert cell.to_nb201_string(cell.from_nb201_string(record.genotype)) == record.genotype
  assert {r.arch for r in bench} == set(cell.all_nb201_architectures())
  assert [r.index for r in bench] == list(range(15625))


@needs_csv
def test_space_statistics_on_cifar10(bench):
  stats = bench.stats('cifar10')
  assert stats.count == 15625
  assert round(stats.mean, 1) == 87.1
  assert round(stats.median, 1) == 90.7
  assert stats.top_fraction_threshold >= 92.9 and round(stats.top_fraction_threshold, 1) == 92.9
  at_or_above = sum(1 for a in bench.accuracies('cifar10') if a >= stats.top_fraction_threshold)
  assert at_or_above >= math.ceil(0.1 * 15625)
  assert round(stats.best, 2) == 94.37  # The known C10 optimum.
  assert bench.rank(stats.best_genotype) == 1


@needs_csv
def test_query_by_string_and_architecture(bench):
  record = bench.query(ALL_SKIP)
  assert record is bench.query(cell.from_nb201_string(ALL_SKIP))
  # DARTS's all-skip collapse: 54.30 / 15.61 / 16.32 (cellsearch.md §2.5).
  assert [round(record.cifar10, 2), round(record.cifar100, 2),
          round(record.imagenet16_120, 2)] == [54.30, 15.61, 16.32]
  best_c100 = bench.stats('cifar100')
  assert round(best_c100.best, 2) == 73.51 and round(bench.stats('ImageNet16-120').best, 2) == 47.31
  assert bench.rank(best_c100.best_genotype, 'cifar100') == 1
  with pytest.raises(UserError, match='known NAS-Bench-201 datasets: ImageNet16-120, cifar10'):
    bench.stats('imagenet')
  with pytest.raises(UserError, match="not 'nas_bench_201'"):
    bench.query(Architecture('darts', (0,) * 6))


def _write(tmp_path, lines):
  path = tmp_path / 'nb201.csv'
  path.write_text('\n'.join(lines) + '\n')
  return str(path)


def test_load_errors_are_clear(tmp_path):
  with pytest.raises(UserError, match='does not exist; pass its path'):
    NB201Benchmark.load(str(tmp_path / 'missing.csv'))
  path = _write(tmp_path, ['CIFAR10TestAccuracy200Epochs,ArchitectureString', f'90,{RESNET}'])
  with pytest.raises(UserError, match=r"missing column\(s\) \['CIFAR100TestAccuracy200Epochs'"):
    NB201Benchmark.load(path, complete=False)
  path = _write(tmp_path, [HEADER, '90,70,40,|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|,x'])
  with pytest.raises(UserError, match="row 2: Unknown NAS-Bench-201 op 'conv' at position 1"):
    NB201Benchmark.load(path, complete=False)
  path = _write(tmp_path, [HEADER, f'90,70,abc,{RESNET},x'])
  with pytest.raises(UserError, match='row 2 has a non-numeric accuracy'):
    NB201Benchmark.load(path, complete=False)


def test_a_partial_table_is_refused_unless_asked_for(tmp_path):
  path = _write(tmp_path, [HEADER, f'93.9,70.9,44.2,{RESNET},x', f'54.3,15.6,16.3,{ALL_SKIP},y'])
  with pytest.raises(UserError, match='2 architectures, not the 15625 of NAS-Bench-201'):
    NB201Benchmark.load(path)
  assert len(NB201Benchmark.load(path, complete=False)) == 2


def test_small_csv_queries_and_missing_architectures(tmp_path):
  path = _write(tmp_path, [HEADER, f'93.9,70.9,44.2,{RESNET},x', f'54.3,15.6,16.3,{ALL_SKIP},y'])
  bench = NB201Benchmark.load(path, complete=False)
  assert bench.query(RESNET).accuracies == {'cifar10': 93.9, 'cifar100': 70.9,
                                            'ImageNet16-120': 44.2}
  assert bench.rank(ALL_SKIP) == 2 and bench.stats().median == pytest.approx(74.1)
  with pytest.raises(UserError, match='is not in .*2 architectures'):
    bench.query(Architecture('nas_bench_201', (0,) * 6))
  dup = _write(tmp_path, [HEADER, f'93.9,70.9,44.2,{RESNET},x', f'93.9,70.9,44.2,{RESNET},x'])
  with pytest.raises(UserError, match='appears twice'):
    NB201Benchmark.load(dup, complete=False)


def _brute_tau_b(x, y):
  concordant = discordant = x_only = y_only = 0
  for i, j in itertools.combinations(range(len(x)), 2):
    dx, dy = x[i] - x[j], y[i] - y[j]
    if dx == 0 and dy == 0:
      continue
    if dx == 0:
      x_only += 1
    elif dy == 0:
      y_only += 1
    elif (dx > 0) == (dy > 0):
      concordant += 1
    else:
      discordant += 1
  return (concordant - discordant) / math.sqrt((concordant + discordant + x_only) *
                                               (concordant + discordant + y_only))


@pytest.mark.parametrize('seed', range(4))
def test_kendall_tau_matches_brute_force_with_ties(seed):
  rng = random.Random(seed)
  n = rng.randint(2, 120)
  x = [rng.randint(0, 8) for _ in range(n)]
  y = [v + rng.randint(-4, 4) for v in x]
  if len(set(x)) < 2 or len(set(y)) < 2:
    x[0], y[0] = x[0] + 100, y[0] - 100
  assert kendall_tau(x, y) == pytest.approx(_brute_tau_b(x, y), abs=1e-12)


def test_kendall_tau_edge_cases():
  assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
  assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
  assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))
  with pytest.raises(UserError, match='equal length'):
    kendall_tau([1, 2], [1, 2, 3])
  with pytest.raises(UserError, match='non-finite'):
    kendall_tau([1, float('inf')], [1, 2])


def test_kendall_tau_agrees_with_scipy():
  stats = pytest.importorskip('scipy.stats')
  rng = random.Random(5)
  x = [rng.random() for _ in range(2000)]
  y = [v + rng.gauss(0, 0.3) for v in x]
  assert kendall_tau(x, y) == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)


def _imported_modules(path: pathlib.Path) -> set:
  names = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      names.update(a.name for a in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      names.add(node.module)
      names.update(f'{node.module}.{a.name}' for a in node.names)
  return names


def test_searchers_never_import_the_ground_truth():
  sources = sorted((REPO / 'tunas_tf' / 'search').glob('*.py'))
  assert sources, 'tunas_tf/search has no modules to check'
  for path in sources:
    bad = [m for m in _imported_modules(path) if 'benchmarks' in m]
    assert not bad, f'{path.name} imports ground truth {bad}'


def test_benchmarks_import_no_tensorflow():
  code = ('import sys, tunas_tf.benchmarks; '
          'sys.exit(1 if "tensorflow" in sys.modules else 0)')
  assert subprocess.run([sys.executable, '-c', code], cwd=REPO, check=False).returncode == 0


@needs_csv
def test_lookup_cli():
  best = ('|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+'
          '|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|')
  run = lambda *args: subprocess.run([sys.executable, '-m', 'launch.nb201_lookup', *args],
                                     cwd=REPO, capture_output=True, text=True, check=False)
  out = run(f'--genotype={best}', f'--csv={CSV}')
  assert out.returncode == 0, out.stderr
  assert 'cifar100: test accuracy  73.51  rank     1/15625' in out.stdout
  assert 'c3-c3c3-skipc3c3' in out.stdout
  out = run('--arch=c3-nonec3-skipnoneskip', f'--csv={CSV}')
  assert out.returncode == 0 and '93.91' in out.stdout  # NB201's ResNet cell.
  out = run('--genotype=|nor_conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|')
  assert out.returncode == 2
  assert "error: Unknown NAS-Bench-201 op 'nor_conv_5x5' at position 1" in out.stderr
