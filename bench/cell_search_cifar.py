r"""GDAS, SETN, DARTS and random search on NAS-Bench-201 / CIFAR-10 at a reduced budget, judged
by the NB201 ground truth.

Each algorithm of --algorithms runs `cell_search.search_cell` in OUTPUT_DIR/<algorithm> (a
finished run there is reused, an interrupted one resumed); the NB201 200-epoch CIFAR-10 test
accuracy of the cell it found is looked up (`NB201Benchmark`) and printed beside the space's
statistics and the published full-budget results (anchors/cellsearch.md §2.1). The output
states which settings were reduced from AutoDL's (C=16, N=5, 250 epochs, T=1000), the
measured time per step, and the step budget that would fill --target_minutes per algorithm.
Results go to OUTPUT_DIR/results.json.

  python -m bench.cell_search_cifar --steps=150 --output_dir=/tmp/ccs   # ~2 min each
  python -m bench.cell_search_cifar --budget=gdas=2400,setn=1200,darts=800,random=2900 \
      --output_dir=/tmp/cell_search_cifar_full    # ~10 min each on one shared core

The budgets above come from the "steps for 10 min" column of the 150-step run (C=8, N=1,
T=100, on a CPU core shared with another job); re-derive them from that column elsewhere.
"""

import os
import time
from typing import Any, Dict

from absl import app
from absl import flags

from bench import cell_setup
from tunas_tf import data as data_lib
from tunas_tf import fileio
from tunas_tf.benchmarks import NB201Benchmark
from tunas_tf.search import cell_search

FLAGS = flags.FLAGS
ALGORITHMS = ('gdas', 'setn', 'darts', 'random')
flags.DEFINE_list('algorithms', list(ALGORITHMS), f'Any of {", ".join(ALGORITHMS)}.')
flags.DEFINE_string('output_dir', '/tmp/cell_search_cifar', 'One run directory per algorithm.')
flags.DEFINE_integer('steps', 100, 'Step budget of every algorithm (0: --epochs).')
flags.DEFINE_list('budget', [], 'Per-algorithm step budgets overriding --steps, ALGO=STEPS.')
flags.DEFINE_integer('num_candidates', 100, 'SETN / random candidates T (reference 1000).')
flags.DEFINE_float('target_minutes', 10.0, 'Wall time per algorithm the proposal aims at.')
flags.DEFINE_string('csv', '', 'NB201 accuracy CSV (default: shared/data).')

# Published full-budget CIFAR-10 test accuracies (NB201 "updated" table, anchors §2.1);
# random search's counterpart is RSPS (random sampling with parameter sharing).
PAPER = {'gdas': 93.61, 'setn': 87.64, 'darts': 54.30, 'random': 84.07}


def _budgets() -> Dict[str, int]:
  budgets = {a: FLAGS.steps for a in FLAGS.algorithms}
  for item in FLAGS.budget:
    name, sep, value = item.partition('=')
    if not sep or name not in ALGORITHMS or not value.isdigit():
      raise app.UsageError(f'--budget takes ALGO=STEPS with ALGO in {ALGORITHMS}; got {item!r}')
    budgets[name] = int(value)
  unknown = [a for a in budgets if a not in ALGORITHMS]
  if unknown:
    raise app.UsageError(f'unknown algorithm(s) {unknown}; known: {", ".join(ALGORITHMS)}')
  return {a: budgets[a] for a in FLAGS.algorithms}


def _run(algorithm: str, steps: int, num_train: int) -> Dict[str, Any]:
  """Runs (or reuses) one search; its summary entries plus timing."""
  config = cell_setup.search_config(algorithm, steps, FLAGS.num_candidates)
  run_dir = os.path.join(FLAGS.output_dir, algorithm)
  timing_path = os.path.join(run_dir, cell_setup.TIMING_FILE)
  timer = cell_setup.StepTimer()
  summary = cell_search.search_cell(config, run_dir, step_callback=timer)
  wall = time.perf_counter() - timer.start
  if timer.marks:  # Trained here (a reused finished run calls no step callback).
    timing = {'wall_seconds': wall, 'seconds_per_step': timer.seconds_per_step(),
              'steps_run': timer.steps_run(), 'reused': False}
    fileio.atomic_write_json(timing_path, timing)
  elif os.path.exists(timing_path):
    timing = {**fileio.read_json(timing_path), 'reused': True}
  else:
    timing = {'wall_seconds': None, 'seconds_per_step': None, 'steps_run': 0, 'reused': True}
  return {'algorithm': algorithm, 'steps': summary['steps'],
          'epochs': round(summary['steps'] * config.batch_size / num_train, 3),
          'genotype': summary['nb201_string'], 'run_dir': run_dir,
          'reductions': cell_setup.reductions(config, num_train), **timing}


