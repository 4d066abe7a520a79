"""One-shot random search on a cell supernet (Li & Talwalkar's RSPS / SETN-RAND without an evaluator).

Per step the supernet weights take one SGD step through one uniformly sampled single path (as
SETN's template network); at the end T distinct uniformly drawn candidates are scored with the
shared weights on one held-out validation batch and the most accurate one is returned. There
are no architecture parameters, so the validation batch of each step is unused.
"""

from typing import Dict

import numpy as np
import tensorflow as tf

from tunas_tf.search import candidates
from tunas_tf.search.cell_searcher import CellSearcher
from tunas_tf.search.controller import step_seed
from tunas_tf.space.architecture import Architecture

_CANDIDATE_SEED_OFFSET = 104729


class RandomCellSearcher(CellSearcher):
  """Uniform single-path training + best of T uniform candidates."""

  algorithm = 'random'
  uses_arch_parameters = False
  progress_keys = ('loss', 'train_accuracy')
  report_panels = (('loss', ('loss',)), ('accuracy', ('train_accuracy',)))

  # Plain graph code (no data-dependent Python control flow): autograph would only add
  # seconds of tracing.
  @tf.autograph.experimental.do_not_convert
  def replica_step(self, train_batch, valid_batch, step) -> Dict[str, tf.Tensor]:
    del valid_batch  # No architecture parameters to update.
    replica = tf.distribute.get_replica_context().replica_id_in_sync_group
    return self.template_weight_step(train_batch, step_seed(self.config.seed, step, replica, 0))

  def final_architecture(self) -> Architecture:
    rng = np.random.default_rng(self.config.seed + _CANDIDATE_SEED_OFFSET)
    uniform = candidates.uniform([d.num_choices for d in self.space.decisions])
    drawn = candidates.sample_distinct(uniform, self.config.resolved_num_candidates, rng,
                                       self.space.name)
    return self.score_candidates(self.prefilter(drawn))
