"""SETN: One-Shot NAS via Self-Evaluated Template Network (Dong & Yang, ICCV 2019).

Per step, as AutoDL `exps/NAS-Bench-201-algos/SETN.py` (anchors/cellsearch.md §1.4) and the
paper's Algorithm 1:

1. the *template network* (the supernet weights) takes one SGD step on a training batch through
   one uniformly sampled candidate (SETN Eq. 1-3: every decision uniform, one op per edge);
2. the *evaluator* (the architecture logits α) takes one Adam step on a validation batch
   through the relaxed network of Eq. 10 (AutoDL's 'joint' mode: every op of every edge,
   weighted by softmax(α)).

At the end T candidates are drawn from the evaluator's distribution without duplicates
(`candidates.sample_distinct`; paper: T = 1000), each is scored with the template weights on
one held-out validation batch (AutoDL: 512 images), and the most accurate one is returned.

Variants (SETN §4.4): 'rand' (SETN-RAND) draws the candidates uniformly instead; 'non'
(SETN-NON) trains the template on the full mixture (softmax(α) weights, no sampling).

Deviation: AutoDL's `return_topK` takes the K most likely genotypes instead of sampling; the
paper samples, and so do we.
"""

from typing import Dict

import numpy as np
import tensorflow as tf

from tunas_tf.search import candidates
from tunas_tf.search.cell_searcher import CellSearcher
from tunas_tf.search.controller import step_seed
from tunas_tf.space.architecture import Architecture

_TEMPLATE_STREAM = 0
# Candidates draw from their own stream of the run seed, not random search's: with the same
# seed the two share the template weights (both train it on uniform paths), so shared
# candidate draws would make SETN return random search's cell whenever α is still near
# uniform (as after a short run), and SETN's evaluator would decide nothing.
_CANDIDATE_SEED_OFFSET = 130363


class SetnSearcher(CellSearcher):
  """SETN (see the module docstring)."""

  algorithm = 'setn'

  def template_step(self, train_batch, step) -> Dict[str, tf.Tensor]:
    if self.config.setn_variant == 'non':
      return self.weight_step(train_batch, lambda: self.mixture(stop_gradient=True))
    replica = tf.distribute.get_replica_context().replica_id_in_sync_group
    return self.template_weight_step(
        train_batch, step_seed(self.config.seed, step, replica, _TEMPLATE_STREAM))

  # Plain graph code (no data-dependent Python control flow): autograph would only add
  # seconds of tracing.
  @tf.autograph.experimental.do_not_convert
  def replica_step(self, train_batch, valid_batch, step) -> Dict[str, tf.Tensor]:
    weights = self.template_step(train_batch, step)
    arch = self.gated_arch_step(valid_batch, lambda: self.mixture(stop_gradient=False), step)
    return {**weights, **arch, **self.probability_metrics()}

  def candidate_probabilities(self) -> list:
    if self.config.setn_variant == 'rand':
      return candidates.uniform([d.num_choices for d in self.space.decisions])
    return self.alpha.numpy_probabilities()

  def final_architecture(self) -> Architecture:
    rng = np.random.default_rng(self.config.seed + _CANDIDATE_SEED_OFFSET)
    drawn = candidates.sample_distinct(self.candidate_probabilities(),
                                       self.config.resolved_num_candidates, rng, self.space.name)
    return self.score_candidates(self.prefilter(drawn))

  def summary_extra(self, arch: Architecture):
    return {**super().summary_extra(arch), 'setn_variant': self.config.setn_variant}
