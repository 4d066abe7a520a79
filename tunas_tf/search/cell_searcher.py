"""`CellSearcher`: the part of GDAS, DARTS, SETN and random search that drives a `CellSupernet`.

A subclass implements `replica_step` from two building blocks,

* `weight_step(batch, forward)`: CE on a training batch, SGD on the supernet weights (global
  clip, coupled weight decay, cosine rate); and
* `arch_step(batch, forward)`: CE on a validation batch, Adam on the architecture logits
  (coupled weight decay),

where `forward()` returns the supernet's (mode, values) and is evaluated inside the gradient
tape (so values built from α carry α's gradient). `final_architecture` comes from the
architecture logits or from scoring candidates (`score_candidates`) on a held-out batch that
`eval_data()` supplies.
"""

import functools
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
from absl import logging

from tunas_tf.models import cell_supernet
from tunas_tf.search import cell_common
from tunas_tf.search import cell_results
from tunas_tf.search.cell_config import CellSearchConfig
from tunas_tf.search.searcher import SearchContext, Searcher
from tunas_tf.space.architecture import Architecture
from tunas_tf.space.search_space import SearchSpace

PROXY_IMAGES = 64  # Held-out images the candidate filter's naswot / jacob_cov compare.
EvalData = Callable[[], Tuple[np.ndarray, np.ndarray]]


