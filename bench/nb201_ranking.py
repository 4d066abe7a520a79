r"""How well each estimator ranks NAS-Bench-201 cells: the one-shot template of a finished cell
search (SETN, random, GDAS or DARTS weights, each cell run as a single path) and the
training-free baselines of `tunas_tf.search.proxies` (params, flops, synflow, naswot,
jacob_cov), all scored on the same --num_cells cells drawn uniformly with --seed.

For each estimator it writes Kendall τ-b, Spearman ρ and top-10% recall (the share of the true
top 10% of the drawn cells found among the estimator's top 10%) against the NB201 200-epoch
CIFAR-10 test accuracy, and τ against the cell's number of parameterized ops (a score that only
counts convolutions has τ > 0 there; ground truth itself has about +0.56). With
--snapshot_steps, checkpoints the run kept along the way (`--keep_checkpoints` of
`launch.search_cell`) are scored too: the one-shot estimator at increasing budgets of one run,
on the same cells and held-out images.

The one-shot score is the accuracy on --eval_examples unaugmented search_valid images (whole
batches of the run's eval_batch_size, batch-statistics batch norm), images the template never
trained on. Proxies use the run's network (channels, cells per stage, image size) freshly
initialised with --proxy_seed and, for naswot / jacob_cov, the first --proxy_images
unaugmented search_train images; labels are never used.

Resumable: scores are cached in OUTPUT_JSON.cache.json as they are computed.

  python -m bench.nb201_ranking --run_dir=/tmp/r1 --num_cells=200 --seed=0 \
      --output_json=/tmp/r1_ranking.json [--snapshot_steps=500,1000,2000] [--proxies=synflow]
"""

import math
import os
import time
from typing import Dict, Optional, Sequence

from absl import flags
from absl import logging
import numpy as np
import tensorflow as tf

from bench import oneshot
from launch import common
from tunas_tf import data as data_lib
from tunas_tf import fileio
from tunas_tf.benchmarks import NB201Benchmark, kendall_tau
from tunas_tf.errors import UserError
from tunas_tf.search import cell_config
from tunas_tf.search import loop
from tunas_tf.search import proxies as proxies_lib
from tunas_tf.search.cell_config import CellSearchConfig
from tunas_tf.space import cell as cell_lib

FLAGS = flags.FLAGS
flags.DEFINE_string('run_dir', None, 'A finished cell search of nas_bench_201 (its template).')
flags.DEFINE_integer('num_cells', 200, 'NB201 cells drawn uniformly (without replacement).')
flags.DEFINE_integer('seed', 0, 'Seed of the drawn cells.')
flags.DEFINE_string('output_json', None, 'Where the figures go (and OUTPUT_JSON.cache.json).')
flags.DEFINE_string('png', '', 'Scatter plots (default: OUTPUT_JSON with .png).')
flags.DEFINE_integer('eval_examples', 1024, 'Held-out search_valid images per cell.')
flags.DEFINE_list('snapshot_steps', [], 'Also score the checkpoints the run kept at these steps '
                  '("all": every kept one).')
flags.DEFINE_list('proxies', list(proxies_lib.PROXIES), 'Training-free baselines scored.')
flags.DEFINE_integer('proxy_images', 64, 'search_train images of naswot / jacob_cov.')
flags.DEFINE_integer('proxy_seed', 0, 'Seed of the proxies\' initial weights.')
flags.DEFINE_string('csv', '', 'NB201 accuracy CSV (default: shared/data).')
flags.mark_flags_as_required(['run_dir', 'output_json'])

TOP_FRACTION = 0.1
TARGET_TAU = 0.45  # Issue 12's target for the one-shot estimator at --preset=cpu.
ONESHOT = 'oneshot'


def top_recall(scores: Sequence[float], truth: Sequence[float],
               fraction: float = TOP_FRACTION) -> float:
  """Share of the ceil(fraction·n) best by `truth` found among the as many best by `scores`."""
  k = max(1, math.ceil(fraction * len(truth)))
  best_true = set(np.argsort(-np.asarray(truth, float), kind='stable')[:k].tolist())
  best_scored = set(np.argsort(-np.asarray(scores, float), kind='stable')[:k].tolist())
  return len(best_true & best_scored) / k


def correlations(scores: Sequence[float], truth: Sequence[float],
                 param_ops: Sequence[int]) -> Dict[str, float]:
  return {'kendall_tau': kendall_tau(scores, truth),
          'spearman_rho': oneshot.spearman(scores, truth),
          'top10_recall': top_recall(scores, truth),
          'kendall_tau_param_ops': kendall_tau(scores, param_ops)}


