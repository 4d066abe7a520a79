"""Typed configuration of a TuNAS search (`tunas_tf.search.tunas.search`).

Defaults follow the TuNAS reference code (anchors/tunas.md Sec. 3, 4 and 7) where they do not
depend on scale; learning rates are given per 256 examples and scaled by the batch size, as
TuNAS does. Fractions are fractions of `steps`.
"""

import dataclasses

from tunas_tf import checks
from tunas_tf.errors import UserError
from tunas_tf.search import costs
from tunas_tf.search import rewards
from tunas_tf.search import strategy as strategy_lib



@dataclasses.dataclass(frozen=True)
class SearchConfig:
  """A TuNAS search.

  Attributes:
    search_space: registered space name.
    dataset: a registered dataset name or an image-folder / tarball path.
    data_dir: tfds data directory (tfds names only).
    image_size: square input size of the supernet.
    target_latency_ms: T0 of the reward, in the cost model's milliseconds.
    cost_model: 'table' (a measured latency table, `latency_table`) or 'macs' (a MACs-based
      estimate, for tests and when no table exists).
    latency_table: path of the latency table JSON (cost_model='table').
    steps: search steps.
    batch_size: global training batch (shared-weight update).
    valid_batch_multiplier: the RL validation batch is this times `batch_size` (TuNAS 4).
    reward: 'abs' (TuNAS), 'mnas' or 'mnas_hard'.
    cost_exponent: beta of the reward (TuNAS -0.1).
    baseline_momentum: EMA momentum of the reward baseline (TuNAS 0.95).
    rl_learning_rate: Adam rate of the controller per 256 training examples (TuNAS 3e-4).
    rl_delay_fraction: RL learning rate is 0 for this fraction of steps (TuNAS 0.25).
    op_warmup_fraction: op warmup length (TuNAS 0.25); must be <= rl_delay_fraction.
    filter_warmup_fraction: filter warmup length (TuNAS 0.25); must be <= rl_delay_fraction.
    entropy_regularization: weight of an entropy bonus in the controller loss (TuNAS 0).
    temperature: softmax temperature of the controller (TuNAS 1).
    model_learning_rate: peak RMSProp rate per 256 examples (TuNAS 0.165).
    model_warmup_fraction: linear warmup before cosine decay (TuNAS 0.025).
    weight_decay: L2 weight decay of the shared weights (TuNAS 4e-5).
    label_smoothing: of the shared-weight cross-entropy (TuNAS 0.1).
    dropout_rate: before the supernet's classifier.
    rematerialize: recompute op switches in the backward pass (TuNAS; saves activation
      memory under op warmup at the cost of one more forward pass of the enabled ops).
    search_valid_fraction: share of the training set held out for the RL reward.
    strategy: 'default', 'mirrored', 'multi_worker' or 'tpu'.
    tpu: TPU name or address (strategy='tpu').
    seed: seeds weights, data order and every sampled architecture.
    checkpoint_every: steps between checkpoints.
    summary_every: steps between TensorBoard / metrics.jsonl rows.
    log_every: steps between progress lines.
    steps_per_loop: steps per compiled call.
  """
  search_space: str = 'proxylessnas'
  dataset: str = 'digits'
  data_dir: str = ''
  image_size: int = 32
  target_latency_ms: float = 84.0
  cost_model: str = 'table'
  latency_table: str = ''
  steps: int = 1000
  batch_size: int = 64
  valid_batch_multiplier: float = 4.0
  reward: str = 'abs'
  cost_exponent: float = rewards.DEFAULT_COST_EXPONENT
  baseline_momentum: float = rewards.DEFAULT_BASELINE_MOMENTUM
  rl_learning_rate: float = 3e-4
  rl_delay_fraction: float = 0.25
  op_warmup_fraction: float = 0.25
  filter_warmup_fraction: float = 0.25
  entropy_regularization: float = 0.0
  temperature: float = 1.0
  model_learning_rate: float = 0.165
  model_warmup_fraction: float = 0.025
  weight_decay: float = 4e-5
  label_smoothing: float = 0.1
  dropout_rate: float = 0.0
  rematerialize: bool = True
  search_valid_fraction: float = 0.5
  strategy: str = 'default'
  tpu: str = ''
  seed: int = 0
  checkpoint_every: int = 100
  summary_every: int = 10
  log_every: int = 10
  steps_per_loop: int = 1

  def __post_init__(self):
    for name in ('image_size', 'steps', 'batch_size', 'checkpoint_every', 'summary_every',
                 'log_every', 'steps_per_loop'):
      checks.int_at_least(name, getattr(self, name), 1)
    checks.int_at_least('seed', self.seed, 0)
    if not isinstance(self.rematerialize, bool):
      raise UserError(f'rematerialize must be a bool, got {self.rematerialize!r}')
    rewards.get_reward(self.reward)
    rewards.check_momentum(self.baseline_momentum)
    costs.check_cost_model_choice(self.cost_model, self.latency_table)
    strategy_lib.check_name(self.strategy)
    checks.number_above('target_latency_ms', self.target_latency_ms, 0.0)
    checks.number_above('valid_batch_multiplier', self.valid_batch_multiplier, 0.0)
    checks.number_above('rl_learning_rate', self.rl_learning_rate, 0.0, allow_equal=True)
    checks.number_above('model_learning_rate', self.model_learning_rate, 0.0)
    checks.number_above('temperature', self.temperature, 0.0)
    checks.number_above('weight_decay', self.weight_decay, 0.0, allow_equal=True)
    checks.number_above('entropy_regularization', self.entropy_regularization, 0.0,
                        allow_equal=True)
    checks.number('cost_exponent', self.cost_exponent)
    for name in ('rl_delay_fraction', 'op_warmup_fraction', 'filter_warmup_fraction',
                 'model_warmup_fraction', 'label_smoothing', 'dropout_rate'):
      checks.fraction(name, getattr(self, name))
    checks.fraction('search_valid_fraction', self.search_valid_fraction, open_low=True)
    for name in ('op_warmup_fraction', 'filter_warmup_fraction'):
      # TuNAS: warmup must end before the controller learns, or shared-weight training would
      # sample a different architecture than the one the controller is updated for.
      if getattr(self, name) > self.rl_delay_fraction:
        raise UserError(f'{name}={getattr(self, name)!r} is longer than rl_delay_fraction='
                        f'{self.rl_delay_fraction!r}; warmups must end before the RL delay')
    if self.valid_batch_size < 1:
      raise UserError(f'valid_batch_multiplier={self.valid_batch_multiplier!r} times '
                      f'batch_size={self.batch_size} gives an empty validation batch')

  @property
  def valid_batch_size(self) -> int:
    return int(round(self.batch_size * self.valid_batch_multiplier))

  @property
  def rl_delay_steps(self) -> int:
    return int(self.rl_delay_fraction * self.steps)

  @property
  def op_warmup_steps(self) -> int:
    return int(self.op_warmup_fraction * self.steps)

  @property
  def filter_warmup_steps(self) -> int:
    return int(self.filter_warmup_fraction * self.steps)

  @property
  def model_warmup_steps(self) -> int:
    return int(self.model_warmup_fraction * self.steps)

  @property
  def scaled_rl_learning_rate(self) -> float:
    """TuNAS: rl_learning_rate * batch_size / 256."""
    return self.rl_learning_rate * self.batch_size / 256.0

  @property
  def scaled_model_learning_rate(self) -> float:
    return self.model_learning_rate * self.batch_size / 256.0

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, data: dict) -> 'SearchConfig':
    return checks.dataclass_from_dict(cls, data, 'search config')