def _proposal(row: Dict[str, Any]) -> Any:
  """Steps that would make this algorithm take --target_minutes, from its measured timing."""
  per_step, wall = row.get('seconds_per_step'), row.get('wall_seconds')
  if not per_step or wall is None:
    return None
  fixed = max(wall - per_step * row['steps_run'], 0.0)  # Loading, tracing, candidate scoring.
  return max(int((60 * FLAGS.target_minutes - fixed) / per_step), 0)


def _cells(row: Dict[str, Any]) -> list:
  fmt = lambda value, spec: '-' if value is None else format(value, spec)
  return [row['algorithm'], str(row['steps']), f"{row['epochs']:.2f}", row['genotype'],
          f"{row['accuracy']:.2f}", str(row['rank']), f"{PAPER[row['algorithm']]:.2f}",
          fmt(row['wall_seconds'], '.1f'), fmt(row['seconds_per_step'], '.3f'),
          fmt(row['proposed_steps'], 'd')]


def _print(rows, stats, budgets) -> None:
  print(f'NAS-Bench-201 / CIFAR-10 ({FLAGS.dataset}), per-algorithm step budgets {budgets}')
  common = {k: v for r in rows for k, v in r['reductions'].items()
            if k not in ('epochs', 'num_candidates')}
  print(f'Reductions from the reference search: {cell_setup.describe_reductions(common)}; '
        f'epochs as in the table (reference {cell_setup.REFERENCE["epochs"]}); SETN / random '
        f'T={FLAGS.num_candidates} (reference {cell_setup.REFERENCE["num_candidates"]})')
  header = ['algorithm', 'steps', 'epochs', 'NB201 genotype', 'C10 test', 'rank', 'paper',
            'wall s', 's/step', f'steps for {FLAGS.target_minutes:g} min']
  table = [header] + [_cells(r) for r in rows]
  widths = [max(len(line[i]) for line in table) for i in range(len(header))]
  for line in table:  # Left-align the text columns, right-align the numbers.
    print('  '.join(c.ljust(w) if i in (0, 3) else c.rjust(w)
                    for i, (c, w) in enumerate(zip(line, widths))))
  print('rank: among the 15,625 cells; paper: the full-budget NB201 result (random: RSPS); '
        '"steps for": the budget that fills that time at the measured s/step')
  print(f'Reference points (CIFAR-10 test, {stats.count} cells): mean {stats.mean:.2f}, median '
        f'{stats.median:.2f}, top 10% >= {stats.top_fraction_threshold:.2f}, best '
        f'{stats.best:.2f}; published GDAS 93.61, SETN 87.64, DARTS 54.30, RSPS 84.07')


def main(unused_argv):
  budgets = _budgets()
  nb201 = NB201Benchmark.load(FLAGS.csv or None)
  stats = nb201.stats('cifar10')
  dataset = data_lib.load_dataset(FLAGS.dataset, search_valid_fraction=0.5,
                                  split_seed=FLAGS.seed)
  num_train = dataset.split_size('search_train')
  rows = []
  for algorithm, steps in budgets.items():
    row = _run(algorithm, steps, num_train)
    record = nb201.query(row['genotype'])
    row.update(accuracy=record.cifar10, rank=nb201.rank(record.arch),
               paper_accuracy=PAPER[algorithm])
    row['proposed_steps'] = _proposal(row)
    rows.append(row)
  _print(rows, stats, budgets)
  results = {'dataset': FLAGS.dataset, 'budgets': budgets,
             'reference_points': {'space_mean': stats.mean, 'space_median': stats.median,
                                  'top10_threshold': stats.top_fraction_threshold,
                                  'best': stats.best, 'paper': PAPER},
             'target_minutes': FLAGS.target_minutes, 'results': rows}
  path = os.path.join(FLAGS.output_dir, 'results.json')
  fileio.atomic_write_json(path, results)
  print(f'wrote {path}')


if __name__ == '__main__':
  app.run(main)
