r"""How well a one-shot template ranks NAS-Bench-201 cells: Kendall τ (and Spearman ρ) between
the template's held-out accuracy of random cells and their NB201 ground-truth accuracy.

1. Trains a SETN or random-search template network on the reduced NB201 / CIFAR-10 setup of
   `bench.cell_setup` with `cell_search.search_cell` in --run_dir (default
   OUTPUT_DIR/template_<algorithm>), or reuses the finished search there (its config.json
   then overrides the setup flags; e.g. a run directory of `bench.cell_search_cifar`).
2. Restores the template weights from the run's last checkpoint and evaluates --num_archs
   distinct NB201 cells, drawn uniformly with --sample_seed, as single paths (`evaluate`, as
   SETN scores its candidates) on --eval_examples unaugmented search_valid images, which the
   template weights never trained on.
3. Prints τ-b and ρ of one-shot accuracy (and of −loss) against the 200-epoch CIFAR-10 test
   accuracy; writes OUTPUT_DIR/ranking.json with every cell's figures.

SETN's template is trained exactly as random search's (one uniformly sampled path per step;
SETN's evaluator step only updates α), so with the same seed the two give the same weights and
'random' is the cheaper way to get them.

  python -m bench.setn_ranking --steps=30 --num_archs=20 --eval_examples=256     # smoke test
  python -m bench.setn_ranking --steps=2500 --output_dir=/tmp/setn_ranking       # ~10 min
  python -m bench.setn_ranking --run_dir=/tmp/cell_search_cifar_full/random \
      --output_dir=/tmp/setn_ranking_full          # reuses that template: ~1.5 min
"""

import os
import time
from typing import Dict

from absl import app
from absl import flags
from absl import logging
import numpy as np

from bench import cell_setup
from bench import oneshot
from tunas_tf import data as data_lib
from tunas_tf import fileio
from tunas_tf.benchmarks import NB201Benchmark, kendall_tau
from tunas_tf.search import cell_search
from tunas_tf.search.cell_config import CellSearchConfig

FLAGS = flags.FLAGS
flags.DEFINE_enum('algorithm', 'random', ['setn', 'random'], 'Searcher training the template.')
flags.DEFINE_string('output_dir', '/tmp/setn_ranking', 'Where ranking.json (and the run) go.')
flags.DEFINE_string('run_dir', '', 'Search run to train or reuse (default OUTPUT_DIR/template_'
                    'ALGORITHM); a finished one is reused as is.')
flags.DEFINE_integer('steps', 300, 'Template training steps (0: --epochs).')
flags.DEFINE_integer('num_candidates', 10, "The search's own final candidates (unused here).")
flags.DEFINE_integer('num_archs', 100, 'Random NB201 cells ranked.')
flags.DEFINE_integer('sample_seed', 0, 'Seed of the ranked cells.')
flags.DEFINE_integer('eval_examples', 1024, 'Held-out search_valid images per cell (whole '
                     'batches of --eval_batch_size).')
flags.DEFINE_string('csv', '', 'NB201 accuracy CSV (default: shared/data).')


def _config(run_dir: str) -> CellSearchConfig:
  path = os.path.join(run_dir, cell_search.CONFIG_FILE)
  if os.path.exists(path):
    logging.info('Reusing the search configuration of %s (setup flags ignored)', path)
    return CellSearchConfig.from_dict(fileio.read_json(path))
  return cell_setup.search_config(FLAGS.algorithm, FLAGS.steps, FLAGS.num_candidates)


def _correlations(rows) -> Dict[str, float]:
  truth = [r['cifar10_test_accuracy'] for r in rows]
  acc = [r['oneshot_accuracy'] for r in rows]
  neg_loss = [-r['oneshot_loss'] for r in rows]
  return {'kendall_tau_accuracy': kendall_tau(acc, truth),
          'spearman_rho_accuracy': oneshot.spearman(acc, truth),
          'kendall_tau_neg_loss': kendall_tau(neg_loss, truth),
          'spearman_rho_neg_loss': oneshot.spearman(neg_loss, truth)}


def main(unused_argv):
  run_dir = FLAGS.run_dir or os.path.join(FLAGS.output_dir, f'template_{FLAGS.algorithm}')
  config = _config(run_dir)
  nb201 = NB201Benchmark.load(FLAGS.csv or None)
  start = time.perf_counter()
  timer = cell_setup.StepTimer()
  summary = cell_search.search_cell(config, run_dir, step_callback=timer)
  train_seconds = time.perf_counter() - start
  dataset = data_lib.load_dataset(config.dataset, config.data_dir or None,
                                  search_valid_fraction=config.search_valid_fraction,
                                  split_seed=config.seed)
  searcher = oneshot.template(config, run_dir, dataset)
  batches = oneshot.held_out(dataset, config, FLAGS.eval_examples)
  picks = np.random.default_rng(FLAGS.sample_seed).choice(len(nb201), FLAGS.num_archs,
                                                          replace=False)
  every = list(nb201)
  records = [every[i] for i in sorted(picks.tolist())]
  start = time.perf_counter()
  rows = oneshot.evaluate(searcher, records, batches)
  eval_seconds = time.perf_counter() - start
  stats = _correlations(rows)
  num_eval = sum(int(y.shape[0]) for _, y in batches)
  num_train = dataset.split_size('search_train')
  reduced = cell_setup.reductions(config, num_train)
  print(f'One-shot ranking of {len(rows)} random NB201 cells (seed {FLAGS.sample_seed}) by a '
        f'{config.algorithm} template of {summary["steps"]} steps ({run_dir}), '
        f'{num_eval} held-out search_valid images per cell')
  print(f'Reductions from the reference search: {cell_setup.describe_reductions(reduced)}')
  print(f'Kendall tau-b  one-shot accuracy vs. NB201 CIFAR-10 test: '
        f'{stats["kendall_tau_accuracy"]:+.3f}   (-loss: {stats["kendall_tau_neg_loss"]:+.3f})')
  print(f'Spearman rho   one-shot accuracy vs. NB201 CIFAR-10 test: '
        f'{stats["spearman_rho_accuracy"]:+.3f}   (-loss: {stats["spearman_rho_neg_loss"]:+.3f})')
  print(f'Time: template {train_seconds:.1f} s ({"reused" if not timer.marks else "trained"}'
        f', {_per_step(timer)}), evaluation {eval_seconds:.1f} s '
        f'({eval_seconds / max(len(rows), 1):.2f} s per cell)')
  result = {'run_dir': run_dir, 'algorithm': config.algorithm, 'steps': summary['steps'],
            'reused': not timer.marks, 'template_seconds': train_seconds,
            'seconds_per_step': timer.seconds_per_step(), 'eval_seconds': eval_seconds,
            'sample_seed': FLAGS.sample_seed, 'eval_examples': num_eval, 'reductions': reduced,
            **stats, 'cells': rows}
  path = os.path.join(FLAGS.output_dir, 'ranking.json')
  os.makedirs(FLAGS.output_dir, exist_ok=True)
  fileio.atomic_write_json(path, result)
  print(f'wrote {path}')


def _per_step(timer: cell_setup.StepTimer) -> str:
  per_step = timer.seconds_per_step()
  return '-' if per_step is None else f'{per_step:.3f} s/step'


if __name__ == '__main__':
  app.run(main)
