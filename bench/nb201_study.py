r"""Search quality on NAS-Bench-201 at a budget preset: the cells GDAS, SETN, DARTS and random
search find for each seed, judged by the NB201 ground truth (200-epoch CIFAR-10 test accuracy),
beside training-free baselines that pick from the same number of uniformly drawn candidates.

For each seed and searcher it runs `launch.search_cell --preset=P` (CIFAR-10 by default) in
OUTPUT_DIR/ALGORITHM/seedS, each in its own process (a finished run is reused, an interrupted
one resumes), then looks the found cell up. Each baseline draws the preset's candidate count of
cells uniformly with the seed (the count SETN and random search score) and keeps the best by
its score (`tunas_tf.search.proxies`; cached in OUTPUT_DIR/baselines/seedS.json). Ground truth
never reaches a searcher or a baseline: it only judges their picks.

Writes OUTPUT_DIR/study.json and OUTPUT_DIR/study.png (found-cell accuracy per searcher and
baseline, mean ± std over the seeds, with the space median, the top-10% threshold and the size
baseline marked) and prints the table: accuracy per seed, mean ± std, mean rank of 15,625,
the most parameter-free edges of a found cell (of 6), and the search time.

  python -m bench.nb201_study --preset=quick --seeds=0,1,2 --output_dir=/tmp/study_quick
  python -m bench.nb201_study --preset=cpu --seeds=0,1,2 --algorithms=gdas,random \
      --output_dir=/tmp/study_cpu
"""

import functools
import os
import statistics
from typing import Any, Dict, List, Tuple

from absl import flags
from absl import logging
import numpy as np

from bench import oneshot
from bench import paths
from bench import study_runs
from launch import common
from tunas_tf import data as data_lib
from tunas_tf import fileio
from tunas_tf.benchmarks import NB201Benchmark
from tunas_tf.errors import UserError
from tunas_tf.search import cell_config
from tunas_tf.search import cell_presets
from tunas_tf.search import cell_searcher
from tunas_tf.search import proxies as proxies_lib
from tunas_tf.space import cell as cell_lib
from tunas_tf.space import registry

FLAGS = flags.FLAGS
flags.DEFINE_string('preset', 'quick', 'Budget preset of every search (quick, cpu, paper).')
flags.DEFINE_list('seeds', ['0', '1', '2'], 'Seeds of the searches and baselines.')
flags.DEFINE_string('output_dir', None, 'Where the runs, study.json and study.png go.')
flags.DEFINE_list('algorithms', ['gdas', 'setn', 'darts', 'random'],
                  'Searchers compared; random+PROXY / setn+PROXY: that searcher with '
                  '--candidate_filter=PROXY, picking from the plain run\'s template when it '
                  'has finished.')
flags.DEFINE_list('baselines', list(proxies_lib.PROXIES), 'Training-free baselines compared.')
flags.DEFINE_string('dataset', paths.DEFAULT_CIFAR, 'Dataset of the searches.')
flags.DEFINE_list('set', [], 'Extra search_cell flags for every run, e.g. steps=20,channels=4 '
                  '(they override the preset, and study.json records them).')
flags.DEFINE_integer('proxy_images', 64, 'search_train images of naswot / jacob_cov.')
flags.DEFINE_string('csv', '', 'NB201 accuracy CSV (default: shared/data).')
flags.mark_flags_as_required(['output_dir'])

SEARCHERS = ('gdas', 'setn', 'darts', 'random')
TOTAL_PARAMETER_FREE_LIMIT = 3  # The bound on parameter-free edges of a found cell.


def _extra_flags() -> Dict[str, str]:
  out = {}
  for item in FLAGS.set:
    key, sep, value = item.partition('=')
    if not sep or not key:
      raise UserError(f'--set: {item!r} is not KEY=VALUE (e.g. steps=20)')
    out[key] = value
  return out


def parse_searcher(label: str) -> Tuple[str, str]:
  """'random+synflow' -> ('random', 'synflow'); 'gdas' -> ('gdas', '')."""
  algorithm, _, proxy = label.partition('+')
  if algorithm not in SEARCHERS or (proxy and algorithm not in cell_config.TEMPLATE_ALGORITHMS):
    raise UserError(f'--algorithms: {label!r} is not a searcher; pass one of '
                    f'{", ".join(SEARCHERS)}, or random+PROXY / setn+PROXY')
  if proxy:
    proxies_lib.check_proxies([proxy], registry.get_space(cell_lib.NB201_SPACE),
                              cell_searcher.PROXY_IMAGES)
  return algorithm, proxy


def run_search(label: str, seed: int) -> Dict[str, Any]:
  """Runs (or resumes, or reuses) one search; returns its summary and wall time (with the
  training of the template it picked from, if any)."""
  algorithm, proxy = parse_searcher(label)
  args = [f'--preset={FLAGS.preset}', f'--algorithm={algorithm}', f'--seed={seed}',
          f'--dataset={FLAGS.dataset}', *[f'--{k}={v}' for k, v in _extra_flags().items()]]
  filter_args, seconds = _filter_args(algorithm, proxy, seed)
  return study_runs.run_search_cell(args + filter_args,
                                    os.path.join(FLAGS.output_dir, label, f'seed{seed}'),
                                    f'{label} seed {seed}', seconds)