class CellSearcher(Searcher):
  """Base class of the supernet cell searchers (see the module docstring).

  Args:
    config: the search configuration.
    space: the searched space (with the config's macro).
    num_classes: classes of the dataset.
    eval_data: returns the held-out (images, labels) batch that scores candidates.
  """

  algorithm = ''
  uses_arch_parameters = True
  progress_keys = ('loss', 'train_accuracy', 'valid_accuracy')
  report_panels = (('loss', ('loss', 'valid_loss')),
                   ('accuracy', ('train_accuracy', 'valid_accuracy')))

  def __init__(self, config: CellSearchConfig, space: SearchSpace, num_classes: int,
               eval_data: Optional[EvalData] = None):
    self.config = config
    self.space = space
    self.num_classes = num_classes
    self.eval_data = eval_data
    self.candidates = None  # [(indices, accuracy, loss)] once scored.
    self._eval_fn = None

  def build(self, context: SearchContext) -> None:
    self.num_replicas = context.num_replicas
    self.total_steps = context.total_steps
    self.supernet = cell_supernet.CellSupernet(self.space, self.num_classes)
    self.supernet.build_weights(self.config.image_size)
    self.weights = list(self.supernet.trainable_variables)
    self.weight_optimizer = cell_common.weight_optimizer(self.config, context.total_steps)
    self.weight_optimizer.build(self.weights)
    if self.uses_arch_parameters:
      self.alpha = cell_common.ArchParameters(self.space, self.config.seed)
      self.arch_optimizer = cell_common.arch_optimizer(self.config, context.total_steps)
      self.arch_optimizer.build(self.alpha.logits)
    logging.info('%s supernet of %s: %d weights in %d variables', self.algorithm,
                 self.space.name, cell_supernet.num_weights(self.supernet), len(self.weights))

  def trackables(self) -> Dict[str, Any]:
    out = {'supernet': self.supernet, 'weight_optimizer': self.weight_optimizer}
    if self.uses_arch_parameters:
      out.update(alpha=self.alpha, arch_optimizer=self.arch_optimizer)
    return out

  # Steps -----------------------------------------------------------------------------------------

  def weight_step(self, batch, forward: Callable[[], tuple]) -> Dict[str, tf.Tensor]:
    return self.accumulated_weight_step(batch, [forward])

  def accumulated_weight_step(self, batch, forwards: Sequence[Callable[[], tuple]]
                              ) -> Dict[str, tf.Tensor]:
    """One SGD step on the sum of the gradients of every forward (FairNAS accumulates its
    paths' gradients so); the loss and accuracy reported are their means."""
    images, labels = batch
    c = self.config
    rate = tf.identity(self.weight_optimizer.learning_rate)  # The rate this step uses.
    total, losses, accuracies = None, [], []
    for forward in forwards:
      with tf.GradientTape() as tape:
        mode, values = forward()
        logits = self.supernet(images, mode=mode, values=values)
        loss = cell_common.cross_entropy(logits, labels)
      grads = [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
               for g, v in zip(tape.gradient(loss, self.weights), self.weights)]
      total = grads if total is None else [a + b for a, b in zip(total, grads)]
      losses.append(loss)
      accuracies.append(cell_common.accuracy(logits, labels))
    norm = cell_common.apply_gradients(self.weight_optimizer, total, self.weights,
                                       self.num_replicas, c.grad_clip, c.weight_decay)
    return {'loss': tf.add_n(losses) / len(losses),
            'train_accuracy': tf.add_n(accuracies) / len(accuracies),
            'grad_norm': norm, 'learning_rate': rate}

  def arch_step(self, batch, forward: Callable[[], tuple]) -> Dict[str, tf.Tensor]:
    images, labels = batch
    with tf.GradientTape() as tape:
      mode, values = forward()
      logits = self.supernet(images, mode=mode, values=values)
      loss = cell_common.cross_entropy(logits, labels)
    variables = self.alpha.logits
    cell_common.apply_gradients(self.arch_optimizer, tape.gradient(loss, variables), variables,
                                self.num_replicas, 0.0, self.config.arch_weight_decay)
    return {'valid_loss': loss, 'valid_accuracy': cell_common.accuracy(logits, labels)}

  @property
  def arch_warmup_steps(self) -> int:
    """Steps, from the start, in which α stays put (arch_warmup_fraction of the run)."""
    return int(self.config.arch_warmup_fraction * self.total_steps)

  def gated_arch_step(self, batch, forward: Callable[[], tuple], step
                      ) -> Dict[str, tf.Tensor]:
    """`arch_step`, except in the first arch_warmup_fraction of the steps, where α stays put
    (and valid_loss / valid_accuracy read 0)."""
    warmup = self.arch_warmup_steps
    if not warmup:
      return self.arch_step(batch, forward)
    def skip():
      return {'valid_loss': tf.constant(0.0), 'valid_accuracy': tf.constant(0.0)}
    return tf.cond(tf.cast(step, tf.int64) >= warmup, lambda: self.arch_step(batch, forward),
                   skip)

  def probability_metrics(self) -> Dict[str, tf.Tensor]:
    return cell_common.probability_metrics(self.space, self.alpha.probabilities())

  def mixture(self, stop_gradient: bool) -> tuple:
    probs = self.alpha.probabilities()
    if stop_gradient:
      probs = [tf.stop_gradient(p) for p in probs]
    return cell_supernet.MIXTURE, self.supernet.mixture_values(probs)

  def uniform_path(self, seed: tf.Tensor) -> tuple:
    """A uniformly sampled single path: every decision independently uniform (SETN Eq. 1-3;
    AutoDL `dync_genotype(use_random=True)`)."""
    indices = tf.stack([
        tf.random.stateless_uniform([], tf.random.experimental.stateless_fold_in(seed, i),
                                    0, d.num_choices, dtype=tf.int32)
        for i, d in enumerate(self.space.decisions)])
    return self._path_forward(indices)

  def fair_paths(self, seed: tf.Tensor) -> list:
    """FairNAS's strict fairness: M = max choices single paths in which every decision runs
    each of its choices once (a fresh random permutation per decision; a decision with fewer
    choices starts its permutation again), so every op of an edge is trained equally often."""
    width = max(d.num_choices for d in self.space.decisions)
    permutations = [
        tf.argsort(tf.random.stateless_uniform(
            [d.num_choices], tf.random.experimental.stateless_fold_in(seed, i)))
        for i, d in enumerate(self.space.decisions)]
    return [tf.stack([tf.cast(p[m % d.num_choices], tf.int32)
                      for p, d in zip(permutations, self.space.decisions)])
            for m in range(width)]

  def template_weight_step(self, batch, seed: tf.Tensor) -> Dict[str, tf.Tensor]:
    """The one-shot template's weight step (random search, SETN): one uniform path
    (template_sampling 'uniform', the reference), the gradient sum of the strictly fair
    paths of `fair_paths` ('fair'), or the uniform mixture of every op ('mixture')."""
    if self.config.template_sampling == 'mixture':
      return self.weight_step(batch, self.uniform_mixture)
    if self.config.template_sampling == 'fair':
      forwards = [functools.partial(self._path_forward, indices)
                  for indices in self.fair_paths(seed)]
      return self.accumulated_weight_step(batch, forwards)
    return self.weight_step(batch, lambda: self.uniform_path(seed))

  def uniform_mixture(self) -> tuple:
    """MIXTURE values that weight every choice of every decision by 1/n."""
    return cell_supernet.MIXTURE, self.supernet.mixture_values(
        [tf.fill([d.num_choices], 1.0 / d.num_choices) for d in self.space.decisions])

  def _path_forward(self, indices: tf.Tensor) -> tuple:
    """PATH values of the fixed architecture `indices` (int32 [num_decisions])."""
    return cell_supernet.PATH, self.supernet.path_values(indices)

  # Results ---------------------------------------------------------------------------------------

  def evaluate(self, indices: np.ndarray, images, labels) -> Tuple[float, float]:
    """(accuracy, loss) of the fixed architecture `indices` on a batch (template weights)."""
    if self._eval_fn is None:
      @tf.function(autograph=False)
      def evaluate(indices, images, labels):
        values = self.supernet.path_values(indices)
        logits = self.supernet(images, mode=cell_supernet.PATH, values=values)
        return cell_common.accuracy(logits, labels), cell_common.cross_entropy(logits, labels)
      self._eval_fn = evaluate
    acc, loss = self._eval_fn(tf.constant(indices, tf.int32), images, labels)
    return float(acc), float(loss)

  def prefilter(self, candidates: np.ndarray) -> np.ndarray:
    """The candidates the training-free `candidate_filter` ranks in its top
    `candidate_filter_keep` share (all of them without a filter), in their drawn order. The
    proxy sees the held-out batch's images, never its labels."""
    c = self.config
    if not c.candidate_filter:
      return candidates
    from tunas_tf.search import proxies  # pylint: disable=g-import-not-at-top
    images, _ = self.eval_data()
    scorer = proxies.ProxyScorer(self.space, self.num_classes, c.image_size,
                                 images[:PROXY_IMAGES], c.seed)
    scores = []
    for n, indices in enumerate(candidates):
      arch = Architecture(self.space.name, tuple(int(i) for i in indices))
      scores.append(scorer.scores(arch, [c.candidate_filter])[c.candidate_filter])
      if (n + 1) % 50 == 0:
        logging.info('Filter %s: %d/%d candidates', c.candidate_filter, n + 1, len(candidates))
    keep = max(1, int(np.ceil(c.candidate_filter_keep * len(candidates))))
    kept = np.sort(np.argsort(-np.asarray(scores), kind='stable')[:keep])
    logging.info('Filter %s kept %d of %d candidates', c.candidate_filter, keep, len(candidates))
    self.filter_scores = scores
    return np.asarray(candidates)[kept]

  def score_candidates(self, candidates: np.ndarray) -> Architecture:
    """Scores each candidate on the held-out batch; returns the most accurate (then lowest
    loss), or with candidate_score 'loss' the lowest loss. Keeps every score in
    `self.candidates`."""
    images, labels = self.eval_data()
    images, labels = tf.constant(images), tf.constant(labels)
    scored = []
    for n, indices in enumerate(candidates):
      acc, loss = self.evaluate(indices, images, labels)
      scored.append((tuple(int(i) for i in indices), acc, loss))
      if (n + 1) % 100 == 0:
        logging.info('Scored %d/%d candidates (best accuracy so far %.4f)', n + 1,
                     len(candidates), max(s[1] for s in scored))
    self.candidates = scored
    if self.config.candidate_score == 'loss':
      best = min(scored, key=lambda s: s[2])
    else:
      best = max(scored, key=lambda s: (s[1], -s[2]))
    logging.info('Best of %d candidates: %s (accuracy %.4f, loss %.4f on %d held-out images)',
                 len(scored), self.space.to_string(Architecture(self.space.name, best[0])),
                 best[1], best[2], int(labels.shape[0]))
    return self.space.canonical(Architecture(self.space.name, best[0]))

  def summary_extra(self, arch: Architecture) -> Dict[str, Any]:
    c = self.config
    probs = self.alpha.numpy_probabilities() if self.uses_arch_parameters else None
    out = {'algorithm': self.algorithm,
           **cell_results.describe(self.space, arch, probs,
                                   alpha_genotype=self.genotype_from_alpha)}
    if probs is not None:
      out['arch_probabilities'] = {d.path: [round(float(v), 6) for v in p]
                                   for d, p in zip(self.space.decisions, probs)}
    if self.candidates is not None:
      out.update(cell_results.candidate_summary(self.candidates, c.eval_batch_size))
    if getattr(self, 'filter_scores', None) is not None:
      out['candidate_filter'] = {'proxy': c.candidate_filter, 'drawn': len(self.filter_scores),
                                 'kept': len(self.candidates)}
    return out

  genotype_from_alpha = False  # GDAS / DARTS: a DARTS-space genotype comes from α.
