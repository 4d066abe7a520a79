"""What the cell searchers (GDAS, DARTS, SETN, random, PGNAS) share.

* `ArchParameters`: one trainable logits vector per decision, named after its path
  ('alpha/cell/nodes/1/2<-0'), initialized to 1e-3 · N(0, 1) as AutoDL's `arch_parameters`.
  Cells of one type share them because their decisions do (`cell_layouts`).
* Optimizers with PyTorch semantics: SGD + Nesterov with *coupled* weight decay added after
  the global-norm clip (AutoDL: `clip_grad_norm_`, then `optimizer.step()` adds wd · w), and
  Adam (eps 1e-8) with coupled weight decay for the architecture parameters. Gradients are
  averaged over replicas *before* clipping, so the clip sees the global gradient.
* Metrics: cross-entropy, accuracy, and the per-decision probabilities 'prob/PATH/LABEL' that
  feed TensorBoard, metrics.jsonl and the report's probability curves.
"""

from typing import Dict, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from tunas_tf.search import schedules
from tunas_tf.search.cell_config import CellSearchConfig
from tunas_tf.space.search_space import SearchSpace

ARCH_PREFIX = 'alpha'
PROB_PREFIX = 'prob'
ARCH_INIT_STDDEV = 1e-3
ADAM_EPSILON = 1e-8  # PyTorch's default (Keras uses 1e-7).


class ArchParameters(tf.Module):
  """Architecture logits α, one [num_choices] variable per decision of `space`.

  Create it under the strategy's scope so the variables are mirrored.

  Args:
    space: the searched space.
    seed: seed of the 1e-3 · N(0, 1) initialization.
    initial: optional per-decision initial values (overrides the random init).
  """

  def __init__(self, space: SearchSpace, seed: int = 0,
               initial: Optional[Sequence[np.ndarray]] = None, name: str = 'arch_parameters'):
    super().__init__(name=name)
    rng = np.random.default_rng(seed)
    self.space = space
    values = initial or [ARCH_INIT_STDDEV * rng.standard_normal(d.num_choices)
                         for d in space.decisions]
    self.logits = [tf.Variable(np.asarray(v, np.float32), name=f'{ARCH_PREFIX}/{d.path}')
                   for d, v in zip(space.decisions, values)]

  def probabilities(self) -> list:
    return [tf.nn.softmax(v) for v in self.logits]

  def log_probabilities(self) -> list:
    return [tf.nn.log_softmax(v) for v in self.logits]

  def numpy_probabilities(self) -> list:
    return [p.numpy().astype(np.float64) for p in self.probabilities()]

  def argmax(self) -> tuple:
    return tuple(int(np.argmax(v.numpy())) for v in self.logits)


class CosineToFloor(keras.optimizers.schedules.LearningRateSchedule):
  """Cosine decay from `peak` to `floor` over `total_steps`, per step (AutoDL's scheduler)."""

  def __init__(self, peak: float, floor: float, total_steps: int):
    self.peak, self.floor, self.total_steps = peak, floor, total_steps

  def __call__(self, step):
    return schedules.cosine_decay_with_linear_warmup(step, self.total_steps, 0, self.peak,
                                                     self.floor)

  def get_config(self):
    return {'peak': self.peak, 'floor': self.floor, 'total_steps': self.total_steps}


def weight_optimizer(config: CellSearchConfig, total_steps: int) -> keras.optimizers.SGD:
  rate = CosineToFloor(config.learning_rate, config.min_learning_rate, total_steps)
  return keras.optimizers.SGD(rate, momentum=config.momentum, nesterov=config.nesterov)


def arch_learning_rate(config: CellSearchConfig, total_steps: int) -> float:
  """The Adam rate of α: as given, or scaled to the run's length (`arch_lr_reference_steps`)."""
  if not config.arch_lr_reference_steps:
    return config.arch_learning_rate
  return config.arch_learning_rate * config.arch_lr_reference_steps / max(total_steps, 1)


def arch_optimizer(config: CellSearchConfig, total_steps: int) -> keras.optimizers.Adam:
  return keras.optimizers.Adam(arch_learning_rate(config, total_steps), beta_1=config.arch_beta1,
                               beta_2=config.arch_beta2, epsilon=ADAM_EPSILON)


def apply_gradients(optimizer: keras.optimizers.Optimizer, grads: Sequence, variables: Sequence,
                    num_replicas: int, clip_norm: float = 0.0,
                    weight_decay: float = 0.0) -> tf.Tensor:
  """Averages over replicas, clips by global norm, adds coupled weight decay, applies.

  Variables without a gradient (an op no path used) get a zero gradient, so weight decay and
  momentum still move them, as PyTorch's zeroed (not None) gradients do.

  Returns:
    The global norm of the averaged gradient before clipping.
  """
  grads = [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
           for g, v in zip(grads, variables)]
  if num_replicas > 1:
    grads = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.MEAN, grads)
  norm = tf.linalg.global_norm(grads)
  if clip_norm:
    grads, _ = tf.clip_by_global_norm(grads, clip_norm, use_norm=norm)
  if weight_decay:
    grads = [g + weight_decay * tf.convert_to_tensor(v) for g, v in zip(grads, variables)]
  # Keras optimizers sum the gradients of the replicas: hand each the 1/R share of the mean.
  optimizer.apply_gradients(zip([g / num_replicas for g in grads], variables))
  return norm


def cross_entropy(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
  return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=tf.cast(labels, tf.int32), logits=logits))


def accuracy(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
  predictions = tf.argmax(logits, axis=-1, output_type=tf.int32)
  return tf.reduce_mean(tf.cast(tf.equal(predictions, tf.cast(labels, tf.int32)), tf.float32))


def probability_key(path: str, label: str) -> str:
  return f'{PROB_PREFIX}/{path}/{label or "off"}'


def probability_metrics(space: SearchSpace, probs: Sequence[tf.Tensor]) -> Dict[str, tf.Tensor]:
  """{'prob/PATH/LABEL': p} for every choice of every decision."""
  out = {}
  for d, p in zip(space.decisions, probs):
    for j, label in enumerate(d.oneof.labels):
      out[probability_key(d.path, label)] = p[j]
  return out


def linear_tau(step, total_steps: int, tau_max: float, tau_min: float) -> tf.Tensor:
  """GDAS's temperature: τ_max at step 0, τ_min at the last step, linear in between.

  AutoDL changes τ per epoch (τ_max − (τ_max − τ_min) · epoch / (epochs − 1)); per step is
  the same line, sampled finer.
  """
  progress = tf.cast(step, tf.float32) / float(max(total_steps - 1, 1))
  # Written from the end so that the last step gives tau_min exactly.
  return tau_min + (tau_max - tau_min) * (1.0 - tf.minimum(progress, 1.0))
