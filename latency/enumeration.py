"""Which units a (space, image size) needs: exactly the union over all its architectures."""

from typing import Any, Dict, Tuple

from latency import keys as keys_lib
from latency.lattice import Lattice, as_space
from tunas_tf.models.macs import DEFAULT_NUM_CLASSES
from tunas_tf.space import shapes as shapes_lib


def enumerate_units(space: Any, image_size: int, granularity: str = keys_lib.OP,
                    dtype: str = 'float32', num_classes: int = DEFAULT_NUM_CLASSES,
                    lattice: Lattice = None) -> Tuple[keys_lib.Unit, ...]:
  """Every unit any architecture of `space` at `image_size` can need, without duplicates.

  Derived from the decision structure (the `Lattice`), never by sampling architectures.

  Args:
    space: a mobile `SearchSpace` or its registered name.
    image_size: input height (= width).
    granularity: 'op' or 'block' (see `latency.keys`).
    dtype: the table's dtype.
    num_classes: classifier width.
    lattice: a prebuilt `Lattice` of (space, image_size), to save rebuilding it.

  Returns:
    The units in network order of first appearance.
  """
  keys_lib.check_granularity(granularity)
  keys_lib.check_dtype(dtype)
  lattice = lattice or Lattice(space, image_size)
  found: Dict[str, keys_lib.Unit] = {}
  for _, shape in lattice.all_shapes():
    for unit in keys_lib.layer_units(shape, granularity, dtype):
      found.setdefault(unit.key, unit)
  for state in lattice.final_states():
    unit = keys_lib.classifier_unit(state.size, state.filters, num_classes, dtype)
    found.setdefault(unit.key, unit)
  return tuple(found.values())


def arch_units(space: Any, arch: Any, image_size: int, granularity: str = keys_lib.OP,
               dtype: str = 'float32',
               num_classes: int = DEFAULT_NUM_CLASSES) -> Tuple[keys_lib.Unit, ...]:
  """The units of one architecture, in network order (repeats kept: each is paid for).

  Computed from `tunas_tf.space.shapes.layer_shapes` directly, independently of the lattice,
  so tests can check the two against each other.
  """
  layer_shapes = shapes_lib.layer_shapes(as_space(space), arch, image_size)
  units = [u for shape in layer_shapes for u in keys_lib.layer_units(shape, granularity, dtype)]
  last = layer_shapes[-1]
  units.append(keys_lib.classifier_unit(last.output_size, last.output_filters, num_classes,
                                        dtype))
  return tuple(units)


def key_counts(space: Any, image_size: int) -> Dict[str, int]:
  """Number of distinct keys per granularity, e.g. {'block': 2113, 'op': 611}."""
  lattice = Lattice(space, image_size)
  return {g: len(enumerate_units(space, image_size, g, lattice=lattice))
          for g in keys_lib.GRANULARITIES}