def _filter_args(algorithm: str, proxy: str, seed: int) -> Tuple[List[str], float]:
  """The flags of a filtered searcher, and the seconds of the template it starts from: the
  plain searcher's run of this seed when this study has finished it, else none (it trains)."""
  if not proxy:
    return [], 0.0
  template = os.path.join(FLAGS.output_dir, algorithm, f'seed{seed}')
  seconds = study_runs.finished_seconds(template)
  if seconds is None:
    return [f'--candidate_filter={proxy}'], 0.0
  return [f'--candidate_filter={proxy}', f'--template_from={template}'], seconds


def judge(nb201: NB201Benchmark, genotype: str) -> Dict[str, Any]:
  arch = cell_lib.from_nb201_string(genotype)
  space = registry.get_space(cell_lib.NB201_SPACE)
  return {'genotype': genotype, 'accuracy': nb201.query(arch).cifar10,
          'rank': nb201.rank(arch), 'parameter_free_edges':
              len(space.decisions) - cell_lib.parameterized_ops(space, arch)}


def baselines(nb201: NB201Benchmark, seed: int, num_candidates: int, settings: dict) -> dict:
  """{proxy: judged pick} of the best of `num_candidates` uniform cells by each proxy."""
  path = os.path.join(FLAGS.output_dir, 'baselines', f'seed{seed}.json')
  identity = {'num_candidates': num_candidates, 'image_size': settings['image_size'],
              'channels': settings['channels'], 'num_cells': settings['num_cells'],
              'proxy_images': FLAGS.proxy_images}
  cache = fileio.read_json(path) if os.path.exists(path) else {}
  scores = cache.get('scores', {}) if cache.get('identity') == identity else {}
  every = list(nb201)
  picks = np.random.default_rng(seed).choice(len(every), num_candidates, replace=False)
  records = [every[i] for i in picks.tolist()]
  space = cell_lib.with_macro(registry.get_space(cell_lib.NB201_SPACE),
                              channels=settings['channels'] or 16,
                              cells_per_stage=settings['num_cells'] or 5)
  scorer = None
  for n, record in enumerate(records):
    missing = [b for b in FLAGS.baselines if b not in scores.get(record.genotype, {})]
    if not missing:
      continue
    scorer = scorer or proxies_lib.ProxyScorer(space, 10, settings['image_size'],
                                               _proxy_images(settings['image_size']), seed)
    scores[record.genotype] = {**scores.get(record.genotype, {}),
                               **scorer.scores(record.arch, missing)}
    if (n + 1) % 10 == 0 or n + 1 == len(records):
      os.makedirs(os.path.dirname(path), exist_ok=True)
      fileio.atomic_write_json(path, {'identity': identity, 'scores': scores})
      logging.info('Baselines of seed %d: %d/%d candidates scored', seed, n + 1, len(records))
  return {b: judge(nb201, max(records, key=lambda r: scores[r.genotype][b]).genotype)
          for b in FLAGS.baselines}


@functools.lru_cache(maxsize=None)
def _proxy_images(image_size: int) -> np.ndarray:
  """The first --proxy_images search_train images (the dataset is read once per size)."""
  dataset = data_lib.load_dataset(FLAGS.dataset, None, search_valid_fraction=0.5, split_seed=0)
  return oneshot.first_images(dataset, 'search_train', image_size, FLAGS.proxy_images)


def _resolved(algorithm: str) -> dict:
  """The preset's settings with --set on top (values as the flags parse them)."""
  fields = cell_presets.settings(FLAGS.preset, algorithm)
  for key, value in _extra_flags().items():
    if key in fields:
      fields[key] = type(fields[key])(value)
  return fields


def summarize(rows: Dict[str, List[dict]], top10_threshold: float) -> Dict[str, dict]:
  """Per searcher: its picks, mean ± std, mean rank, the most parameter-free edges of a pick,
  and `violations`: picks with more than TOTAL_PARAMETER_FREE_LIMIT parameter-free edges that
  are not in the top 10%."""
  out = {}
  for name, picks in rows.items():
    accuracies = [p['accuracy'] for p in picks]
    out[name] = {'picks': picks, 'mean': statistics.fmean(accuracies),
                 'std': statistics.pstdev(accuracies) if len(accuracies) > 1 else 0.0,
                 'mean_rank': statistics.fmean(p['rank'] for p in picks),
                 'max_parameter_free_edges': max(p['parameter_free_edges'] for p in picks),
                 'violations': sum(1 for p in picks
                                   if p['parameter_free_edges'] > TOTAL_PARAMETER_FREE_LIMIT
                                   and p['accuracy'] < top10_threshold)}
    seconds = [p['seconds'] for p in picks if 'seconds' in p]
    if seconds:
      out[name]['mean_seconds'] = statistics.fmean(seconds)
  return out


