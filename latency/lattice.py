"""The layer chain of a mobile space as a small state machine (pure Python + numpy).

An architecture's cost is a sum over layer positions, and the shape of the layer at a position
depends only on (a) the choices of the decisions in its own group (e.g. 'blocks/3/layers/1':
expansion, kernel, SE, skip), (b) its block's output-filters choice, and (c) what flows into it:
the resolution and width produced by the layers before. So the network is a chain of *steps*
over *states* `(input size, input filters, current block's filters choice)`:

* a `BlockStep` at the start of each block picks the block's filters choice;
* a `LayerStep` maps (state, local combo) -> (LayerShape, next state).

This is exact, not sampled: the reachable states are propagated forward from the image, and
every (state, combo) pair is realisable by some architecture because decisions are independent.
The latency keys are the units of all (state, combo) shapes; the cost models precompute one
cost per (state, combo), evaluate architectures with a few vectorized gathers, and get the exact
min/max over the space with a dynamic programme over the states.
"""

import dataclasses
import itertools
import math
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from tunas_tf.errors import UserError
from tunas_tf.space import registry
from tunas_tf.space import schema
from tunas_tf.space import shapes as shapes_lib
from tunas_tf.space import specs
from tunas_tf.space.search_space import SearchSpace
from tunas_tf.space.shapes import LayerShape

_MAX_LOCAL_COMBOS = 100_000


@dataclasses.dataclass(frozen=True)
class State:
  """What flows into a layer: map size, width, and the current block's filters choice."""
  size: int
  filters: int
  block_choice: int


@dataclasses.dataclass(frozen=True)
class BlockStep:
  """Start of block `block`: the filters decision (None if fixed) picks `next_state[s, f]`."""
  block: int
  decision: Optional[int]
  values: Tuple[int, ...]
  next_state: np.ndarray  # [num input states, num filter choices] -> output state id.


@dataclasses.dataclass(frozen=True)
class LayerStep:
  """One layer position.

  Attributes:
    path: the layer's path, e.g. 'blocks/3/layers/1'.
    decisions: global indices of the decisions of the layer's group, in traversal order.
    radix: their numbers of choices.
    combo_of_raw: [prod(radix)] -> canonical combo id (inactive decisions ignored).
    combos: the canonical local index tuples, one per combo id.
    shapes: shapes[state][combo] is the layer's `LayerShape`.
    next_state: [num states, num combos] -> output state id.
  """
  path: str
  decisions: Tuple[int, ...]
  radix: Tuple[int, ...]
  combo_of_raw: np.ndarray
  combos: Tuple[Tuple[int, ...], ...]
  shapes: Tuple[Tuple[LayerShape, ...], ...]
  next_state: np.ndarray

  def combo_ids(self, indices: np.ndarray) -> np.ndarray:
    """Combo id of each row of `indices` ([n, num_decisions] ints)."""
    raw = np.zeros(indices.shape[0], dtype=np.int64)
    for d, r in zip(self.decisions, self.radix):
      raw = raw * r + indices[:, d]
    return self.combo_of_raw[raw]


def as_space(space: Any) -> SearchSpace:
  if isinstance(space, str):
    return registry.get_space(space)
  if not isinstance(space, SearchSpace):
    raise UserError(f'Expected a SearchSpace or a registered space name, got {space!r:.100}')
  return space


