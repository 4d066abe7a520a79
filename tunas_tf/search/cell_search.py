"""`search_cell(config, output_dir)`: runs (or resumes) a GDAS / SETN / DARTS / random / PGNAS search.

Every algorithm runs in the one search loop (`loop.run`): distributed (train, valid) batch
pairs from the search_train / search_valid halves of the training set, checkpoints and resume,
TensorBoard, progress, NaN stop, OUT/arch.json and OUT/summary.json. On top, a cell search
writes

* OUT/config.json: the configuration (a re-run with another one is refused);
* OUT/report.png: training curves and the per-edge op probabilities over the steps
  (`cell_report`, replacing the loop's generic report);
* OUT/candidates.jsonl (SETN, random, PGNAS): every scored candidate, its string form and its
  accuracy / loss on the held-out batch;
* OUT/pruned_model.keras (PGNAS): the stand-alone pruned network of the best candidate.

Candidates are scored on one fixed batch of `eval_batch_size` search_valid images (no
augmentation), drawn before the search starts so a too-small split fails fast.
"""

import json
import os
from typing import Any, Callable, Dict, Optional, Tuple

import keras
import numpy as np
from absl import logging

from tunas_tf import data as data_lib
from tunas_tf import fileio
from tunas_tf.errors import UserError
from tunas_tf.search import candidates
from tunas_tf.search import cell_config
from tunas_tf.search import cell_report
from tunas_tf.search import cell_template
from tunas_tf.search import loop
from tunas_tf.search import strategy as strategy_lib
from tunas_tf.search.cell_config import CellSearchConfig
from tunas_tf.space.architecture import Architecture

CONFIG_FILE = loop.CONFIG_FILE
CANDIDATES_FILE = 'candidates.jsonl'
PRUNED_MODEL_FILE = 'pruned_model.keras'
RESUMABLE_CHANGES = ('strategy', 'tpu', 'log_every', 'keep_checkpoints')
CANDIDATE_ALGORITHMS = ('setn', 'random', 'pgnas')


def make_searcher(config: CellSearchConfig, space, num_classes: int, num_train_examples: int,
                  eval_data: Optional[Callable[[], Tuple[np.ndarray, np.ndarray]]] = None):
  """The searcher of `config.algorithm` (imported lazily: each pulls in its supernet)."""
  # pylint: disable=g-import-not-at-top
  if config.algorithm == 'gdas':
    from tunas_tf.search.gdas import GdasSearcher as cls
  elif config.algorithm == 'darts':
    from tunas_tf.search.darts import DartsSearcher as cls
  elif config.algorithm == 'setn':
    from tunas_tf.search.setn import SetnSearcher as cls
  elif config.algorithm == 'random':
    from tunas_tf.search.random_cell import RandomCellSearcher as cls
  else:
    from tunas_tf.search.pgnas import PgnasSearcher
    return PgnasSearcher(config, space, num_classes, num_train_examples, eval_data)
  return cls(config, space, num_classes, eval_data)


def check_dataset(dataset, config: CellSearchConfig) -> None:
  """UserErrors for splits too small for the batches (before anything is built)."""
  name = dataset.info.name
  data_lib.check_min_examples(dataset.split_size('search_train'), config.batch_size,
                              f'dataset {name!r} split search_train')
  data_lib.check_min_examples(dataset.split_size('search_valid'),
                              config.resolved_valid_batch_size,
                              f'dataset {name!r} split search_valid (validation batch)')
  if config.algorithm in CANDIDATE_ALGORITHMS:
    size = dataset.split_size('search_valid')
    if size < config.eval_batch_size:
      raise UserError(
          f'dataset {name!r} split search_valid has {size} example(s), fewer than '
          f'eval_batch_size={config.eval_batch_size} held-out examples that score the '
          f'{config.algorithm} candidates; pass --eval_batch_size <= {size}, a larger '
          '--search_valid_fraction or a larger dataset')


def check_candidates(config: CellSearchConfig, space) -> None:
  """SETN / random search draw distinct candidates: no more than the space holds."""
  if config.algorithm in ('setn', 'random'):
    total = candidates.num_architectures(d.num_choices for d in space.decisions)
    if config.resolved_num_candidates > total:
      raise UserError(f'num_candidates={config.resolved_num_candidates} exceeds the {total} '
                      f'architectures of {space.name!r}; pass at most {total}')


def eval_data_fn(dataset, config: CellSearchConfig) -> Callable[[], Tuple[np.ndarray, np.ndarray]]:
  """The held-out batch: the first `eval_batch_size` search_valid images, not augmented."""
  cache = []

  def get():
    if not cache:
      pipeline = data_lib.PipelineConfig(image_size=config.image_size,
                                         batch_size=config.eval_batch_size, augment=False,
                                         drop_remainder=True)
      batch = next(iter(data_lib.make_pipeline(dataset, 'search_valid', pipeline).take(1)))
      cache.append((batch[0].numpy(), batch[1].numpy()))
    return cache[0]

  return get


