"""The one-shot estimator of NAS-Bench-201 benches (flag-free, shared by `bench.setn_ranking`
and `bench.nb201_ranking`): a finished cell search's template weights restored into its
searcher, the held-out images they are scored on, single-path scores of NB201 cells, and
Spearman's ρ."""

import os
from typing import Any, Dict, List

from absl import logging
import numpy as np
import tensorflow as tf

from tunas_tf import data as data_lib
from tunas_tf.errors import UserError
from tunas_tf.search import cell_config
from tunas_tf.search import cell_search
from tunas_tf.search import loop
from tunas_tf.search.cell_config import CellSearchConfig
from tunas_tf.search.searcher import SearchContext


def template(config: CellSearchConfig, run_dir: str, dataset, checkpoint: str = ''):
  """The searcher of `config` holding the run's template weights: those of `checkpoint`, by
  default the run's last."""
  space = cell_config.resolve_space(config)
  num_train = dataset.split_size('search_train')
  searcher = cell_search.make_searcher(config, space, dataset.info.num_classes, num_train)
  shape = (config.batch_size, config.image_size, config.image_size, 3)
  valid_shape = (config.resolved_valid_batch_size,) + shape[1:]
  searcher.build(SearchContext(tf.distribute.get_strategy(), 1,
                               cell_config.total_steps(config, num_train), config.seed, shape,
                               valid_shape))
  latest = checkpoint or tf.train.latest_checkpoint(os.path.join(run_dir, loop.CHECKPOINT_DIR))
  if latest is None:
    raise UserError(f'{run_dir!r} has no checkpoint of its template weights')
  # Restored as the search loop resumes, through every trackable: with Keras 3 on TF, layers
  # held in Python lists (the supernet's cells and their ops) are not checkpoint dependencies
  # of the model, so their weights are reachable only through the weight optimizer's variable
  # list, and restoring the supernet alone would silently keep them at their initial values.
  status = tf.train.Checkpoint(**searcher.trackables()).restore(latest)
  status.assert_existing_objects_matched().expect_partial()  # The loop's step counter.
  logging.info('Template weights from %s', latest)
  return searcher


def held_out(dataset, config: CellSearchConfig, num_examples: int,
             split: str = 'search_valid') -> List[tuple]:
  """Whole batches of eval_batch_size (or fewer) unaugmented images of `split`, from the
  first: of search_valid, the first batch is the one the search scored its candidates on."""
  batch = min(config.eval_batch_size, num_examples)
  pipeline = data_lib.PipelineConfig(image_size=config.image_size, batch_size=batch,
                                     augment=False, drop_remainder=True)
  batches = data_lib.make_pipeline(dataset, split, pipeline).take(
      max(num_examples // batch, 1))
  return [(tf.constant(x), tf.constant(y)) for x, y in batches]


def first_images(dataset, split: str, image_size: int, count: int) -> np.ndarray:
  """The first `count` unaugmented images of `split` (the batch the proxies compare)."""
  pipeline = data_lib.PipelineConfig(image_size=image_size, batch_size=count, augment=False,
                                     drop_remainder=True)
  images, _ = next(iter(data_lib.make_pipeline(dataset, split, pipeline).take(1)))
  return images.numpy()


def _ranks(values) -> np.ndarray:
  """Ranks 0..n-1 with ties given their mean rank (as scipy.stats.rankdata - 1)."""
  values = np.asarray(values, np.float64)
  ranks = np.empty(len(values))
  ranks[np.argsort(values, kind='stable')] = np.arange(len(values))
  for v in np.unique(values):
    ranks[values == v] = ranks[values == v].mean()
  return ranks


def spearman(x, y) -> float:
  """Spearman's ρ: the Pearson correlation of the (tie-averaged) ranks; NaN if one is constant."""
  rx, ry = _ranks(x), _ranks(y)
  if rx.std() == 0 or ry.std() == 0:
    return float('nan')
  return float(np.corrcoef(rx, ry)[0, 1])


def evaluate(searcher, records, batches) -> List[Dict[str, Any]]:
  rows = []
  for n, record in enumerate(records):
    scores = [searcher.evaluate(np.asarray(record.arch.indices), x, y) for x, y in batches]
    rows.append({'genotype': record.genotype, 'nb201_index': record.index,
                 'oneshot_accuracy': float(np.mean([s[0] for s in scores])),
                 'oneshot_loss': float(np.mean([s[1] for s in scores])),
                 'cifar10_test_accuracy': record.cifar10})
    if (n + 1) % 20 == 0:
      logging.info('Evaluated %d/%d cells', n + 1, len(records))
  return rows
