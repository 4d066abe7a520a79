"""PGNAS: Posterior-Guided NAS (Zhou et al., AAAI 2020) on the `pgnas_resnet` prior network.

Hybrid representation (§2.2, Eq. 13): φ = m · ε with one drop probability p per (block,
kernel-size group), shared by the per-input-channel masks of the group's branch
(`pgnas_supernet`). Training minimizes Eq. (15) end to end with SGD (weights m and p alike):

  loss = CE  +  (1/N) Σ_g k_g [p_g log p_g + (1 − p_g) log(1 − p_g)]
             +  Σ_g l² (1 − p_g) / (2N) ‖m_g‖²  +  l² / (2N) ‖other weights‖²

* CE is the batch mean of −log p(y | f_{m, ε}(x)), i.e. (1/N) Σ_i of Eq. (15);
* the entropy term is the negative Bernoulli entropy weighted by k_g, the group's input
  channels (Gal's concrete dropout, PGNAS code `KLreg`; the paper writes H(p) = Σ k p log p);
* the prior term replaces weight decay ("there is no weight decay ratio in our scheme"); its
  coefficient uses the keep probability 1 − p of the masked slices; weights without a mask
  (stem, second convolutions, shortcuts, head) are always kept (p = 0);
* N = `pgnas_dataset_multiplier` (10) × the training examples, as the paper's 5e5 for CIFAR.

p is the *drop* probability (initial 0.1) as in the reference code; masks use Eq. (16)'s
Gumbel-sigmoid relaxation at τ = 0.2: drop = σ((log p − log(1 − p) + log(−log u1) −
log(−log u2)) / τ), mask = 1 − drop (no 1/(1 − p) rescaling), drawn per example and channel.

Then (§2.3, Algorithm 1) C candidate masks ε ~ Bernoulli(1 − p) per kernel slice are drawn,
each is scored on a held-out batch, and the best is kept, without fine-tuning; its
architecture keeps the branches with at least one kept slice, and `pruned_model()` is its
stand-alone network with the supernet's weights.
"""

import math
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
from absl import logging

from tunas_tf.models import pgnas_supernet
from tunas_tf.search import cell_common
from tunas_tf.search.cell_config import CellSearchConfig
from tunas_tf.search.controller import step_seed
from tunas_tf.search.searcher import SearchContext, Searcher
from tunas_tf.space.architecture import Architecture
from tunas_tf.space.search_space import SearchSpace

_UNIFORM_EPSILON = 1e-6  # Keeps log(-log u) finite.
_CANDIDATE_SEED_OFFSET = 104729


def bernoulli_entropy_term(drop: tf.Tensor, channels: tf.Tensor, n: float) -> tf.Tensor:
  """(1/N) Σ_g k_g [p_g log p_g + (1 − p_g) log(1 − p_g)] (minus the weighted entropy / N)."""
  neg_entropy = drop * tf.math.log(drop) + (1.0 - drop) * tf.math.log(1.0 - drop)
  return tf.reduce_sum(channels * neg_entropy) / n


def prior_term(drop: tf.Tensor, masked_kernels: Sequence[tf.Tensor],
               other_weights: Sequence[tf.Tensor], length_scale_sq: float, n: float) -> tf.Tensor:
  """Σ_g l²(1 − p_g)/(2N) ‖m_g‖² + l²/(2N) Σ ‖w‖² over the unmasked weights."""
  masked = tf.stack([tf.reduce_sum(tf.square(k)) for k in masked_kernels])
  other = tf.add_n([tf.reduce_sum(tf.square(w)) for w in other_weights]) if other_weights else 0.0
  return length_scale_sq / (2.0 * n) * (tf.reduce_sum((1.0 - drop) * masked) + other)


def relaxed_keep_masks(drop: tf.Tensor, shapes: Sequence[Tuple[int, int]], tau: float,
                       seed: tf.Tensor) -> list:
  """Gumbel-sigmoid (Eq. 16) keep masks 1 − drop, one [batch, channels] tensor per group."""
  logit = tf.math.log(drop) - tf.math.log(1.0 - drop)
  masks = []
  for g, shape in enumerate(shapes):
    seeds = tf.random.experimental.stateless_split(
        tf.random.experimental.stateless_fold_in(seed, g), num=2)
    u1, u2 = (tf.random.stateless_uniform(shape, s, _UNIFORM_EPSILON, 1.0 - _UNIFORM_EPSILON)
              for s in tf.unstack(seeds))
    noise = tf.math.log(-tf.math.log(u1)) - tf.math.log(-tf.math.log(u2))
    masks.append(1.0 - tf.sigmoid((logit[g] + noise) / tau))
  return masks


