"""First-order DARTS (Liu et al., ICLR 2019) on the cell supernets (AutoDL `DARTS-V1.py`).

Per step: the architecture logits take one Adam step on a validation batch, then the weights one
SGD step on a training batch, both through the full softmax mixture (every op of every edge,
weighted by softmax(α); SETN-space cells through SETN's Eq. 10 coefficients). First order: the
architecture gradient is taken at the current weights (no unrolled step).

Result: per-edge argmax (NB201, SETN) or the DARTS genotype of α (DARTS spaces). On NB201 this
is the method that collapses to all-skip cells (54.30% on CIFAR-10, anchors §2.1).
"""

from typing import Dict

import tensorflow as tf

from tunas_tf.search import cell_results
from tunas_tf.search.cell_searcher import CellSearcher
from tunas_tf.space.architecture import Architecture


class DartsSearcher(CellSearcher):
  """First-order DARTS (see the module docstring)."""

  algorithm = 'darts'
  genotype_from_alpha = True

  # Plain graph code (no data-dependent Python control flow): autograph would only add
  # seconds of tracing.
  @tf.autograph.experimental.do_not_convert
  def replica_step(self, train_batch, valid_batch, step) -> Dict[str, tf.Tensor]:
    arch = self.gated_arch_step(valid_batch, lambda: self.mixture(stop_gradient=False), step)
    weights = self.weight_step(train_batch, lambda: self.mixture(stop_gradient=True))
    return {**weights, **arch, **self.probability_metrics()}

  def final_architecture(self) -> Architecture:
    arch, self.arch_source = cell_results.architecture_from_alpha(
        self.space, self.alpha.numpy_probabilities())
    return arch

  def summary_extra(self, arch: Architecture):
    return {**super().summary_extra(arch), 'arch_source': getattr(self, 'arch_source', '')}
