"""Typed configuration of stand-alone training."""

import dataclasses
from typing import Optional

from tunas_tf.errors import UserError

OPTIMIZERS = ('rmsprop', 'sgd')


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Stand-alone training of one architecture (TuNAS `mobile_train_eval` defaults, scaled).

  Attributes:
    search_space: registered space name.
    arch: a reference name, architecture string, JSON path or 'random:SEED'.
    dataset: a registered dataset name or a path to an image folder / .tar.gz.
    data_dir: tfds data directory (tfds names only).
    image_size: square input size.
    batch_size: training batch size.
    epochs: passes over the training split.
    optimizer: 'rmsprop' (TuNAS: decay 0.9, momentum 0.9, epsilon 1.0) or 'sgd' (momentum 0.9).
    base_learning_rate: peak rate per 256 examples (TuNAS 0.165 for RMSProp); the peak is
      base_learning_rate * batch_size / 256.
    warmup_fraction: fraction of steps of linear warmup before cosine decay (TuNAS 0.025).
    weight_decay: L2 weight decay, applied as L2(wd / 2); None: the space family's reference
      value (TuNAS 4e-5, NAS-Bench-201 / DARTS 5e-4).
    label_smoothing: TuNAS 0.1.
    dropout_rate: before the classifier.
    eval_split: 'test' (report held-out accuracy) or 'search_valid' (the search split).
    train_split: 'train' or 'search_train'.
    seed: seeds weights, shuffling and augmentation.
    max_steps_per_epoch: cap on steps per epoch (0 = full epochs); useful for smoke runs.
  """
  search_space: str = 'proxylessnas'
  arch: str = 'proxylessnas_mobile'
  dataset: str = 'digits'
  data_dir: str = ''
  image_size: int = 32
  batch_size: int = 64
  epochs: int = 10
  optimizer: str = 'rmsprop'
  base_learning_rate: float = 0.165
  warmup_fraction: float = 0.025
  weight_decay: Optional[float] = None
  label_smoothing: float = 0.1
  dropout_rate: float = 0.0
  train_split: str = 'train'
  eval_split: str = 'test'
  seed: int = 0
  max_steps_per_epoch: int = 0

  def __post_init__(self):
    _positive('image_size', self.image_size)
    _positive('batch_size', self.batch_size)
    _positive('epochs', self.epochs)
    if self.optimizer not in OPTIMIZERS:
      raise UserError(f'optimizer must be one of {", ".join(OPTIMIZERS)}; '
                      f'got {self.optimizer!r}')
    if not self.base_learning_rate > 0:
      raise UserError(f'base_learning_rate must be > 0; got {self.base_learning_rate!r}')
    if not 0 <= self.warmup_fraction < 1:
      raise UserError(f'warmup_fraction must be in [0, 1); got {self.warmup_fraction!r}')
    if self.weight_decay is not None and self.weight_decay < 0:
      raise UserError(f'weight_decay must be >= 0; got {self.weight_decay!r}')
    if not 0 <= self.label_smoothing < 1:
      raise UserError(f'label_smoothing must be in [0, 1); got {self.label_smoothing!r}')
    if self.train_split not in ('train', 'search_train'):
      raise UserError(f"train_split must be 'train' or 'search_train'; got {self.train_split!r}")
    if self.eval_split not in ('test', 'search_valid'):
      raise UserError(f"eval_split must be 'test' or 'search_valid'; got {self.eval_split!r}")
    if self.max_steps_per_epoch < 0:
      raise UserError(f'max_steps_per_epoch must be >= 0; got {self.max_steps_per_epoch!r}')

  @property
  def peak_learning_rate(self) -> float:
    return self.base_learning_rate * self.batch_size / 256.0

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)


def _positive(name: str, value) -> None:
  if not isinstance(value, int) or value < 1:
    raise UserError(f'{name} must be a positive integer; got {value!r}')
