"""The TuNAS searcher (Bender et al. 2020, arXiv 2008.06120; anchors/tunas.md Sec. 3, 4, 7).

One step, on every replica (TuNAS `mobile_architecture_search.model_fn`):

1. the replica samples its own architecture from the controller (seed = (run seed, step,
   replica)); during op / filter warmup some of its masks are replaced (`warmup.py`);
2. the shared weights take one RMSProp step (decay 0.9, momentum 0.9, epsilon 1; cosine
   decay with 2.5% linear warmup; label smoothing 0.1; weight decay) on the replica's share of
   the training batch, with the (warmup) masks;
3. the same architecture, with its one-hot masks, is scored on a validation batch 4x as
   large (batch norm uses batch statistics, as always during search): Q = top-1 accuracy,
   T = the cost model's latency, reward = abs / mnas / mnas_hard(Q, T, T0, beta);
4. the baseline folds in the cross-replica mean reward, and the controller takes one Adam step
   (beta1 0, beta2 0.999, eps 1e-8) on -stop_gradient(reward - baseline) * log p(arch), at the
   RL learning rate (0 during the first 25% of the steps, then x10 by the end).

Deviations from the reference code (kept small on purpose):
* the reward uses the sampled one-hot architecture even during warmup (TuNAS scores the
  warmup masks); the RL rate is 0 then, so only the logged reward differs;
* the controller's Adam averages the replicas' gradients before squaring them (Keras Adam);
  TuNAS's TPU Adam averages the squared gradients;
* the optional entropy bonus goes through Adam rather than a separate SGD step.
"""

import os
from typing import Any, Dict, Optional

import keras
import tensorflow as tf
from absl import logging

from tunas_tf import data as data_lib
from tunas_tf import fileio
from tunas_tf import space as space_lib
from tunas_tf.errors import UserError
from tunas_tf.search import costs
from tunas_tf.search import loop
from tunas_tf.search import rewards
from tunas_tf.search import schedules
from tunas_tf.search import strategy as strategy_lib
from tunas_tf.search import warmup
from tunas_tf.search.config import SearchConfig
from tunas_tf.search.controller import Controller, step_seed
from tunas_tf.search.searcher import SearchContext, Searcher
from tunas_tf.space.architecture import Architecture
from tunas_tf.space.search_space import SearchSpace

CONFIG_FILE = loop.CONFIG_FILE
# Config fields that may change when a run is resumed (they do not change the search).
RESUMABLE_CHANGES = ('strategy', 'tpu', 'log_every', 'summary_every', 'checkpoint_every',
                     'steps_per_loop')
_SAMPLE_STREAM, _WARMUP_STREAM = 0, 1