def main(unused_argv):
  seeds = study_runs.parse_seeds(FLAGS.seeds)
  for label in FLAGS.algorithms:
    parse_searcher(label)
  if FLAGS.preset not in cell_presets.PRESETS:
    cell_presets.settings(FLAGS.preset, 'gdas')  # The error lists the valid presets.
  proxies_lib.check_proxies(FLAGS.baselines, registry.get_space(cell_lib.NB201_SPACE),
                            FLAGS.proxy_images)
  nb201 = NB201Benchmark.load(FLAGS.csv or None)
  rows: Dict[str, List[dict]] = {}
  for seed in seeds:
    for algorithm in FLAGS.algorithms:
      summary = run_search(algorithm, seed)
      rows.setdefault(algorithm, []).append(
          {'seed': seed, 'seconds': summary['study_seconds'],
           **judge(nb201, summary['nb201_string'])})
    settings = _resolved('random')
    for name, pick in baselines(nb201, seed, settings['num_candidates'] or 1000,
                                settings).items():
      rows.setdefault(f'best-of-{settings["num_candidates"]} {name}', []).append(
          {'seed': seed, **pick})
  stats = nb201.stats()
  result = {'preset': FLAGS.preset, 'set': _extra_flags(), 'seeds': seeds,
            'dataset': FLAGS.dataset,
            'space': {'mean': stats.mean, 'median': stats.median,
                      'top10_threshold': stats.top_fraction_threshold, 'best': stats.best},
            'settings': {a: _resolved(parse_searcher(a)[0]) for a in FLAGS.algorithms},
            'results': summarize(rows, stats.top_fraction_threshold)}
  os.makedirs(FLAGS.output_dir, exist_ok=True)
  fileio.atomic_write_json(os.path.join(FLAGS.output_dir, 'study.json'), result)
  write_png(os.path.join(FLAGS.output_dir, 'study.png'), result)
  print_table(result)


def print_table(result: dict) -> None:
  space = result['space']
  print(f"NB201 search study, preset {result['preset']} {result['set'] or ''}, seeds "
        f"{result['seeds']} (CIFAR-10 test accuracy of the found cell, 200-epoch NB201 "
        f"ground truth; space median {space['median']:.2f}, top 10% >= "
        f"{space['top10_threshold']:.2f}, best {space['best']:.2f})")
  print(f"{'searcher':<28}{'per seed':<26}{'mean ± std':>14}{'mean rank':>11}"
        f"{'max free edges':>16}{'violations':>12}{'time':>9}")
  for name, r in result['results'].items():
    per_seed = ' '.join(f"{p['accuracy']:.2f}" for p in r['picks'])
    time_text = f"{r['mean_seconds'] / 60:.1f}m" if 'mean_seconds' in r else '-'
    print(f"{name:<28}{per_seed:<26}{r['mean']:>8.2f} ± {r['std']:<4.2f}{r['mean_rank']:>11.0f}"
          f"{r['max_parameter_free_edges']:>16d}{r['violations']:>12d}{time_text:>9}")


def write_png(path: str, result: dict) -> None:
  import io  # pylint: disable=g-import-not-at-top
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  names = list(result['results'])
  fig, ax = plt.subplots(figsize=(1.1 * len(names) + 3, 4.2))
  for i, name in enumerate(names):
    r = result['results'][name]
    ax.scatter([i] * len(r['picks']), [p['accuracy'] for p in r['picks']], s=14, alpha=0.7)
    ax.errorbar([i], [r['mean']], yerr=[r['std']], fmt='k_', capsize=6)
  space = result['space']
  size = next((r['mean'] for n, r in result['results'].items() if n.endswith(' params')), None)
  for value, label, style in ((space['median'], 'space median', ':'),
                              (space['top10_threshold'], 'top 10%', '--'),
                              (size, 'size baseline', '-.')):
    if value is not None:
      ax.axhline(value, ls=style, color='grey', lw=1, label=f'{label} {value:.2f}')
  ax.legend(loc='lower right', fontsize=8)
  ax.set_xticks(range(len(names)))
  ax.set_xticklabels(names, rotation=30, ha='right', fontsize=8)
  ax.set_ylabel('found cell: NB201 CIFAR-10 test accuracy (%)')
  lows = [p['accuracy'] for r in result['results'].values() for p in r['picks']]
  ax.set_ylim(max(0.0, min(lows + [space['median']]) - 2), space['best'] + 1)
  ax.set_title(f"preset {result['preset']}, {len(result['seeds'])} seeds", fontsize=10)
  fig.tight_layout()
  buffer = io.BytesIO()
  fig.savefig(buffer, format='png', dpi=90)
  plt.close(fig)
  fileio.atomic_write_bytes(path, buffer.getvalue())


if __name__ == '__main__':
  common.run(main)
