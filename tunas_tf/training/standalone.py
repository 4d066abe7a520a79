"""Stand-alone training of one architecture: resumable, with TensorBoard logs and a summary.

Output directory layout:
  arch.json            the trained architecture (with its string form)
  config.json          the TrainConfig
  backup/              epoch backups (training.backup); a re-run of the same command resumes here
  backup_damaged/      unreadable backups set aside on a resume (only when there were any)
  tensorboard/         train / validation scalars
  history.csv          one row per epoch (appended across resumes)
  model.weights.h5     final weights
  summary.json         final figures, written last (its presence means the run is complete)
"""

import math
import os
import sys
import time
from typing import Sequence

import keras
import numpy as np
from absl import logging

from tunas_tf import data as data_lib
from tunas_tf import fileio
from tunas_tf import space as space_lib
from tunas_tf.errors import UserError
from tunas_tf.models.batch_norm import recalibrate_batch_norm
from tunas_tf.models.factory import build_network, network_macs
from tunas_tf.search import loop
from tunas_tf.search import schedules
from tunas_tf.training.backup import RecoveringBackup
from tunas_tf.training.config import TrainConfig


def make_optimizer(config: TrainConfig, total_steps: int) -> keras.optimizers.Optimizer:
  warmup = int(config.warmup_fraction * total_steps)
  rate = schedules.CosineWithWarmup(config.peak_learning_rate, total_steps, warmup)
  if config.optimizer == 'rmsprop':
    # TuNAS: RMSProp decay 0.9, momentum 0.9, epsilon 1.0.
    return keras.optimizers.RMSprop(rate, rho=0.9, momentum=0.9, epsilon=1.0)
  return keras.optimizers.SGD(rate, momentum=0.9, nesterov=True)


def _pipelines(dataset, config: TrainConfig, start_batch: int = 0):
  # A resumed run's stream continues at its first untrained batch.
  train_cfg = data_lib.PipelineConfig(image_size=config.image_size,
                                      batch_size=config.batch_size, seed=config.seed,
                                      drop_remainder=True, repeat=True, start_batch=start_batch)
  eval_cfg = data_lib.PipelineConfig(image_size=config.image_size,
                                     batch_size=config.batch_size)
  train = data_lib.make_pipeline(dataset, config.train_split, train_cfg, training=True)
  evaluation = data_lib.make_pipeline(dataset, config.eval_split, eval_cfg)
  return train, evaluation


def _steps_per_epoch(dataset, config: TrainConfig) -> int:
  steps = dataset.split_size(config.train_split) // config.batch_size
  if config.max_steps_per_epoch:
    steps = min(steps, config.max_steps_per_epoch)
  return steps


def _compile(model: keras.Model, config: TrainConfig, total_steps: int) -> None:
  loss = keras.losses.CategoricalCrossentropy(from_logits=True,
                                              label_smoothing=config.label_smoothing)
  # No XLA: on CPU its compile time dwarfs short runs, and it is not needed for correctness.
  model.compile(optimizer=make_optimizer(config, total_steps), loss=loss,
                metrics=[keras.metrics.CategoricalAccuracy(name='accuracy')],
                jit_compile=False)


def _one_hot(num_classes: int):
  import tensorflow as tf  # Local: only the data pipeline needs raw TF ops here.
  return lambda images, labels: (images, tf.one_hot(labels, num_classes))


class _PreciseBatchNorm(keras.callbacks.Callback):
  """Refits batch-norm statistics on training images before every validation.

  Moving averages with momentum 0.99 lag far behind the weights on short schedules (after 100
  steps they are still a third of their initial (0, 1)), which makes validation accuracy
  meaningless; statistics computed on a large batch with the current weights ("precise BN")
  fix that at the cost of one forward pass per epoch.
  """

  def __init__(self, images, steps_per_epoch: int):
    super().__init__()
    self._images = images
    self._steps = steps_per_epoch

  def on_train_batch_end(self, batch, logs=None):
    if (batch + 1) % self._steps == 0:
      recalibrate_batch_norm(self.model, self._images)