class TunasSearcher(Searcher):
  """TuNAS: a weight-sharing supernet and a REINFORCE controller (see the module docstring).

  Args:
    config: the search configuration.
    cost_model: the latency model T(alpha) (checked against the space and image size).
    num_classes: classes of the dataset.
    space: the space to search; defaults to the registered `config.search_space`.
  """

  progress_keys = ('reward', 'accuracy', 'latency_ms', 'entropy', 'loss')
  report_panels = (('policy entropy (nats)', ('entropy',)),
                   ('sampled latency vs target (ms)', ('latency_ms', 'target_latency_ms')),
                   ('reward', ('reward', 'baseline')))

  def __init__(self, config: SearchConfig, cost_model: Any, num_classes: int,
               space: Optional[SearchSpace] = None):
    self.config = config
    self.space = space or space_lib.get_space(config.search_space)
    self.cost_model = cost_model
    self.num_classes = num_classes
    self.reward_fn = rewards.get_reward(config.reward)
    self._on_tpu = False

  def build(self, context: SearchContext) -> None:
    # Imported here so the rest of the search package loads without the Keras supernet.
    from tunas_tf.models.supernet import MobileSupernet  # pylint: disable=g-import-not-at-top
    c = self.config
    self._on_tpu = strategy_lib.is_tpu(context.strategy)
    self.num_replicas = context.num_replicas
    self.supernet = MobileSupernet(self.space, self.num_classes, c.image_size,
                                   dropout_rate=c.dropout_rate, weight_decay=c.weight_decay,
                                   rematerialize=c.rematerialize)
    images = tf.zeros([2, c.image_size, c.image_size, 3], tf.float32)
    self.supernet((images, _one_hot_masks(self.space)), training=True)  # Creates the weights.
    self.controller = Controller(self.space, c.temperature)
    self.baseline = rewards.MovingAverageBaseline(c.baseline_momentum)
    self.model_optimizer = keras.optimizers.RMSprop(
        schedules.CosineWithWarmup(c.scaled_model_learning_rate, c.steps, c.model_warmup_steps),
        rho=0.9, momentum=0.9, epsilon=1.0)
    self.rl_optimizer = keras.optimizers.Adam(
        schedules.ExponentialRL(c.scaled_rl_learning_rate, c.steps, c.rl_delay_steps),
        beta_1=0.0, beta_2=0.999, epsilon=1e-8)
    self.model_optimizer.build(self.supernet.trainable_variables)
    self.rl_optimizer.build(self.controller.logits)
    self.loss_fn = keras.losses.CategoricalCrossentropy(from_logits=True,
                                                        label_smoothing=c.label_smoothing)

  def trackables(self) -> Dict[str, Any]:
    return {'supernet': self.supernet, 'controller': self.controller,
            'baseline': self.baseline, 'model_optimizer': self.model_optimizer,
            'rl_optimizer': self.rl_optimizer}

  def replica_step(self, train_batch, valid_batch, step) -> Dict[str, tf.Tensor]:
    c = self.config
    replica = tf.distribute.get_replica_context()
    replica_id = replica.replica_id_in_sync_group
    sample = self.controller.sample(step_seed(c.seed, step, replica_id, _SAMPLE_STREAM))
    op_prob = warmup.warmup_probability(step, c.op_warmup_steps)
    filter_prob = warmup.warmup_probability(step, c.filter_warmup_steps)
    train_masks = warmup.apply_warmup(sample.masks, self.space, op_prob, filter_prob,
                                      step_seed(c.seed, step, replica_id, _WARMUP_STREAM))
    # The rates this step uses (the optimizers' step counters advance when they apply).
    rates = {'model_learning_rate': tf.identity(self.model_optimizer.learning_rate),
             'rl_learning_rate': tf.identity(self.rl_optimizer.learning_rate)}
    model = self._model_step(train_batch, train_masks)
    rl = self._controller_step(valid_batch, sample, replica)
    return {**model, **rl, **rates, 'op_warmup_prob': op_prob, 'filter_warmup_prob': filter_prob}

  def _model_step(self, batch, masks) -> Dict[str, tf.Tensor]:
    """One shared-weight update of the replica's architecture; returns its metrics."""
    images, labels = batch
    with tf.GradientTape() as tape:
      logits = self.supernet((images, masks), training=True)
      cross_entropy = self.loss_fn(tf.one_hot(labels, self.num_classes), logits)
      # The supernet's weight decay of the kernels these masks use (TuNAS _mask_regularizer).
      losses = self.supernet.losses
      regularization = tf.add_n(losses) if losses else tf.zeros(())
      loss = cross_entropy + regularization
      # Keras optimizers sum gradients over replicas: scale so the sum is the mean.
      scaled = loss / self.num_replicas
    variables = self.supernet.trainable_variables
    self.model_optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
    return {'loss': loss, 'cross_entropy': cross_entropy, 'regularization': regularization,
            'train_accuracy': _accuracy(logits, labels)}

  def _controller_step(self, batch, sample, replica) -> Dict[str, tf.Tensor]:
    """Scores the sampled architecture and takes one REINFORCE step."""
    c = self.config
    images, labels = batch
    # Runs after the shared-weight update: automatic control dependencies order the reads
    # of the supernet's variables after the optimizer's writes.
    logits = self.supernet((images, sample.masks), training=False)
    accuracy = _accuracy(logits, labels)
    latency = costs.tf_predict(self.cost_model, sample.indices, self._on_tpu)
    reward = self.reward_fn(accuracy, latency, c.target_latency_ms, c.cost_exponent)
    mean_reward = replica.all_reduce(tf.distribute.ReduceOp.MEAN, reward)
    baseline = self.baseline.update(mean_reward)  # Includes this step, as TuNAS does.
    advantage = reward - baseline
    with tf.GradientTape() as tape:
      log_prob = self.controller.log_prob(sample.indices)
      entropy_bonus = c.entropy_regularization * self.controller.sample_entropy(sample.indices)
      rl_loss = rewards.reinforce_loss(advantage, log_prob) - entropy_bonus
      scaled = rl_loss / self.num_replicas
    variables = self.controller.logits
    self.rl_optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
    return {'accuracy': accuracy, 'latency_ms': latency,
            'distinct_architectures': self._distinct(replica, sample.indices),
            'target_latency_ms': tf.constant(c.target_latency_ms, tf.float32),
            'cost_ratio': latency / c.target_latency_ms, 'reward': reward,
            'baseline': baseline, 'advantage': advantage, 'rl_loss': rl_loss,
            'log_prob': log_prob, 'sample_entropy': self.controller.sample_entropy(sample.indices),
            'entropy': self.controller.entropy()}

  def _distinct(self, replica, indices: tf.Tensor) -> tf.Tensor:
    """How many different architectures the replicas sampled this step (TuNAS: one each)."""
    if self._on_tpu:  # No dynamic shapes on TPUs; the count is a diagnostic only (-1).
      return tf.constant(-1.0)
    everyone = replica.all_gather(indices[tf.newaxis], axis=0)
    unique = tf.raw_ops.UniqueV2(x=everyone, axis=tf.constant([0], tf.int64)).y
    return tf.cast(tf.shape(unique)[0], tf.float32)

  def host_summaries(self) -> Dict[str, float]:
    out = {}
    for path, probs in self.controller.probabilities_by_path().items():
      if len(probs) > 1:
        out.update({f'policy/{path}/{j}': float(p) for j, p in enumerate(probs)})
    return out

  def final_architecture(self) -> Architecture:
    return self.controller.most_likely()

  def summary_extra(self, arch: Architecture) -> Dict[str, Any]:
    c = self.config
    log_prob = self.controller.log_prob(tf.constant(arch.indices, tf.int32))
    return {'predicted_latency_ms': float(self.cost_model.predict_ms(arch.indices)),
            'target_latency_ms': c.target_latency_ms, 'cost_model': c.cost_model,
            'latency_range_ms': list(self.cost_model.latency_range_ms()),
            'final_entropy': float(self.controller.entropy()),
            'final_flat_entropy': float(self.controller.flat_entropy()),
            'final_arch_log_prob': float(log_prob), 'reward': c.reward}