class Lattice:
  """The step chain of (space, image size); see the module docstring.

  Attributes:
    space: the `SearchSpace`.
    image_size: input height (= width).
    steps: `BlockStep`s and `LayerStep`s in network order.
    states: states[k] are the possible input states of steps[k]; states[-1] the final ones.
  """

  def __init__(self, space: Any, image_size: int):
    self.space = as_space(space)
    self.image_size = image_size
    spec = self.space.spec
    if self.space.family != 'mobile' or not isinstance(spec, specs.MobileSpaceSpec):
      raise UserError(f'Latency tables are defined for mobile spaces; {self.space.name!r} is a '
                      f'{self.space.family!r} space')
    # Validates the image size against the strides with shapes' own error message.
    shapes_lib.layer_shapes(self.space, self.space.canonical(
        _zero_arch(self.space)), image_size)
    self._by_path = {d.path: d for d in self.space.decisions}
    self._by_group = {}
    for d in self.space.decisions:
      self._by_group.setdefault(d.group, []).append(d)
    self.steps: List[Any] = []
    self.states: List[Tuple[State, ...]] = []
    self._build(spec)

  def _build(self, spec: specs.MobileSpaceSpec) -> None:
    states = (State(self.image_size, shapes_lib.IMAGE_CHANNELS, -1),)
    covered = set()
    for b, block in enumerate(spec.blocks):
      block_step, states = self._block_step(b, block, states)
      if block_step.decision is not None:
        covered.add(block_step.decision)
      for l, layer in enumerate(block.layers):
        step, states = self._layer_step(f'blocks/{b}/layers/{l}', layer, block_step, states,
                                        spec.filters_base)
        covered.update(step.decisions)
    self.states.append(states)
    missing = [d.path for d in self.space.decisions if d.index not in covered]
    if missing:
      raise UserError(f'Space {self.space.name!r}: decisions {missing} are neither a block\'s '
                      'filters nor inside a layer; latency tables cannot cost them')

  def _block_step(self, b: int, block: specs.Block, states: Sequence[State]):
    if isinstance(block.filters, schema.OneOf):
      decision = self._by_path[f'blocks/{b}/filters'].index
      values = tuple(block.filters.choices)
    else:
      decision, values = None, (block.filters,)
    out, ids = [], {}
    table = np.zeros((len(states), len(values)), dtype=np.int64)
    for s, state in enumerate(states):
      for f in range(len(values)):
        new = State(state.size, state.filters, f)
        table[s, f] = ids.setdefault(new, len(out))
        if table[s, f] == len(out):
          out.append(new)
    step = BlockStep(b, decision, values, table)
    self.steps.append(step)
    self.states.append(tuple(states))
    return step, tuple(out)

  def _local_combos(self, path: str, layer: Any):
    members = self._by_group.get(path, [])
    local = schema.decisions(layer)
    if len(local) != len(members):
      raise UserError(f'Layer {path!r}: expected its {len(members)} decisions inside the layer, '
                      f'found {len(local)}')
    index_of = {d.index: i for i, d in enumerate(members)}
    for d in members:
      if d.parent is not None and d.parent not in index_of:
        raise UserError(f'Decision {d.path!r} depends on a decision outside its layer; '
                        'latency tables need layers with self-contained decisions')
    radix = tuple(d.num_choices for d in members)
    if math.prod(radix) > _MAX_LOCAL_COMBOS:
      raise UserError(f'Layer {path!r} has {math.prod(radix)} local choice combinations; at '
                      f'most {_MAX_LOCAL_COMBOS} are supported')
    combos, combo_of_raw = [], []
    ids = {}
    for raw in itertools.product(*[range(r) for r in radix]):
      active = [True] * len(members)
      for i in reversed(range(len(members))):  # Parents follow their children (post-order).
        parent = members[i].parent
        if parent is not None:
          p = index_of[parent]
          active[i] = active[p] and raw[p] == members[i].parent_choice
      canonical = tuple(v if a else 0 for v, a in zip(raw, active))
      if canonical not in ids:
        ids[canonical] = len(combos)
        combos.append(canonical)
      combo_of_raw.append(ids[canonical])
    return members, radix, combos, np.asarray(combo_of_raw, dtype=np.int64)

  def _layer_step(self, path: str, layer: Any, block_step: BlockStep,
                  states: Sequence[State], base: int):
    members, radix, combos, combo_of_raw = self._local_combos(path, layer)
    resolved = [schema.resolve(layer, combo) for combo in combos]
    out, ids = [], {}
    all_shapes = []
    table = np.zeros((len(states), len(combos)), dtype=np.int64)
    for s, state in enumerate(states):
      row = []
      for c, spec in enumerate(resolved):
        # pylint: disable=protected-access
        # The single-layer walk of `shapes` (the same code `layer_shapes` runs per layer).
        shape = shapes_lib._layer_shape(path, spec, state.size, state.filters,
                                        block_step.values[state.block_choice], base)
        if shape.strides > 1 and shape.input_size < shape.strides:
          raise UserError(f'image_size {self.image_size} is too small: layer {path!r} has '
                          f'stride {shape.strides} but receives a {shape.input_size}x'
                          f'{shape.input_size} map')
        row.append(shape)
        new = State(shape.output_size, shape.output_filters, state.block_choice)
        if new not in ids:
          ids[new] = len(out)
          out.append(new)
        table[s, c] = ids[new]
      all_shapes.append(tuple(row))
    step = LayerStep(path, tuple(d.index for d in members), radix, combo_of_raw, tuple(combos),
                     tuple(all_shapes), table)
    self.steps.append(step)
    self.states.append(tuple(states))
    return step, tuple(out)

  @property
  def layer_steps(self) -> Tuple[LayerStep, ...]:
    return tuple(s for s in self.steps if isinstance(s, LayerStep))

  def final_states(self) -> Tuple[State, ...]:
    return self.states[-1]

  def walk(self, indices: np.ndarray):
    """Yields (step, state ids, combo ids or filter choices) of each step for rows of `indices`.

    Args:
      indices: [n, num_decisions] int array (validated by the caller).

    Yields:
      For each step, the input state ids [n] and the choice ids [n]; then (None, final state
      ids, None).
    """
    state = np.zeros(indices.shape[0], dtype=np.int64)
    for step in self.steps:
      if isinstance(step, BlockStep):
        choice = (indices[:, step.decision] if step.decision is not None else
                  np.zeros_like(state))
      else:
        choice = step.combo_ids(indices)
      yield step, state, choice
      state = step.next_state[state, choice]
    yield None, state, None

  def all_shapes(self):
    """Every (layer step, LayerShape) pair any architecture can have (with repeats)."""
    for step in self.layer_steps:
      for row in step.shapes:
        for shape in row:
          yield step, shape


def _zero_arch(space: SearchSpace):
  from tunas_tf.space.architecture import Architecture  # pylint: disable=g-import-not-at-top
  return Architecture(space.name, (0,) * space.num_decisions)


def check_indices_2d(space: SearchSpace, indices: Any) -> np.ndarray:
  """`indices` as an [n, num_decisions] int64 array; UserError for bad shapes or values."""
  array = np.asarray(indices)
  if array.ndim == 1:
    array = array[None]
  if array.ndim != 2 or array.shape[1] != space.num_decisions:
    raise UserError(f'Space {space.name!r} has {space.num_decisions} decisions; expected '
                    f'indices of shape [n, {space.num_decisions}], got {array.shape}')
  if array.size and not np.issubdtype(array.dtype, np.integer):
    raise UserError(f'Architecture indices must be integers, got dtype {array.dtype}')
  array = array.astype(np.int64, copy=False)
  limits = np.asarray([d.num_choices for d in space.decisions], dtype=np.int64)
  bad = (array < 0) | (array >= limits)
  if bad.any():
    row, col = map(int, np.argwhere(bad)[0])
    d = space.decisions[col]
    raise UserError(f'Index {int(array[row, col])} (row {row}) out of range for decision '
                    f'{d.path!r} of space {space.name!r}: valid indices are '
                    f'0..{d.num_choices - 1}')
  return array
