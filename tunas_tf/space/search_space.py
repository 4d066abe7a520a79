"""`SearchSpace`: a named declaration plus everything derived from it by traversal."""

import dataclasses
import functools
import math
import random
from typing import Any, Optional, Sequence

from tunas_tf.errors import UserError
from tunas_tf.space import arch_string
from tunas_tf.space import schema
from tunas_tf.space.architecture import Architecture


@dataclasses.dataclass(frozen=True)
class SearchSpace:
  """A registered search space.

  Attributes:
    name: registry name (also stored in every `Architecture` of the space).
    spec: the declaration: plain frozen data with `OneOf` leaves.
    family: what builds it, e.g. 'mobile' (TuNAS inverted-bottleneck spaces) or 'cell'.
    description: one line for `list_spaces`.
  """
  name: str
  spec: Any
  family: str
  description: str = ''

  @functools.cached_property
  def decisions(self) -> tuple:
    return schema.decisions(self.spec)

  @property
  def num_decisions(self) -> int:
    return len(self.decisions)

  @functools.cached_property
  def _codec(self) -> arch_string.ArchStringCodec:
    return arch_string.ArchStringCodec(self.name, self.decisions, self.active_mask)

  def log10_cardinality(self) -> float:
    """log10 of the product of all choice counts (the index-form size TuNAS reports)."""
    return sum(math.log10(d.num_choices) for d in self.decisions)

  def log10_distinct(self) -> float:
    """log10 of the number of hierarchically distinct architectures."""
    return math.log10(schema.count_distinct(self.spec))

  def decision(self, path: str) -> schema.Decision:
    for d in self.decisions:
      if d.path == path:
        return d
    raise UserError(f'Space {self.name!r} has no decision {path!r}')

  def validate(self, arch: Architecture) -> Architecture:
    """Checks `arch` belongs to this space; returns it unchanged."""
    if arch.space != self.name:
      raise UserError(f'Architecture is for space {arch.space!r}, not {self.name!r}')
    self.check_indices(arch.indices)
    return arch

  def check_indices(self, indices: Sequence[int]) -> None:
    if len(indices) != self.num_decisions:
      raise UserError(f'Space {self.name!r} has {self.num_decisions} decisions, '
                      f'got {len(indices)} indices')
    for d, i in zip(self.decisions, indices):
      if not 0 <= i < d.num_choices:
        raise UserError(f'Index {i} out of range for decision {d.path!r} of space '
                        f'{self.name!r}: valid indices are 0..{d.num_choices - 1} '
                        f'({", ".join(repr(l) for l in d.oneof.labels)})')

  def active_mask(self, indices: Sequence[int]) -> tuple:
    """Whether each decision is active: all its ancestors chose the choice containing it."""
    active = [True] * len(self.decisions)
    # Parents come after their children in post-order, so walk backwards.
    for d in reversed(self.decisions):
      if d.parent is not None:
        active[d.index] = active[d.parent] and indices[d.parent] == d.parent_choice
    return tuple(active)

  def canonical(self, arch: Architecture) -> Architecture:
    """`arch` with every inactive decision set to 0, so equal networks have equal indices."""
    self.validate(arch)
    active = self.active_mask(arch.indices)
    return Architecture(self.name, tuple(i if a else 0 for i, a in zip(arch.indices, active)))

  def sample(self, rng: Optional[random.Random] = None) -> Architecture:
    """A uniform sample: every decision independently uniform (as TuNAS samples), canonical."""
    rng = rng or random.Random()
    indices = tuple(rng.randrange(d.num_choices) for d in self.decisions)
    return self.canonical(Architecture(self.name, indices))

  def resolve(self, arch: Architecture) -> Any:
    """The spec with every decision replaced by the value `arch` chose."""
    self.validate(arch)
    return schema.resolve(self.spec, arch.indices)

  def to_string(self, arch: Architecture) -> str:
    """Compact human-readable form, e.g. 'k3-e3k5-e6k7se-skip-c80'."""
    self.validate(arch)
    return self._codec.format(arch.indices)

  def parse(self, text: str) -> Architecture:
    """Parses `to_string` output, or TuNAS's colon-separated index form '0:1:2...'."""
    if arch_string.looks_like_indices(text):
      arch = Architecture(self.name, arch_string.parse_indices(text))
      return self.canonical(arch)
    return Architecture(self.name, self._codec.parse(text))

  def to_json(self, arch: Architecture) -> str:
    return arch.to_json(string=self.to_string(arch))