def _calibration_images(dataset, config: TrainConfig):
  """Up to 1024 training images, fewer at large sizes (about 4M pixels in all)."""
  num = min(1024, max(64, int(4e6 // config.image_size ** 2)))
  return np.concatenate(list(data_lib.representative_images(
      dataset, config.image_size, num, split=config.train_split)))


class _NaNGuard(keras.callbacks.Callback):
  """Stops training on a non-finite loss; the last epoch backup stays intact."""

  def on_train_batch_end(self, batch, logs=None):
    loss = (logs or {}).get('loss')
    if loss is not None and not math.isfinite(float(loss)):
      self.model.stop_training = True
      raise UserError(f'Training loss became {loss} at batch {batch}; stopped. The last '
                      'completed epoch is kept in backup/; lower the learning rate and re-run')


def _callbacks(output_dir: str, precise_bn: keras.callbacks.Callback,
               backup: RecoveringBackup):
  return [
      precise_bn,
      backup,
      keras.callbacks.TensorBoard(os.path.join(output_dir, 'tensorboard'),
                                  update_freq='epoch'),
      keras.callbacks.CSVLogger(os.path.join(output_dir, 'history.csv'), append=True),
      _NaNGuard(),
  ]


def train(config: TrainConfig, output_dir: str,
          extra_callbacks: Sequence[keras.callbacks.Callback] = ()) -> dict:
  """Trains `config.arch` and returns the summary written to `output_dir/summary.json`.

  Args:
    config: what to train.
    output_dir: the run directory; an unfinished run there is resumed from its last epoch.
    extra_callbacks: more Keras callbacks (e.g. a custom progress display).
  """
  # A finished run of this config returns its summary; a run of another config (finished or
  # interrupted) is refused before anything is written, naming each field that differs.
  done = loop.completed_summary(output_dir, config, resumable=())
  if done is not None:
    logging.info('Run in %s is already complete; nothing to do.', output_dir)
    return done
  arch = space_lib.parse_architecture(config.arch, config.search_space)
  space = space_lib.get_space(arch.space)
  dataset = data_lib.load_dataset(config.dataset, config.data_dir or None,
                                  split_seed=config.seed)
  steps = _steps_per_epoch(dataset, config)
  if steps < 1:
    raise UserError(f'Split {config.train_split!r} of dataset {config.dataset!r} has '
                    f'{dataset.split_size(config.train_split)} examples, fewer than one batch '
                    f'of {config.batch_size}; lower --batch_size')
  keras.utils.set_random_seed(config.seed)
  num_classes = dataset.info.num_classes
  # Built before anything is written: a network that cannot be built leaves no run behind.
  model = build_network(space, arch, num_classes, config.image_size, config.dropout_rate,
                        config.weight_decay)
  os.makedirs(output_dir, exist_ok=True)
  fileio.atomic_write_text(os.path.join(output_dir, 'arch.json'), space.to_json(arch))
  fileio.atomic_write_json(os.path.join(output_dir, 'config.json'), config.to_dict())
  _compile(model, config, steps * config.epochs)
  backup = RecoveringBackup(os.path.join(output_dir, 'backup'))
  train_ds, eval_ds = _pipelines(dataset, config, backup.restore(model) * steps)
  to_one_hot = _one_hot(num_classes)
  logging.info('Training %s (%s) on %s: %d epochs x %d steps, batch %d', arch.space,
               space.to_string(arch), config.dataset, config.epochs, steps, config.batch_size)
  precise_bn = _PreciseBatchNorm(_calibration_images(dataset, config), steps)
  start = time.time()
  model.fit(train_ds.map(to_one_hot), epochs=config.epochs, steps_per_epoch=steps,
            validation_data=eval_ds.map(to_one_hot), callbacks=_callbacks(output_dir, precise_bn, backup) + list(extra_callbacks),
            verbose=1 if sys.stdout.isatty() else 2)
  train_seconds = time.time() - start
  results = model.evaluate(eval_ds.map(to_one_hot), return_dict=True, verbose=0)
  model.save_weights(os.path.join(output_dir, 'model.weights.h5'))
  summary = {
      'arch': space.to_string(arch), 'search_space': arch.space, 'config': config.to_dict(),
      'val_accuracy': float(results['accuracy']), 'val_loss': float(results['loss']),
      'eval_split': config.eval_split, 'num_classes': num_classes,
      'params': int(model.count_params()),
      'macs': network_macs(space, arch, config.image_size, num_classes),
      'epochs': config.epochs, 'steps_per_epoch': steps, 'train_seconds': train_seconds,
  }
  fileio.atomic_write_json(os.path.join(output_dir, 'summary.json'), summary)
  return summary