def dataset_fn(dataset, config: CellSearchConfig) -> loop.DatasetFn:
  def make(start_step: int):
    # A resumed run continues both streams at the batch it stopped at.
    train = data_lib.PipelineConfig(image_size=config.image_size, batch_size=config.batch_size,
                                    seed=config.seed, drop_remainder=True, repeat=True,
                                    start_batch=start_step)
    valid = data_lib.PipelineConfig(image_size=config.image_size,
                                    batch_size=config.resolved_valid_batch_size,
                                    seed=config.seed + 1, drop_remainder=True, repeat=True,
                                    start_batch=start_step)
    # AutoDL's search loaders augment both halves alike.
    return (data_lib.make_pipeline(dataset, 'search_train', train, training=True),
            data_lib.make_pipeline(dataset, 'search_valid', valid, training=True))
  return make


def search_cell(config: CellSearchConfig, output_dir: str,
                step_callback: Optional[loop.StepCallback] = None,
                template_from: str = '') -> Dict[str, Any]:
  """Runs (or resumes, or returns the finished) cell search `config` in `output_dir`.

  With `template_from` (a finished random / SETN run of the same template), the run starts
  from that run's final weights and only picks (`cell_template`).

  Returns:
    The summary (also OUT/summary.json): arch, genotype (+ nb201_string for NB201), steps,
    final_metrics, algorithm-specific entries.

  Raises:
    UserError: bad inputs (detected before training), or `loop.SearchDiverged`.
  """
  done = loop.completed_summary(output_dir, config, RESUMABLE_CHANGES)
  if done is not None:
    logging.info('Search in %s is already complete; nothing to do.', output_dir)
    return done
  space = cell_config.resolve_space(config)
  strategy = strategy_lib.make_strategy(config.strategy, config.tpu)
  dataset = data_lib.load_dataset(config.dataset, config.data_dir or None,
                                  search_valid_fraction=config.search_valid_fraction,
                                  split_seed=config.seed)
  check_dataset(dataset, config)
  check_candidates(config, space)
  template = (cell_template.check_source(template_from, config, RESUMABLE_CHANGES)
              if template_from else None)
  num_train = dataset.split_size('search_train')
  steps = cell_config.total_steps(config, num_train)
  chief = strategy_lib.is_chief(strategy)
  if chief:
    os.makedirs(output_dir, exist_ok=True)
    fileio.atomic_write_json(os.path.join(output_dir, CONFIG_FILE), config.to_dict())
    if template:
      cell_template.start_from(template_from, template, output_dir)
  keras.utils.set_random_seed(config.seed)
  searcher = make_searcher(config, space, dataset.info.num_classes, num_train,
                           eval_data_fn(dataset, config))
  loop_config = loop.LoopConfig(steps=steps, checkpoint_every=config.checkpoint_every,
                                summary_every=config.summary_every, log_every=config.log_every,
                                steps_per_loop=config.steps_per_loop,
                                max_checkpoints=config.keep_checkpoints)
  logging.info('%s on %s (%s), %d steps of batch %d/%d, image size %d', config.algorithm,
               space.description or space.name, config.dataset, steps, config.batch_size,
               config.resolved_valid_batch_size, config.image_size)
  summary = loop.run(searcher, strategy, dataset_fn(dataset, config), loop_config, output_dir,
                     seed=config.seed, step_callback=step_callback)
  if chief:
    summary = _write_extras(searcher, config, space, output_dir, summary)
  return summary


def _write_extras(searcher, config, space, output_dir, summary) -> Dict[str, Any]:
  history = _read_metrics(os.path.join(output_dir, loop.METRICS_FILE))
  cell_report.write_cell_report(
      os.path.join(output_dir, loop.REPORT_FILE), history, space, searcher.report_panels,
      f'{config.algorithm} on {space.name} ({config.dataset}): architecture distribution')
  extra = {'settings': config.to_dict()}  # The resolved settings (preset and flags).
  if getattr(searcher, 'candidates', None) is not None:
    lines = [json.dumps({'indices': list(indices), 'arch': space.to_string(
        Architecture(space.name, indices)), 'accuracy': acc, 'loss': loss})
             for indices, acc, loss in searcher.candidates]
    fileio.atomic_write_text(os.path.join(output_dir, CANDIDATES_FILE),
                             ''.join(l + '\n' for l in lines))
    extra['candidates_file'] = CANDIDATES_FILE
  if config.algorithm == 'pgnas':
    path = os.path.join(output_dir, PRUNED_MODEL_FILE)
    model = searcher.pruned_model()
    model.save(path)
    extra.update(pruned_model=PRUNED_MODEL_FILE, pruned_model_params=int(model.count_params()))
  summary = {**summary, **extra}
  fileio.atomic_write_json(os.path.join(output_dir, loop.SUMMARY_FILE), summary)
  return summary


def _read_metrics(path: str) -> list:
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]
