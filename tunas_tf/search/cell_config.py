"""`CellSearchConfig`: one validated, frozen description of a GDAS / SETN / DARTS / random / PGNAS
cell search (what `launch.search_cell` builds from its flags).

Defaults are the reference code's (shared/docs/anchors/cellsearch.md §1.3-1.4: AutoDL
`GDAS.config` / `SETN.config`; §4.2 for PGNAS): weights SGD lr 0.025, momentum 0.9, Nesterov,
weight decay 5e-4, cosine to 0.001 per step, gradient-norm clip 5, batch 64; architecture
Adam lr 3e-4, betas (0.5, 0.999), weight decay 1e-3; GDAS τ 10 → 0.1; SETN T = 1000
candidates scored on one validation batch of 512; PGNAS τ 0.2, initial drop 0.1, C = 1500,
N = 10× the training examples.
"""

import dataclasses
from typing import Optional

from tunas_tf import checks
from tunas_tf.errors import UserError, unknown_name
from tunas_tf.space import cell as cell_lib
from tunas_tf.space import registry
from tunas_tf.space.search_space import SearchSpace

PRESETS = ('quick', 'cpu', 'paper')  # Their settings: tunas_tf.search.cell_presets.
ALGORITHMS = ('darts', 'gdas', 'pgnas', 'random', 'setn')
SETN_VARIANTS = ('setn', 'rand', 'non')
# How the one-shot template (random search, SETN) samples the paths its weights train on.
TEMPLATE_SAMPLINGS = ('uniform', 'fair', 'mixture')
# What GDAS trains the weights on during its architecture warm-up.
ARCH_WARMUP_SAMPLINGS = ('sampler', 'mixture')
# What picks the best scored candidate (random search, SETN): held-out accuracy or loss.
CANDIDATE_SCORES = ('accuracy', 'loss')
TEMPLATE_ALGORITHMS = ('random', 'setn')
CANDIDATE_FILTERS = ('params', 'flops', 'synflow', 'naswot', 'jacob_cov')  # proxies.PROXIES
# Which spaces each algorithm searches (why not the others: GDAS's hard sampler is defined per
# edge, so not for SETN's op-pair / input-pair encoding; PGNAS needs kernel-size groups).
SUPPORTED_SPACES = {
    'gdas': ('nas_bench_201', 'darts', 'darts_frc'),
    'darts': ('nas_bench_201', 'darts', 'darts_frc', 'setn'),
    'setn': ('nas_bench_201', 'darts', 'darts_frc', 'setn'),
    'random': ('nas_bench_201', 'darts', 'darts_frc', 'setn'),
    'pgnas': ('pgnas_resnet',),
}
DEFAULT_CANDIDATES = {'setn': 1000, 'random': 1000, 'pgnas': 1500}
PGNAS_BLOCKS_PER_STAGE = 3