class PgnasSearcher(Searcher):
  """PGNAS (see the module docstring).

  Args:
    config: the search configuration.
    space: a `pgnas_resnet` space.
    num_classes: classes of the dataset.
    num_train_examples: examples of the training split (N = multiplier × this).
    eval_data: returns the held-out (images, labels) batch that ranks the candidates.
  """

  algorithm = 'pgnas'
  progress_keys = ('loss', 'cross_entropy', 'train_accuracy', 'mean_keep')
  report_panels = (('loss', ('loss', 'cross_entropy')),
                   ('regularizers', ('entropy_term', 'prior_term')),
                   ('accuracy', ('train_accuracy',)))

  def __init__(self, config: CellSearchConfig, space: SearchSpace, num_classes: int,
               num_train_examples: int,
               eval_data: Optional[Callable[[], Tuple[np.ndarray, np.ndarray]]] = None):
    self.config = config
    self.space = space
    self.num_classes = num_classes
    self.n = float(config.pgnas_dataset_multiplier * num_train_examples)
    self.eval_data = eval_data
    self.candidates = None
    self.best_masks = None

  def build(self, context: SearchContext) -> None:
    c = self.config
    self.num_replicas = context.num_replicas
    self.supernet = pgnas_supernet.PgnasSupernet(self.space, self.num_classes)
    self.supernet.build_weights(c.image_size)
    self.channels = tf.constant([k for _, _, k in self.supernet.groups], tf.float32)
    initial = math.log(c.pgnas_initial_drop) - math.log(1.0 - c.pgnas_initial_drop)
    self.drop_logits = tf.Variable(tf.fill([len(self.supernet.groups)], initial),
                                   name='pgnas_drop_logits')
    self.weights = list(self.supernet.trainable_variables)
    masked = {id(k) for k in self.supernet.masked_kernels()}
    self.other_weights = [w for w in self.weights if id(w) not in masked]
    self.optimizer = cell_common.weight_optimizer(c, context.total_steps)
    self.optimizer.build(self.weights + [self.drop_logits])

  def trackables(self) -> Dict[str, Any]:
    return {'supernet': self.supernet, 'drop_logits': self.drop_logits,
            'optimizer': self.optimizer}

  def drop_probabilities(self) -> tf.Tensor:
    return tf.sigmoid(self.drop_logits)

  # Plain graph code (no data-dependent Python control flow): autograph would only add
  # seconds of tracing.
  @tf.autograph.experimental.do_not_convert
  def replica_step(self, train_batch, valid_batch, step) -> Dict[str, tf.Tensor]:
    del valid_batch  # PGNAS trains on the training data only; held-out data ranks candidates.
    c = self.config
    images, labels = train_batch
    replica = tf.distribute.get_replica_context().replica_id_in_sync_group
    shapes = [(images.shape[0], k) for _, _, k in self.supernet.groups]
    rate = tf.identity(self.optimizer.learning_rate)
    variables = self.weights + [self.drop_logits]
    with tf.GradientTape() as tape:
      drop = self.drop_probabilities()
      masks = relaxed_keep_masks(drop, shapes, c.pgnas_tau, step_seed(c.seed, step, replica))
      logits = self.supernet(images, masks=masks)
      ce = cell_common.cross_entropy(logits, labels)
      entropy = bernoulli_entropy_term(drop, self.channels, self.n)
      prior = prior_term(drop, self.supernet.masked_kernels(), self.other_weights,
                         c.pgnas_length_scale_sq, self.n)
      loss = ce + entropy + prior
    norm = cell_common.apply_gradients(self.optimizer, tape.gradient(loss, variables), variables,
                                       self.num_replicas, c.grad_clip)
    keep = 1.0 - drop
    metrics = {'loss': loss, 'cross_entropy': ce, 'entropy_term': entropy, 'prior_term': prior,
               'train_accuracy': cell_common.accuracy(logits, labels), 'grad_norm': norm,
               'learning_rate': rate, 'mean_keep': tf.reduce_mean(keep)}
    for d, p in zip(self.space.decisions, tf.unstack(keep)):
      metrics[cell_common.probability_key(d.path, d.oneof.labels[1])] = p
    return metrics

  # Candidates ------------------------------------------------------------------------------------

  def sample_masks(self, num: int, rng: np.random.Generator) -> list:
    """`num` candidates: per group, a 0/1 keep mask ~ Bernoulli(1 − p) per input channel."""
    keep = 1.0 - self.drop_probabilities().numpy()
    return [[(rng.random(k) < keep[g]).astype(np.float32)
             for g, (_, _, k) in enumerate(self.supernet.groups)] for _ in range(num)]

  def evaluate(self, masks: Sequence[np.ndarray], images, labels) -> Tuple[float, float]:
    """(accuracy, loss) of one candidate (binary keep masks) on a batch."""
    if getattr(self, '_eval_fn', None) is None:
      @tf.function(autograph=False)
      def evaluate(masks, images, labels):
        gates = [tf.cast(tf.reduce_any(m > 0), tf.float32) for m in masks]
        logits = self.supernet(images, masks=list(masks), gates=gates)
        return cell_common.accuracy(logits, labels), cell_common.cross_entropy(logits, labels)
      self._eval_fn = evaluate
    acc, loss = self._eval_fn([tf.constant(m) for m in masks], images, labels)
    return float(acc), float(loss)

  def final_architecture(self) -> Architecture:
    rng = np.random.default_rng(self.config.seed + _CANDIDATE_SEED_OFFSET)
    drawn = self.sample_masks(self.config.resolved_num_candidates, rng)
    images, labels = self.eval_data()
    images, labels = tf.constant(images), tf.constant(labels)
    scored = []
    for n, masks in enumerate(drawn):
      scored.append((n, *self.evaluate(masks, images, labels)))
      if (n + 1) % 100 == 0:
        logging.info('Ranked %d/%d PGNAS candidates (best accuracy %.4f)', n + 1, len(drawn),
                     max(s[1] for s in scored))
    best = max(scored, key=lambda s: (s[1], -s[2]))
    self.best_masks = drawn[best[0]]
    self.candidates = [(pgnas_supernet.candidate_architecture(self.space, drawn[i]).indices,
                        acc, loss) for i, acc, loss in scored]
    arch = pgnas_supernet.candidate_architecture(self.space, self.best_masks)
    logging.info('Best of %d PGNAS candidates: %s (accuracy %.4f), %.1f%% of the kernel '
                 'slices kept', len(drawn), self.space.to_string(arch), best[1],
                 100 * self.kept_fraction())
    return arch

  def kept_fraction(self) -> float:
    kept = sum(float(np.sum(m)) for m in self.best_masks)
    return kept / sum(k for _, _, k in self.supernet.groups)

  def pruned_model(self, calibration_images: Optional[np.ndarray] = None):
    """The stand-alone model of the best candidate (after `final_architecture`)."""
    if self.best_masks is None:
      raise ValueError('pruned_model() needs final_architecture() first')
    if calibration_images is None:
      calibration_images = self.eval_data()[0]
    return pgnas_supernet.export_pruned(self.supernet, self.best_masks, calibration_images,
                                        self.num_classes, self.config.image_size)

  def summary_extra(self, arch: Architecture) -> Dict[str, Any]:
    from tunas_tf.search import cell_results  # pylint: disable=g-import-not-at-top
    keep = 1.0 - self.drop_probabilities().numpy()
    kept = {}
    for (b, k, _), masks_kept in zip(self.supernet.groups, self.best_masks or []):
      kept.setdefault(f'block_{b}', {})[f'k{k}'] = int(np.sum(masks_kept))
    out = {'algorithm': self.algorithm,
           'genotype': {'kept_input_channels': kept},
           'keep_probabilities': {d.path: round(float(p), 6)
                                  for d, p in zip(self.space.decisions, keep)},
           'kept_slice_fraction': self.kept_fraction() if self.best_masks else None,
           'dataset_size_n': self.n}
    if self.candidates is not None:
      out.update(cell_results.candidate_summary(self.candidates, self.config.eval_batch_size))
    return out
