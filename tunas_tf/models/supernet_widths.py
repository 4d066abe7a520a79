"""Channel widths of a supernet as static tables over filter decisions (TuNAS channel masking).

In a supernet every tensor is allocated at its largest width and a smaller width is simulated by
keeping its first N channels (a prefix mask). The width N of a tensor depends on a few filter
decisions: a block's output filters, or a bottleneck's expansion ratio together with the width of
its input (TuNAS's relative expansion, `scale_filters(sum(input_mask), multiplier, 8)`). Since
every decision has finitely many choices, we tabulate N over those decisions when the network is
built, and a training step only gathers one entry of the table at the argmax of each filter
mask. This keeps the rounding rules in one pure-Python place (`tunas_tf.space.specs`), shared
with the stand-alone builder, instead of re-implementing them with TensorFlow ops.
"""

import dataclasses
import itertools
import math
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

import tensorflow as tf


@dataclasses.dataclass(frozen=True, eq=False)
class Table:
  """A value that depends on filter decisions: `values[argmax(masks[d]) for d in decisions]`.

  Attributes:
    decisions: indices of the decisions the value depends on (in `space.decisions`), sorted.
    sizes: number of choices of each of those decisions.
    values: the values for every combination of choices, flattened in row-major order; any
      Python values (ints for widths, `FilterMultiplier`s for expansion choices...).
  """
  decisions: Tuple[int, ...]
  sizes: Tuple[int, ...]
  values: Tuple[Any, ...]

  def __post_init__(self):
    if len(self.values) != math.prod(self.sizes):
      raise ValueError(f'A table over sizes {self.sizes} needs {math.prod(self.sizes)} values, '
                       f'got {len(self.values)}')

  @classmethod
  def constant(cls, value: Any) -> 'Table':
    return cls((), (), (value,))

  @classmethod
  def of_decision(cls, index: int, choices: Sequence[Any]) -> 'Table':
    """The chosen value of decision `index`; a single choice gives a constant."""
    if len(choices) == 1:
      return cls.constant(choices[0])
    return cls((index,), (len(choices),), tuple(choices))

  @property
  def is_constant(self) -> bool:
    return not self.decisions

  @property
  def max(self) -> int:
    return max(self.values)

  def _at(self, choice_of: Dict[int, int]) -> Any:
    flat = 0
    for d, size in zip(self.decisions, self.sizes):
      flat = flat * size + choice_of[d]
    return self.values[flat]

  def map(self, fn: Callable[..., Any], *others: 'Table') -> 'Table':
    """The table of `fn(self_value, *other_values)` over the union of the decisions."""
    tables = (self,) + others
    sizes_of = {}
    for t in tables:
      sizes_of.update(zip(t.decisions, t.sizes))
    decisions = tuple(sorted(sizes_of))
    sizes = tuple(sizes_of[d] for d in decisions)
    values = []
    for combo in itertools.product(*(range(s) for s in sizes)):
      choice_of = dict(zip(decisions, combo))
      values.append(fn(*(t._at(choice_of) for t in tables)))
    result = Table(decisions, sizes, tuple(values))
    if len(set(result.values)) == 1:  # e.g. every choice rounds to the same width.
      return Table.constant(result.values[0])
    return result

  def same_as(self, other: 'Table') -> bool:
    return (self.decisions, self.sizes, self.values) == (other.decisions, other.sizes,
                                                         other.values)

  def static_value(self, indices: Sequence[int]) -> Any:
    """The value for an architecture given by its indices (one per decision)."""
    return self._at({d: indices[d] for d in self.decisions})

  def value(self, masks: Sequence[tf.Tensor]) -> tf.Tensor:
    """The int32 value selected by the argmax of each mask (TuNAS reads filter masks so)."""
    flat = tf.constant(0, tf.int32)
    for d, size in zip(self.decisions, self.sizes):
      flat = flat * size + tf.argmax(masks[d], output_type=tf.int32)
    return tf.gather(tf.constant(self.values, tf.int32), flat)

  def prefix_mask(self, masks: Sequence[tf.Tensor]) -> Optional[tf.Tensor]:
    """A float32 [max] mask keeping the first `value(masks)` channels; None if constant."""
    if self.is_constant:
      return None
    return tf.sequence_mask(self.value(masks), self.max, dtype=tf.float32)


OP = 'op'
CHANNELS = 'channels'


class MaskContext:
  """What one supernet call knows about its architecture: op masks and channel masks.

  Values are looked up by key: `(OP, decision index)` for an op decision's mask and
  `(CHANNELS, id(table))` for the prefix mask of a width table (None for a fixed width). The
  channel masks are computed once, up front, outside any `tf.cond` or custom-gradient function.
  A rematerialized switch passes the tensors its branches read as explicit inputs of its
  recomputation (`restricted`, `tensors`, `with_tensors`): a tensor captured by closure inside
  nested conds and custom gradients gets no gradient and, in a `tf.function`, is not reachable
  from the backward pass's graph.

  Args:
    values: key -> tensor (or None for a fixed width).
  """

  def __init__(self, values: Dict[Tuple[str, int], Optional[tf.Tensor]]):
    self._values = dict(values)

  @classmethod
  def create(cls, masks: Sequence[tf.Tensor], tables: Sequence[Table]) -> 'MaskContext':
    """The context of one call: `masks` (one per decision) and the masks of all `tables`."""
    values = {(OP, i): m for i, m in enumerate(masks)}
    values.update({(CHANNELS, id(t)): t.prefix_mask(masks) for t in tables})
    return cls(values)

  def channels(self, table: Table) -> Optional[tf.Tensor]:
    """The prefix mask of `table` (None when the width is fixed)."""
    return self._values[(CHANNELS, id(table))]

  def op_mask(self, decision: int) -> tf.Tensor:
    return self._values[(OP, decision)]

  def restricted(self, keys: Set[Tuple[str, int]]) -> 'MaskContext':
    """Only the values of `keys` (what one op reads)."""
    return MaskContext({k: self._values[k] for k in keys})

  def _tensor_keys(self):
    return sorted((k for k, v in self._values.items() if v is not None), key=str)

  def tensors(self) -> List[tf.Tensor]:
    """The tensor values, in a fixed order."""
    return [self._values[k] for k in self._tensor_keys()]

  def differentiable(self) -> List[bool]:
    """For each of `tensors()`, whether it gets a gradient: op masks do, 0/1 channel masks not."""
    return [k[0] == OP for k in self._tensor_keys()]

  def with_tensors(self, tensors: Sequence[tf.Tensor]) -> 'MaskContext':
    """The same context with `tensors()` replaced by `tensors` (e.g. recomputation inputs)."""
    values = dict(self._values)
    values.update(zip(self._tensor_keys(), tensors))
    return MaskContext(values)