@dataclasses.dataclass(frozen=True)
class CellSearchConfig:
  """A cell-space search.

  Attributes:
    preset: the budget preset the settings came from ('quick', 'cpu', 'paper'; see
      `cell_presets`), or '' for none; a record only, the other fields are what runs.
    algorithm: 'gdas', 'setn', 'darts' (first order), 'random' (one-shot random search) or
      'pgnas'.
    search_space: 'nas_bench_201', 'darts', 'darts_frc', 'setn' or 'pgnas_resnet'.
    dataset: a registered dataset name or an image-folder / tarball path.
    data_dir: tfds data directory (tfds names only).
    image_size: square input size.
    channels: C of the cell network (0: the space's, 16); for pgnas_resnet the first stage's
      width (stages C, 2C, 4C; 0: 32).
    num_cells: cells per stage N (0: the space's, NB201 5, DARTS 2); not for pgnas_resnet.
    epochs: passes over the search_train split (ignored when `steps` > 0).
    steps: total steps; 0 derives them from `epochs`.
    batch_size: global training batch (AutoDL: 64).
    valid_batch_size: global validation batch of architecture steps; 0 means `batch_size`.
    search_valid_fraction: share of the training set held out as search_valid.
    learning_rate: SGD rate of the weights at step 0 (cosine decay to `min_learning_rate`).
    min_learning_rate: the final SGD rate.
    momentum: SGD momentum.
    nesterov: Nesterov momentum.
    weight_decay: coupled (PyTorch) weight decay of the weights; PGNAS uses its prior term
      instead and ignores it.
    grad_clip: global gradient-norm clip of the weight step (0: none).
    arch_learning_rate: Adam rate of the architecture parameters.
    arch_beta1: Adam beta1.
    arch_beta2: Adam beta2.
    arch_weight_decay: coupled weight decay of the architecture parameters.
    arch_warmup_fraction: share of the steps, from the start, in which GDAS / SETN / DARTS
      train only the weights (no architecture step; TuNAS delays its RL updates by 25%).
      0 is the reference behaviour.
    arch_warmup_sampling: what GDAS's weights train on during that warm-up: 'sampler' (its
      own Gumbel samples, the reference's single paths) or 'mixture' (every op of every edge,
      averaged 1/n, as TuNAS's op warmup starts and as DARTS trains).
    arch_lr_reference_steps: when > 0, the architecture rate is arch_learning_rate ×
      arch_lr_reference_steps / total steps, so a short run moves α as far as a run of that
      many steps would (AutoDL's NB201 searches: 250 epochs × 390 steps = 97,500). 0: the
      rate as given (the reference).
    tau_max: GDAS Gumbel-softmax temperature at step 0.
    tau_min: GDAS temperature at the last step (linear in between).
    num_candidates: candidates scored at the end (SETN / random T, PGNAS C); 0: the
      algorithm's default (1000, 1000, 1500).
    eval_batch_size: held-out examples (one search_valid batch) that score the candidates.
    template_sampling: how random search and SETN train their template: 'uniform' (the
      reference: one uniformly sampled path per step) or 'fair' (FairNAS strict fairness: per
      step, one path per choice in which every decision runs each choice once, gradients
      summed; a step costs as many forward/backward passes as a decision has choices) or
      'mixture' (every op of every edge on every step, outputs averaged with weights 1/n:
      the one-shot model of Bender et al. 2018 without path dropout, and what TuNAS's op
      warmup trains at its start; a step costs about as much as a DARTS weight step).
    candidate_score: what picks the best scored candidate of SETN / random search: 'accuracy'
      on the held-out batch (the reference; the lower loss breaks ties) or 'loss' (the
      lowest held-out cross-entropy).
    candidate_filter: '' (the reference: score every candidate with the template), or a
      training-free proxy of `tunas_tf.search.proxies` ('params', 'flops', 'synflow',
      'naswot', 'jacob_cov'): SETN / random search then score only the candidates that proxy
      ranks in its top `candidate_filter_keep` share.
    candidate_filter_keep: share of the candidates the filter keeps (at least one).
    setn_variant: 'setn'; 'rand' (SETN-RAND: candidates drawn uniformly); 'non' (SETN-NON:
      the template network is trained on the full mixture).
    pgnas_tau: temperature of PGNAS's Gumbel-sigmoid relaxation (paper: 0.2).
    pgnas_length_scale_sq: l² of PGNAS's weight prior (SupNet-M on CIFAR-10: 50).
    pgnas_dataset_multiplier: N = this × the search_train examples (paper: ~10 for CIFAR).
    pgnas_initial_drop: initial drop probability of every kernel group (paper: 0.1).
    strategy: 'default', 'mirrored', 'multi_worker' or 'tpu'.
    tpu: TPU name or address.
    seed: seeds weights, data order, samples and candidates.
    checkpoint_every: steps between checkpoints.
    keep_checkpoints: checkpoints kept on disk (the newest); more keep snapshots of the run's
      weights along the way, e.g. for `bench.nb201_ranking` at several budgets.
    summary_every: steps between TensorBoard / metrics.jsonl rows (and report points).
    log_every: steps between progress lines.
    steps_per_loop: steps per compiled call.
  """
  preset: str = ''
  algorithm: str = 'gdas'
  search_space: str = 'nas_bench_201'
  dataset: str = 'digits'
  data_dir: str = ''
  image_size: int = 32
  channels: int = 0
  num_cells: int = 0
  epochs: int = 250
  steps: int = 0
  batch_size: int = 64
  valid_batch_size: int = 0
  search_valid_fraction: float = 0.5
  learning_rate: float = 0.025
  min_learning_rate: float = 0.001
  momentum: float = 0.9
  nesterov: bool = True
  weight_decay: float = 5e-4
  grad_clip: float = 5.0
  arch_learning_rate: float = 3e-4
  arch_beta1: float = 0.5
  arch_beta2: float = 0.999
  arch_weight_decay: float = 1e-3
  arch_warmup_fraction: float = 0.0
  arch_warmup_sampling: str = 'sampler'
  arch_lr_reference_steps: int = 0
  tau_max: float = 10.0
  tau_min: float = 0.1
  num_candidates: int = 0
  eval_batch_size: int = 512
  template_sampling: str = 'uniform'
  candidate_score: str = 'accuracy'
  candidate_filter: str = ''
  candidate_filter_keep: float = 0.1
  setn_variant: str = 'setn'
  pgnas_tau: float = 0.2
  pgnas_length_scale_sq: float = 50.0
  pgnas_dataset_multiplier: float = 10.0
  pgnas_initial_drop: float = 0.1
  strategy: str = 'default'
  tpu: str = ''
  seed: int = 0
  checkpoint_every: int = 100
  keep_checkpoints: int = 3
  summary_every: int = 10
  log_every: int = 10
  steps_per_loop: int = 1

  def __post_init__(self):
    if self.algorithm not in ALGORITHMS:
      raise unknown_name('algorithm', self.algorithm, ALGORITHMS)
    if self.preset not in PRESETS + ('',):
      raise unknown_name('preset', self.preset, PRESETS)
    registry.get_space(self.search_space)  # Unknown names list the registered spaces.
    supported = SUPPORTED_SPACES[self.algorithm]
    if self.search_space not in supported:
      users = sorted(a for a, s in SUPPORTED_SPACES.items() if self.search_space in s)
      raise UserError(f'Algorithm {self.algorithm!r} does not search space '
                      f'{self.search_space!r}; it searches {", ".join(supported)}'
                      f'{"; " + self.search_space + " is searched by " + ", ".join(users) if users else ""}')
    if self.template_sampling not in TEMPLATE_SAMPLINGS:
      raise unknown_name('template sampling', self.template_sampling, TEMPLATE_SAMPLINGS)
    if self.template_sampling != 'uniform' and (
        self.algorithm not in TEMPLATE_ALGORITHMS or self.setn_variant == 'non'):
      raise UserError(f'template_sampling={self.template_sampling!r} applies to the template of '
                      f'{" and ".join(TEMPLATE_ALGORITHMS)} (not SETN-NON); '
                      f'{self.algorithm} trains no sampled template: leave it at \'uniform\'')
    self._check_candidate_filter()
    if self.candidate_score not in CANDIDATE_SCORES:
      raise unknown_name('candidate score', self.candidate_score, CANDIDATE_SCORES)
    if self.setn_variant not in SETN_VARIANTS:
      raise unknown_name('SETN variant', self.setn_variant, SETN_VARIANTS)
    for name in ('image_size', 'epochs', 'batch_size', 'eval_batch_size', 'checkpoint_every',
                 'keep_checkpoints', 'summary_every', 'log_every', 'steps_per_loop'):
      checks.int_at_least(name, getattr(self, name), 1)
    for name in ('channels', 'num_cells', 'steps', 'valid_batch_size', 'num_candidates',
                 'seed', 'arch_lr_reference_steps'):
      checks.int_at_least(name, getattr(self, name), 0)
    if self.search_space == 'pgnas_resnet' and self.num_cells not in (0,
                                                                      PGNAS_BLOCKS_PER_STAGE):
      raise UserError(f'num_cells={self.num_cells!r}: pgnas_resnet has a fixed '
                      f'{PGNAS_BLOCKS_PER_STAGE} blocks per stage (its decisions); pass 0')
    if not isinstance(self.nesterov, bool):
      raise UserError(f'nesterov must be a bool, got {self.nesterov!r}')
    for name in ('learning_rate', 'arch_learning_rate', 'tau_max', 'tau_min', 'pgnas_tau',
                 'pgnas_dataset_multiplier'):
      checks.number_above(name, getattr(self, name), 0.0)
    for name in ('min_learning_rate', 'weight_decay', 'grad_clip', 'arch_weight_decay',
                 'pgnas_length_scale_sq'):
      checks.number_above(name, getattr(self, name), 0.0, allow_equal=True)
    for name in ('momentum', 'arch_beta1', 'arch_beta2'):
      checks.number(name, getattr(self, name))
      if not 0.0 <= getattr(self, name) < 1.0:
        raise UserError(f'{name} must be in [0, 1), got {getattr(self, name)!r}')
    for name in ('search_valid_fraction', 'pgnas_initial_drop'):
      checks.number(name, getattr(self, name))
      if not 0.0 < getattr(self, name) < 1.0:
        raise UserError(f'{name} must be in (0, 1), got {getattr(self, name)!r}')
    checks.number('arch_warmup_fraction', self.arch_warmup_fraction)
    if not 0.0 <= self.arch_warmup_fraction < 1.0:
      raise UserError(f'arch_warmup_fraction must be in [0, 1), got '
                      f'{self.arch_warmup_fraction!r}')
    if self.arch_warmup_sampling not in ARCH_WARMUP_SAMPLINGS:
      raise unknown_name('arch warm-up sampling', self.arch_warmup_sampling,
                         ARCH_WARMUP_SAMPLINGS)
    if self.arch_warmup_sampling != 'sampler' and (self.algorithm != 'gdas'
                                                   or not self.arch_warmup_fraction):
      raise UserError(f'arch_warmup_sampling={self.arch_warmup_sampling!r} applies to GDAS with '
                      f'arch_warmup_fraction > 0 (got {self.algorithm}, '
                      f'{self.arch_warmup_fraction}); leave it at \'sampler\'')
    if self.tau_min > self.tau_max:
      raise UserError(f'tau_min={self.tau_min!r} must be <= tau_max={self.tau_max!r}')
    if self.min_learning_rate > self.learning_rate:
      raise UserError(f'min_learning_rate={self.min_learning_rate!r} must be <= '
                      f'learning_rate={self.learning_rate!r}')
    # Imported here: the strategy module loads TensorFlow, the rest of the config does not.
    from tunas_tf.search import strategy as strategy_lib  # pylint: disable=g-import-not-at-top
    strategy_lib.check_name(self.strategy)

  def _check_candidate_filter(self) -> None:
    checks.number('candidate_filter_keep', self.candidate_filter_keep)
    if not 0.0 < self.candidate_filter_keep <= 1.0:
      raise UserError(f'candidate_filter_keep must be in (0, 1], got '
                      f'{self.candidate_filter_keep!r}')
    if not self.candidate_filter:
      return
    if self.candidate_filter not in CANDIDATE_FILTERS:
      raise unknown_name('candidate filter', self.candidate_filter, CANDIDATE_FILTERS)
    if self.algorithm not in TEMPLATE_ALGORITHMS:
      raise UserError(f'candidate_filter={self.candidate_filter!r} filters the candidates of '
                      f'{" and ".join(TEMPLATE_ALGORITHMS)}; {self.algorithm} scores none')

  @property
  def resolved_valid_batch_size(self) -> int:
    return self.valid_batch_size or self.batch_size

  @property
  def resolved_num_candidates(self) -> int:
    return self.num_candidates or DEFAULT_CANDIDATES.get(self.algorithm, 0)

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, data: dict) -> 'CellSearchConfig':
    return checks.dataclass_from_dict(cls, data, 'cell search config')