def run_config(run_dir: str) -> CellSearchConfig:
  path = os.path.join(run_dir, loop.CONFIG_FILE)
  if not os.path.exists(path):
    raise UserError(f'--run_dir={run_dir!r} holds no cell search (no {loop.CONFIG_FILE}); '
                    'pass the output_dir of a launch.search_cell run')
  config = CellSearchConfig.from_dict(fileio.read_json(path))
  if config.search_space != cell_lib.NB201_SPACE or config.algorithm == 'pgnas':
    raise UserError(f'--run_dir={run_dir!r} is a {config.algorithm} search of '
                    f'{config.search_space!r}; NB201 ranking needs a nas_bench_201 search by '
                    'setn, random, gdas or darts')
  return config


def checkpoints(run_dir: str, snapshot_steps: Sequence[str]) -> Dict[int, str]:
  """{step: checkpoint path}: the last one, and those at `snapshot_steps` ('all': every one)."""
  state = tf.train.get_checkpoint_state(os.path.join(run_dir, loop.CHECKPOINT_DIR))
  if state is None or not state.all_model_checkpoint_paths:
    raise UserError(f'--run_dir={run_dir!r} has no checkpoint of its template weights')
  kept = {checkpoint_step(p): p for p in state.all_model_checkpoint_paths}
  wanted = set(kept) if list(snapshot_steps) == ['all'] else set()
  for text in snapshot_steps if list(snapshot_steps) != ['all'] else []:
    step = int(text) if text.strip().isdigit() else None
    if step not in kept:
      raise UserError(f'--snapshot_steps: {text!r} is not a step the run kept a checkpoint of; '
                      f'kept: {",".join(str(k) for k in sorted(kept))} (or "all")')
    wanted.add(step)
  wanted.add(max(kept))
  return {step: kept[step] for step in sorted(wanted)}


def checkpoint_step(path: str) -> int:
  reader = tf.train.load_checkpoint(path)
  return int(reader.get_tensor('step/.ATTRIBUTES/VARIABLE_VALUE'))


def check_sizes(dataset, config: CellSearchConfig, num_cells: int, total: int) -> None:
  held_out = dataset.split_size('search_valid')
  if FLAGS.eval_examples > held_out or FLAGS.eval_examples < 1:
    raise UserError(f'--eval_examples={FLAGS.eval_examples}: search_valid holds {held_out} '
                    f'images; pass 1..{held_out}')
  if not 2 <= num_cells <= total:
    raise UserError(f'--num_cells={num_cells}: the CSV has {total} cells; pass 2..{total}')
  proxies_lib.check_proxies(FLAGS.proxies, cell_config.resolve_space(config),
                            FLAGS.proxy_images)
  if FLAGS.proxy_images > dataset.split_size('search_train'):
    raise UserError(f'--proxy_images={FLAGS.proxy_images} exceeds the '
                    f'{dataset.split_size("search_train")} search_train images')


class Cache:
  """{key: {genotype: score dict}} in a JSON file, written atomically every few cells."""

  def __init__(self, path: str, identity: dict):
    self.path, self.identity = path, identity
    data = fileio.read_json(path) if os.path.exists(path) else {}
    self.entries = data.get('entries', {}) if data.get('identity') == identity else {}

  def get(self, key: str) -> dict:
    return self.entries.setdefault(key, {})

  def save(self) -> None:
    fileio.atomic_write_json(self.path, {'identity': self.identity, 'entries': self.entries})


def score_proxies(records, dataset, config, cache: Cache) -> None:
  if not FLAGS.proxies:
    return
  scorer = proxies_lib.ProxyScorer(cell_config.resolve_space(config), dataset.info.num_classes,
                                   config.image_size,
                                   oneshot.first_images(dataset, 'search_train',
                                                        config.image_size, FLAGS.proxy_images),
                                   FLAGS.proxy_seed)
  done = cache.get('proxies')
  start = time.perf_counter()
  todo = [r for r in records if set(FLAGS.proxies) - set(done.get(r.genotype, {}))]
  for n, record in enumerate(todo):
    done[record.genotype] = {**done.get(record.genotype, {}),
                             **scorer.scores(record.arch, FLAGS.proxies)}
    if (n + 1) % 10 == 0 or n + 1 == len(todo):
      cache.save()
      per = (time.perf_counter() - start) / (n + 1)
      logging.info('Proxies: %d/%d cells, ETA %.0f s', n + 1, len(todo),
                   per * (len(todo) - n - 1))


