r"""What PGNAS prunes at a budget preset: for each seed, a `launch.search_cell --algorithm=pgnas
--search_space=pgnas_resnet --preset=P` run (reused when finished), then on held-out CIFAR-10
*test* images (never seen by the search):

* the share of the prior network's weights the pruned network keeps (non-zero trainable
  weights of the stand-alone networks built with the supernet's weights);
* the accuracy of the pruned network, of the whole prior network (every kernel slice kept),
  and of random masks that keep the same number of kernel slices, drawn uniformly over all
  slices (mean ± std over --random_masks), all with the supernet's weights, no fine-tuning.

  python -m bench.pgnas_study --preset=quick --seeds=0,1,2 --output_dir=/tmp/pgnas_quick

Writes OUTPUT_DIR/pgnas_study.json and prints the table.
"""

import os
import statistics
from typing import Dict, List, Sequence

from absl import flags
import numpy as np

from bench import oneshot
from bench import paths
from bench import study_runs
from launch import common
from tunas_tf import data as data_lib
from tunas_tf import fileio
from tunas_tf.errors import UserError
from tunas_tf.models import pgnas_supernet
from tunas_tf.search import cell_presets
from tunas_tf.search import cell_search
from tunas_tf.search.cell_config import CellSearchConfig

FLAGS = flags.FLAGS
flags.DEFINE_string('preset', 'quick', 'Budget preset of every search (quick, cpu, paper).')
flags.DEFINE_list('seeds', ['0', '1', '2'], 'Seeds of the searches.')
flags.DEFINE_string('output_dir', None, 'Where the runs and pgnas_study.json go.')
flags.DEFINE_string('dataset', paths.DEFAULT_CIFAR, 'Dataset of the searches.')
flags.DEFINE_integer('test_examples', 2048, 'Test images every network is scored on.')
flags.DEFINE_integer('random_masks', 10, 'Random masks of the same keep count per seed.')
flags.DEFINE_list('set', [], 'Extra search_cell flags, e.g. steps=20,num_candidates=4.')
flags.mark_flags_as_required(['output_dir'])


def random_masks(groups: Sequence[int], kept: int, count: int, seed: int) -> List[list]:
  """`count` masks over groups of `groups` slices that keep `kept` slices uniformly at random."""
  total = sum(groups)
  rng = np.random.default_rng(seed)
  out = []
  for _ in range(count):
    flat = np.zeros(total, np.float32)
    flat[rng.choice(total, kept, replace=False)] = 1.0
    out.append(np.split(flat, np.cumsum(groups)[:-1]))
  return out


def nonzero_weights(model) -> int:
  return int(sum(np.count_nonzero(w.numpy()) for w in model.trainable_weights))


def judge(run_dir: str, seed: int) -> Dict[str, float]:
  """The kept weights and test accuracies of one finished PGNAS run (see the docstring)."""
  config = CellSearchConfig.from_dict(fileio.read_json(os.path.join(run_dir, 'config.json')))
  dataset = data_lib.load_dataset(config.dataset, config.data_dir or None,
                                  search_valid_fraction=config.search_valid_fraction,
                                  split_seed=config.seed)
  searcher = oneshot.template(config, run_dir, dataset)
  searcher.eval_data = cell_search.eval_data_fn(dataset, config)
  searcher.final_architecture()  # Draws and scores the run's candidates again: its pick.
  groups = [k for _, _, k in searcher.supernet.groups]
  full = [np.ones(k, np.float32) for k in groups]
  batches = oneshot.held_out(dataset, config, FLAGS.test_examples, split='test')
  accuracy = lambda masks: float(np.mean([searcher.evaluate(masks, x, y)[0] for x, y in batches]))
  kept = int(sum(np.sum(m) for m in searcher.best_masks))
  calibration = searcher.eval_data()[0]
  build = lambda masks: pgnas_supernet.export_pruned(searcher.supernet, masks, calibration,
                                                     searcher.num_classes, config.image_size)
  randoms = [accuracy(m) for m in random_masks(groups, kept, FLAGS.random_masks, seed)]
  return {'seed': seed, 'kept_slices': kept, 'total_slices': sum(groups),
          'kept_weight_fraction': nonzero_weights(build(searcher.best_masks)) /
                                  nonzero_weights(build(full)),
          'pruned_accuracy': accuracy(searcher.best_masks), 'prior_accuracy': accuracy(full),
          'random_mask_accuracy_mean': statistics.fmean(randoms),
          'random_mask_accuracy_std': statistics.pstdev(randoms),
          'test_examples': sum(int(y.shape[0]) for _, y in batches)}


def main(unused_argv):
  seeds = study_runs.parse_seeds(FLAGS.seeds)
  cell_presets.settings(FLAGS.preset, 'pgnas')  # An unknown preset fails here.
  extra = [f'--{item}' for item in FLAGS.set]
  rows = []
  for seed in seeds:
    run_dir = os.path.join(FLAGS.output_dir, f'seed{seed}')
    summary = study_runs.run_search_cell(
        [f'--preset={FLAGS.preset}', '--algorithm=pgnas', '--search_space=pgnas_resnet',
         f'--seed={seed}', f'--dataset={FLAGS.dataset}', *extra], run_dir, f'pgnas seed {seed}')
    row = judge(run_dir, seed)
    if abs(row['kept_slices'] / row['total_slices'] - summary['kept_slice_fraction']) > 1e-9:
      raise UserError(f'{run_dir}: the pick drawn again keeps {row["kept_slices"]} slices, not '
                      f'the run\'s {summary["kept_slice_fraction"]:.4f}; was it changed?')
    rows.append({**row, 'seconds': summary['study_seconds']})
  result = {'preset': FLAGS.preset, 'set': FLAGS.set, 'seeds': seeds, 'runs': rows}
  fileio.atomic_write_json(os.path.join(FLAGS.output_dir, 'pgnas_study.json'), result)
  print_table(result)


def print_table(result: dict) -> None:
  print(f"PGNAS on pgnas_resnet, preset {result['preset']}: test accuracy with the supernet's "
        'weights (no fine-tuning)')
  print(f"{'seed':<6}{'kept weights':>14}{'kept slices':>14}{'pruned':>9}{'prior':>9}"
        f"{'random mask (same count)':>28}{'time':>8}")
  for r in result['runs']:
    print(f"{r['seed']:<6}{100 * r['kept_weight_fraction']:>13.1f}%"
          f"{r['kept_slices']:>8d}/{r['total_slices']:<5d}{100 * r['pruned_accuracy']:>9.2f}"
          f"{100 * r['prior_accuracy']:>9.2f}{100 * r['random_mask_accuracy_mean']:>19.2f} ± "
          f"{100 * r['random_mask_accuracy_std']:<6.2f}{r['seconds'] / 60:>7.1f}m")


if __name__ == '__main__':
  common.run(main)
