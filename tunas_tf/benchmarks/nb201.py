"""NAS-Bench-201 ground truth: 200-epoch test accuracies of all 15,625 cells, from a CSV.

The CSV (`v-tao/nats-bench-landscape:nats_bench.csv`, shared/docs/anchors/cellsearch.md §3)
has one row per architecture in NB201 index order and the columns
CIFAR10TestAccuracy200Epochs, CIFAR100TestAccuracy200Epochs, ImageNetTestAccuracy200Epochs,
ArchitectureString (the NB201 genotype string) and UniqueString.

For benchmarks that judge the cells a searcher found; never imported by `tunas_tf.search`.

  bench = NB201Benchmark.load()              # or NB201Benchmark.load('/path/nats_bench.csv')
  bench.query('|nor_conv_3x3~0|+|...|').cifar10
  bench.stats('cifar10').median
"""

import csv
import dataclasses
import math
import os
import statistics
from typing import Iterator, Optional, Union

from tunas_tf.errors import UserError, unknown_name
from tunas_tf.space import cell
from tunas_tf.space.architecture import Architecture

CSV_ENV_VAR = 'TUNAS_NB201_CSV'
DATASETS = ('cifar10', 'cifar100', 'ImageNet16-120')
_ACCURACY_COLUMNS = {'cifar10': 'CIFAR10TestAccuracy200Epochs',
                     'cifar100': 'CIFAR100TestAccuracy200Epochs',
                     'ImageNet16-120': 'ImageNetTestAccuracy200Epochs'}
_STRING_COLUMN = 'ArchitectureString'
NUM_ARCHITECTURES = 15625
TOP_FRACTION = 0.1


def default_csv_path() -> str:
  """$TUNAS_NB201_CSV, else the shared data next to the repository (../shared/data/...)."""
  if os.environ.get(CSV_ENV_VAR):
    return os.environ[CSV_ENV_VAR]
  repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  return os.path.join(os.path.dirname(repo), 'shared', 'data', 'nb201_accuracies.csv')


@dataclasses.dataclass(frozen=True)
class NB201Record:
  """One architecture's ground truth.

  Attributes:
    index: the NB201 index (row of the CSV).
    genotype: the NB201 genotype string.
    arch: the `nas_bench_201` Architecture.
    accuracies: dataset name (`DATASETS`) -> 200-epoch test accuracy in percent.
  """
  index: int
  genotype: str
  arch: Architecture
  accuracies: dict

  @property
  def cifar10(self) -> float:
    return self.accuracies['cifar10']

  @property
  def cifar100(self) -> float:
    return self.accuracies['cifar100']

  @property
  def imagenet16_120(self) -> float:
    return self.accuracies['ImageNet16-120']


@dataclasses.dataclass(frozen=True)
class SpaceStats:
  """Accuracy statistics of the whole space on one dataset (percent).

  Attributes:
    top_fraction_threshold: the accuracy of the ceil(0.1·n)-th best architecture, so the top
      10% are exactly those at or above it (ties aside).
  """
  dataset: str
  count: int
  mean: float
  median: float
  top_fraction_threshold: float
  best: float
  best_genotype: str


def _check_dataset(dataset: str) -> str:
  if dataset not in DATASETS:
    raise unknown_name('NAS-Bench-201 dataset', dataset, DATASETS)
  return dataset


def _parse_row(row: dict, index: int, path: str) -> NB201Record:
  genotype = row[_STRING_COLUMN]
  try:
    accuracies = {d: float(row[c]) for d, c in _ACCURACY_COLUMNS.items()}
  except (TypeError, ValueError):
    raise UserError(f'{path}: row {index + 2} has a non-numeric accuracy: {row!r:.200}') from None
  if not all(math.isfinite(a) and 0 <= a <= 100 for a in accuracies.values()):
    raise UserError(f'{path}: row {index + 2} has an accuracy outside [0, 100]: {accuracies}')
  try:
    arch = cell.from_nb201_string(genotype)
  except UserError as e:
    raise UserError(f'{path}: row {index + 2}: {e}') from None
  return NB201Record(index, genotype, arch, accuracies)


class NB201Benchmark:
  """All NB201 records of a CSV, queryable by genotype string or Architecture."""

  def __init__(self, records, path: str = ''):
    self._records = tuple(records)
    self.path = path
    self._by_indices = {}
    for r in self._records:
      if self._by_indices.setdefault(r.arch.indices, r) is not r:
        raise UserError(f'{path}: genotype {r.genotype!r} appears twice')

  @classmethod
  def load(cls, path: Optional[str] = None, complete: bool = True) -> 'NB201Benchmark':
    """Reads the CSV at `path` (default: `default_csv_path()`). With `complete` (the default)
    it must hold all 15,625 architectures: ranks and statistics of a partial table are wrong."""
    path = path or default_csv_path()
    if not os.path.isfile(path):
      raise UserError(f'NAS-Bench-201 accuracy CSV {path!r} does not exist; pass its path '
                      f'(--csv=PATH or ${CSV_ENV_VAR}); expected columns: '
                      f'{", ".join(list(_ACCURACY_COLUMNS.values()) + [_STRING_COLUMN])}')
    with open(path, newline='') as f:
      reader = csv.DictReader(f)
      needed = list(_ACCURACY_COLUMNS.values()) + [_STRING_COLUMN]
      missing = [c for c in needed if c not in (reader.fieldnames or ())]
      if missing:
        raise UserError(f'{path}: missing column(s) {missing}; its header is '
                        f'{reader.fieldnames}')
      records = [_parse_row(row, i, path) for i, row in enumerate(reader)]
    if complete and len(records) != NUM_ARCHITECTURES:
      raise UserError(f'{path}: {len(records)} architectures, not the {NUM_ARCHITECTURES} of '
                      'NAS-Bench-201 (a truncated copy?); ranks and statistics would be wrong')
    return cls(records, path)

  def __len__(self) -> int:
    return len(self._records)

  def __iter__(self) -> Iterator[NB201Record]:
    return iter(self._records)

  def query(self, arch: Union[str, Architecture]) -> NB201Record:
    """The record of an NB201 genotype string or a `nas_bench_201` Architecture."""
    if isinstance(arch, str):
      arch = cell.from_nb201_string(arch)
    genotype = cell.to_nb201_string(arch)  # Validates the architecture.
    record = self._by_indices.get(arch.indices)
    if record is None:
      raise UserError(f'{genotype!r} is not in {self.path!r} ({len(self)} architectures)')
    return record

  def accuracies(self, dataset: str = 'cifar10') -> list:
    _check_dataset(dataset)
    return [r.accuracies[dataset] for r in self._records]

  def rank(self, arch: Union[str, Architecture], dataset: str = 'cifar10') -> int:
    """1 + the number of architectures strictly more accurate than `arch`."""
    value = self.query(arch).accuracies[_check_dataset(dataset)]
    return 1 + sum(1 for a in self.accuracies(dataset) if a > value)

  def stats(self, dataset: str = 'cifar10') -> SpaceStats:
    values = self.accuracies(dataset)
    if not values:
      raise UserError(f'{self.path!r} has no architectures')
    ranked = sorted(values, reverse=True)
    best = max(self._records, key=lambda r: r.accuracies[dataset])
    return SpaceStats(dataset, len(values), statistics.fmean(values), statistics.median(values),
                      ranked[math.ceil(TOP_FRACTION * len(values)) - 1], best.accuracies[dataset],
                      best.genotype)