def resolve_space(config: CellSearchConfig) -> SearchSpace:
  """The registered space with the config's macro (channels, cells per stage).

  The variant keeps the registered name and decisions, so its architectures (arch.json) are
  architectures of the registered space.
  """
  space = registry.get_space(config.search_space)
  if isinstance(space.spec, cell_lib.PgnasResNetSpec):
    if not config.channels:
      return space
    c = config.channels
    spec = cell_lib.pgnas_resnet_spec((c, 2 * c, 4 * c), PGNAS_BLOCKS_PER_STAGE)
    return SearchSpace(space.name, spec, space.family, f'{space.description} [channels={c}]')
  changes = {}
  if config.channels:
    changes['channels'] = config.channels
  if config.num_cells:
    changes['cells_per_stage'] = config.num_cells
  return cell_lib.with_macro(space, **changes) if changes else space











def steps_per_epoch(num_examples: int, batch_size: int) -> int:
  """Full batches of one pass over `num_examples` (at least 1)."""
  return max(1, num_examples // batch_size)


def total_steps(config: CellSearchConfig, num_train_examples: int,
                override: Optional[int] = None) -> int:
  """`config.steps`, or epochs × steps per epoch of the search_train split."""
  if override:
    return override
  if config.steps:
    return config.steps
  return config.epochs * steps_per_epoch(num_train_examples, config.batch_size)