def score_oneshot(records, dataset, config, run_dir: str, cache: Cache) -> Dict[int, str]:
  """Scores every chosen checkpoint; returns {step: cache key}."""
  batches = None
  keys = {}
  for step, path in checkpoints(run_dir, FLAGS.snapshot_steps).items():
    key = keys[step] = f'oneshot@{step}'
    done = cache.get(key)
    todo = [r for r in records if r.genotype not in done]
    if not todo:
      continue
    batches = batches or oneshot.held_out(dataset, config, FLAGS.eval_examples)
    searcher = oneshot.template(config, run_dir, dataset, path)
    for row in oneshot.evaluate(searcher, todo, batches):
      done[row['genotype']] = {'accuracy': row['oneshot_accuracy'], 'loss': row['oneshot_loss']}
    cache.save()
    logging.info('One-shot scores of step %d done', step)
  return keys


def budget_fit(steps: Sequence[int], taus: Sequence[float],
               target: float = TARGET_TAU) -> Optional[dict]:
  """τ ≈ a + b·log2(step) fitted by least squares to the snapshots (at least 3), and the steps
  at which the line reaches `target` (None if it does not rise). An extrapolation, not a
  measurement: it says what the target would take if the trend held."""
  if len(steps) < 3:
    return None
  slope, intercept = np.polyfit(np.log2(np.asarray(steps, np.float64)), taus, 1)
  reach = float(2 ** ((target - intercept) / slope)) if slope > 0 else None
  return {'intercept': float(intercept), 'slope_per_doubling': float(slope),
          'target_tau': target, 'steps_to_target': reach}


def figures(records, cache: Cache, keys: Dict[int, str], space) -> dict:
  truth = [r.cifar10 for r in records]
  param_ops = [cell_lib.parameterized_ops(space, r.arch) for r in records]
  out = {'ground_truth': {'kendall_tau_param_ops': kendall_tau(truth, param_ops)},
         'estimators': {}, 'snapshots': []}
  for step, key in sorted(keys.items()):
    done = cache.get(key)
    row = {'step': step, **correlations([done[r.genotype]['accuracy'] for r in records], truth,
                                        param_ops),
           'kendall_tau_neg_loss': kendall_tau([-done[r.genotype]['loss'] for r in records],
                                               truth),
           'mean_accuracy': float(np.mean([done[r.genotype]['accuracy'] for r in records]))}
    out['snapshots'].append(row)
  if out['snapshots']:
    out['estimators'][ONESHOT] = out['snapshots'][-1]
    out['budget_fit'] = budget_fit([s['step'] for s in out['snapshots']],
                                   [s['kendall_tau'] for s in out['snapshots']])
  done = cache.get('proxies')
  for name in FLAGS.proxies:
    out['estimators'][name] = correlations([done[r.genotype][name] for r in records], truth,
                                           param_ops)
  return out


def write_png(path: str, records, cache: Cache, keys: Dict[int, str], result: dict) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  truth = [r.cifar10 for r in records]
  names = list(result['estimators'])
  panels = len(names) + (1 if len(result['snapshots']) > 1 else 0)
  cols = min(3, panels)
  rows = math.ceil(panels / cols)
  fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False)
  for ax, name in zip(axes.flat, names):
    if name == ONESHOT:
      done = cache.get(keys[max(keys)])
      x = [done[r.genotype]['accuracy'] for r in records]
    else:
      done = cache.get('proxies')
      x = [done[r.genotype][name] for r in records]
      if name in ('synflow', 'params', 'flops'):
        x = [math.log10(max(v, 1e-30)) for v in x]
        name = f'log10 {name}'
    stats = result['estimators'][name.split()[-1]]
    x, worst = _plotted(x)
    ax.scatter(x, truth, s=8, alpha=0.6)
    if worst:
      ax.text(0.02, 0.02, f'{worst} at the left edge: no path / singular (worst score)',
              transform=ax.transAxes, fontsize=7)
    ax.set_xlabel(name)
    ax.set_ylabel('NB201 CIFAR-10 test accuracy (%)')
    ax.set_title(f"τ {stats['kendall_tau']:+.2f}  ρ {stats['spearman_rho']:+.2f}  "
                 f"top10 {stats['top10_recall']:.2f}", fontsize=9)
  if len(result['snapshots']) > 1:
    ax = axes.flat[len(names)]
    steps = [s['step'] for s in result['snapshots']]
    ax.plot(steps, [s['kendall_tau'] for s in result['snapshots']], 'o-', label='τ vs truth')
    ax.plot(steps, [s['kendall_tau_param_ops'] for s in result['snapshots']], 's-',
            label='τ vs #param ops')
    ax.axhline(0, color='grey', lw=0.5)
    ax.set_xlabel('template training step')
    ax.set_title('one-shot estimator over the run', fontsize=9)
    ax.legend(fontsize=8)
  for ax in list(axes.flat)[panels:]:
    ax.axis('off')
  fig.tight_layout()
  fileio.atomic_write_bytes(path, _png_bytes(fig))
  plt.close(fig)


