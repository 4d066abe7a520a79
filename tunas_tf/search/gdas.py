"""GDAS: Gradient-based search using Differentiable Architecture Sampler (Dong & Yang, CVPR 2019).

Per step, as AutoDL `exps/NAS-Bench-201-algos/GDAS.py` (anchors/cellsearch.md §1.2-1.3):

1. the weights take one SGD step on a training batch through a sampled single path (with
   `arch_warmup_sampling='mixture'`, through the uniform mixture of every op while α is still
   held by `arch_warmup_fraction`);
2. the architecture logits α take one Adam step on a validation batch through a *new* sample.

Sampler (AutoDL `search_model_gdas.py`, paper §3.2): per edge, Gumbel noise g = -log(E),
E ~ Exp(1); probs = softmax((log_softmax(α) + g) / τ); index = argmax; the straight-through
weights hardwts = one_hot(index) - stop_gradient(probs) + probs are one-hot in the forward
pass and carry the softmax's gradient. One sample per forward pass and edge is shared by all
cells of a type (normal and reduction cells sample separately). A sample whose noise or
probabilities are not finite is drawn again (AutoDL's "very rare cases of NaN", issue #99),
at most `MAX_SAMPLE_TRIES` times (a bounded `tf.while_loop`). τ falls linearly from τ_max
(10) to τ_min (0.1) over the run (`cell_common.linear_tau`, a pure function of the step).

The supernet runs only the sampled op of each edge, forward and backward (`tf.switch_case`),
and adds the other straight-through weights as scalars so all of α gets gradients.

Result: per-edge argmax of α (NB201), or GDAS's DARTS genotype (`cell_results`).
"""

from typing import Dict

import tensorflow as tf

from tunas_tf.models import cell_supernet
from tunas_tf.search import cell_common
from tunas_tf.search import cell_results
from tunas_tf.search.cell_searcher import CellSearcher
from tunas_tf.search.controller import step_seed
from tunas_tf.space.architecture import Architecture

MAX_SAMPLE_TRIES = 10
_WEIGHT_STREAM, _ARCH_STREAM = 0, 1


def _gumbel_softmax(logits: tf.Tensor, tau: tf.Tensor, seed: tf.Tensor):
  """(gumbels, probs) of one draw; u = 0 or 1 gives infinite noise (then resampled)."""
  u = tf.random.stateless_uniform(tf.shape(logits), seed, dtype=logits.dtype)
  gumbels = -tf.math.log(-tf.math.log(u))
  probs = tf.nn.softmax((tf.nn.log_softmax(logits, axis=-1) + gumbels) / tau, axis=-1)
  return gumbels, probs


def _valid_attempt(logits: tf.Tensor, tau: tf.Tensor, seed: tf.Tensor,
                   max_tries: int) -> tf.Tensor:
  """The first attempt in 0..max_tries-1 whose draw is finite (the last one if none is)."""
  logits = tf.stop_gradient(logits)

  def bad(attempt):
    gumbels, probs = _gumbel_softmax(logits, tau, _attempt_seed(seed, attempt))
    return tf.logical_not(tf.logical_and(tf.reduce_all(tf.math.is_finite(gumbels)),
                                         tf.reduce_all(tf.math.is_finite(probs))))

  return tf.while_loop(lambda a: tf.logical_and(a < max_tries - 1, bad(a)), lambda a: (a + 1,),
                       (tf.constant(0, tf.int32),), maximum_iterations=max_tries)[0]


def _attempt_seed(seed: tf.Tensor, attempt: tf.Tensor) -> tf.Tensor:
  return tf.random.experimental.stateless_fold_in(seed, tf.cast(attempt, tf.int64))


def gumbel_straight_through(logits: tf.Tensor, tau, seed: tf.Tensor,
                            max_tries: int = MAX_SAMPLE_TRIES):
  """GDAS's differentiable sample of one op per row of `logits` [edges, ops].

  Returns:
    (hardwts [edges, ops]: one-hot forward, softmax gradient; index int32 [edges]; probs).
  """
  tau = tf.cast(tau, logits.dtype)
  # The loop only finds a valid noise draw; the sample used is recomputed outside it, so the
  # gradient does not go through a while loop.
  attempt = _valid_attempt(logits, tau, seed, max_tries)
  _, probs = _gumbel_softmax(logits, tau, _attempt_seed(seed, attempt))
  index = tf.argmax(probs, axis=-1, output_type=tf.int32)
  one_hot = tf.one_hot(index, tf.shape(logits)[-1], dtype=logits.dtype)
  return one_hot - tf.stop_gradient(probs) + probs, index, probs


class GdasSearcher(CellSearcher):
  """GDAS on a nas_bench_201 / darts / darts_frc supernet (see the module docstring)."""

  algorithm = 'gdas'
  genotype_from_alpha = True
  progress_keys = ('loss', 'train_accuracy', 'valid_accuracy', 'tau')
  report_panels = (('loss', ('loss', 'valid_loss')),
                   ('accuracy', ('train_accuracy', 'valid_accuracy')),
                   ('Gumbel-softmax temperature', ('tau',)))

  def sampled_path(self, tau, seed: tf.Tensor) -> tuple:
    """PATH values of one GDAS sample per cell type."""
    values = []
    for i, layout in enumerate(self.supernet.layouts):
      logits = tf.stack([self.alpha.logits[d] for d in layout.decisions])
      hardwts, index, _ = gumbel_straight_through(
          logits, tau, tf.random.experimental.stateless_fold_in(seed, i))
      values.append((index, hardwts))
    return cell_supernet.PATH, values

  # Plain graph code (no data-dependent Python control flow): autograph would only add
  # seconds of tracing.
  @tf.autograph.experimental.do_not_convert
  def replica_step(self, train_batch, valid_batch, step) -> Dict[str, tf.Tensor]:
    c = self.config
    replica = tf.distribute.get_replica_context().replica_id_in_sync_group
    tau = cell_common.linear_tau(step, self.total_steps, c.tau_max, c.tau_min)
    sampled = lambda: self.weight_step(
        train_batch, lambda: self.sampled_path(tau, step_seed(c.seed, step, replica,
                                                              _WEIGHT_STREAM)))
    if c.arch_warmup_sampling == 'mixture' and self.arch_warmup_steps:
      weights = tf.cond(tf.cast(step, tf.int64) < self.arch_warmup_steps,
                        lambda: self.weight_step(train_batch, self.uniform_mixture), sampled)
    else:
      weights = sampled()
    arch = self.gated_arch_step(
        valid_batch, lambda: self.sampled_path(tau, step_seed(c.seed, step, replica,
                                                              _ARCH_STREAM)), step)
    return {**weights, **arch, 'tau': tau, **self.probability_metrics()}

  def final_architecture(self) -> Architecture:
    arch, self.arch_source = cell_results.architecture_from_alpha(
        self.space, self.alpha.numpy_probabilities())
    return arch

  def summary_extra(self, arch: Architecture):
    return {**super().summary_extra(arch), 'arch_source': getattr(self, 'arch_source', ''),
            'final_tau': self.config.tau_min}