def _accuracy(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
  predictions = tf.argmax(logits, axis=-1, output_type=tf.int32)
  return tf.reduce_mean(tf.cast(tf.equal(predictions, tf.cast(labels, tf.int32)), tf.float32))


def _one_hot_masks(space):
  return tuple(tf.one_hot(0, d.num_choices, dtype=tf.float32) for d in space.decisions)


# The library entry point -----------------------------------------------------------------------


def search(config: SearchConfig, output_dir: str,
           step_callback: Optional[loop.StepCallback] = None, *,
           space: Optional[SearchSpace] = None) -> Dict[str, Any]:
  """Runs (or resumes, or returns the finished) TuNAS search `config` in `output_dir`.

  Args:
    config: the SearchConfig.
    output_dir: the run directory (see `loop.py` for its files).
    step_callback: called on the host after every compiled chunk with (steps, metrics).
    space: a `SearchSpace` to search instead of the registered one (it must be named
      `config.search_space`); for custom spaces in tests and notebooks.

  Returns:
    The summary (also in OUT/summary.json): arch, predicted_latency_ms, target_latency_ms,
    steps, final_entropy, ...

  Raises:
    UserError: bad inputs (detected before training starts), or `loop.SearchDiverged`.
  """
  done = loop.completed_summary(output_dir, config, RESUMABLE_CHANGES)
  if done is not None:
    logging.info('Search in %s is already complete; nothing to do.', output_dir)
    return done
  space = space or space_lib.get_space(config.search_space)
  if space.name != config.search_space:
    raise UserError(f'The space passed is named {space.name!r} but the config searches '
                    f'{config.search_space!r}')
  if space.family != 'mobile' or not space.decisions:
    mobile = [n for n in space_lib.list_spaces() if space_lib.get_space(n).family == 'mobile'
              and space_lib.get_space(n).decisions]
    raise UserError(f'TuNAS searches mobile spaces with decisions; {space.name!r} is not one. '
                    f'Searchable spaces: {", ".join(mobile)}')
  # The strategy comes before any other TensorFlow work: MultiWorkerMirroredStrategy
  # configures the runtime's collectives, which must happen before it initializes.
  strategy = strategy_lib.make_strategy(config.strategy, config.tpu)
  dataset = data_lib.load_dataset(config.dataset, config.data_dir or None,
                                  search_valid_fraction=config.search_valid_fraction,
                                  split_seed=config.seed)
  _check_dataset(dataset, config)
  cost_model = costs.make_cost_model(config.cost_model, config.latency_table, space,
                                     config.image_size, dataset.info.num_classes)
  latency_range = costs.check_cost_model(cost_model, space.name, config.image_size)
  costs.check_target(config.target_latency_ms, latency_range, space.name)
  if strategy_lib.is_chief(strategy):
    os.makedirs(output_dir, exist_ok=True)
    fileio.atomic_write_json(os.path.join(output_dir, CONFIG_FILE), config.to_dict())
  keras.utils.set_random_seed(config.seed)
  searcher = TunasSearcher(config, cost_model, dataset.info.num_classes, space)
  loop_config = loop.LoopConfig(steps=config.steps, checkpoint_every=config.checkpoint_every,
                                summary_every=config.summary_every, log_every=config.log_every,
                                steps_per_loop=config.steps_per_loop)
  logging.info('TuNAS on %s (%s), target %.3f ms in [%.3f, %.3f] ms, %d steps, batch %d/%d',
               space.name, config.dataset, config.target_latency_ms, *latency_range,
               config.steps, config.batch_size, config.valid_batch_size)
  return loop.run(searcher, strategy, _dataset_fn(dataset, config), loop_config, output_dir,
                  seed=config.seed, step_callback=step_callback)


def _check_dataset(dataset, config: SearchConfig) -> None:
  name = dataset.info.name
  data_lib.check_min_examples(dataset.split_size('search_train'), config.batch_size,
                              f'dataset {name!r} split search_train')
  valid = dataset.split_size('search_valid')
  if valid < config.valid_batch_size:
    largest = int(valid // config.valid_batch_multiplier)
    raise UserError(f'dataset {name!r} split search_valid has {valid} example(s), fewer than '
                    f'the validation batch {config.valid_batch_size} '
                    f'(= {config.valid_batch_multiplier:g} x batch size {config.batch_size}); '
                    f'use a batch size <= {largest}, a smaller valid_batch_multiplier or a '
                    'larger dataset')


def _dataset_fn(dataset, config: SearchConfig) -> loop.DatasetFn:
  def make(start_step: int):
    # A resumed run continues both streams at the batch it stopped at.
    train = data_lib.PipelineConfig(image_size=config.image_size, batch_size=config.batch_size,
                                    seed=config.seed, drop_remainder=True, repeat=True,
                                    start_batch=start_step)
    valid = data_lib.PipelineConfig(image_size=config.image_size,
                                    batch_size=config.valid_batch_size, augment=False,
                                    seed=config.seed + 1, drop_remainder=True, repeat=True,
                                    start_batch=start_step)
    return (data_lib.make_pipeline(dataset, 'search_train', train, training=True),
            data_lib.make_pipeline(dataset, 'search_valid', valid, training=True))
  return make