def _plotted(values):
  """(values to plot, how many were a proxy's worst-score sentinel): sentinels are drawn just
  left of the finite scores instead of stretching the axis to -1e9."""
  sentinel = min(proxies_lib.WORST_NASWOT, proxies_lib.WORST_JACOB_COV)
  finite = [v for v in values if v > sentinel]
  if not finite or len(finite) == len(values):
    return values, 0
  edge = min(finite) - 0.05 * (max(finite) - min(finite) or 1.0)
  return [v if v > sentinel else edge for v in values], len(values) - len(finite)


def _png_bytes(fig) -> bytes:
  import io  # pylint: disable=g-import-not-at-top
  buffer = io.BytesIO()
  fig.savefig(buffer, format='png', dpi=90)
  return buffer.getvalue()


def main(unused_argv):
  config = run_config(FLAGS.run_dir)
  nb201 = NB201Benchmark.load(FLAGS.csv or None)
  dataset = data_lib.load_dataset(config.dataset, config.data_dir or None,
                                  search_valid_fraction=config.search_valid_fraction,
                                  split_seed=config.seed)
  check_sizes(dataset, config, FLAGS.num_cells, len(nb201))
  every = list(nb201)
  picks = np.random.default_rng(FLAGS.seed).choice(len(every), FLAGS.num_cells, replace=False)
  records = [every[i] for i in sorted(picks.tolist())]
  identity = {'run_dir': os.path.abspath(FLAGS.run_dir), 'eval_examples': FLAGS.eval_examples,
              'proxy_images': FLAGS.proxy_images, 'proxy_seed': FLAGS.proxy_seed}
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output_json)), exist_ok=True)
  cache = Cache(FLAGS.output_json + '.cache.json', identity)
  keys = score_oneshot(records, dataset, config, FLAGS.run_dir, cache)
  score_proxies(records, dataset, config, cache)
  result = {'run_dir': FLAGS.run_dir, 'config': config.to_dict(), 'num_cells': len(records),
            'seed': FLAGS.seed, **identity,
            **figures(records, cache, keys, cell_config.resolve_space(config))}
  fileio.atomic_write_json(FLAGS.output_json, result)
  png = FLAGS.png or os.path.splitext(FLAGS.output_json)[0] + '.png'
  write_png(png, records, cache, keys, result)
  print_table(result)
  print(f'wrote {FLAGS.output_json} and {png}')


def print_table(result: dict) -> None:
  print(f"{result['num_cells']} NB201 cells (seed {result['seed']}); ground truth vs #param "
        f"ops τ {result['ground_truth']['kendall_tau_param_ops']:+.3f}")
  print(f"{'estimator':<16}{'tau':>8}{'rho':>8}{'top10':>8}{'tau(#param ops)':>17}")
  for name, s in result['estimators'].items():
    print(f"{name:<16}{s['kendall_tau']:>+8.3f}{s['spearman_rho']:>+8.3f}"
          f"{s['top10_recall']:>8.2f}{s['kendall_tau_param_ops']:>+17.3f}")
  if len(result['snapshots']) > 1:
    print('one-shot over the run: ' + '; '.join(
        f"step {s['step']}: τ {s['kendall_tau']:+.3f} (#param ops {s['kendall_tau_param_ops']:+.3f}"
        f", mean acc {s['mean_accuracy']:.3f})" for s in result['snapshots']))
  fit = result.get('budget_fit')
  if fit:
    reach = (f"{fit['steps_to_target']:.3g} steps" if fit['steps_to_target'] else 'never')
    print(f"budget fit: τ ≈ {fit['intercept']:+.3f} {fit['slope_per_doubling']:+.3f}·log2(step); "
          f"τ {fit['target_tau']} at {reach} if the trend held")


if __name__ == '__main__':
  common.run(main)
