"""How the decisions of a cell space map onto a supernet's edges and ops (pure Python + NumPy).

A cell supernet holds, on every edge (target state ← source state) of a cell, one instance of
every op. Architecture parameters live per *decision* (named by its path), and two kinds of
cells turn decisions into edge weights:

* 'edge' (NAS-Bench-201, DARTS/GDAS): one decision per edge chooses its op. The mixture
  coefficient of (edge e, op k) is p_e(k); a single path computes op index_e on edge e.
* 'setn' (SETN §4): per node, an op-pair decision (f1, f2) with index(f1) <= index(f2) and an
  input-pair decision (I1, I2); the node is f1(I1) + f2(I2). SETN's relaxation (Eq. 10)
  weights op o on input t by w1(o)·P(I1 = t) + w2(o)·P(I2 = t), where w1(o) (w2(o)) sums the
  op-pair probabilities whose first (second) op is o; so a node is again a weighted sum of
  every op on every input edge, and only the per-edge coefficients differ from DARTS.

Single-path forwards use *slots*: a slot adds one op output chosen among its candidate
(edge, op) pairs. An 'edge' cell has one slot per edge (candidates: that edge's ops); a 'setn'
node has two slots (candidates: every op on every input edge of the node; a slot's local index
is input * num_ops + op).
"""

import dataclasses
from typing import Sequence

import numpy as np

from tunas_tf.errors import UserError
from tunas_tf.space import cell as cell_lib
from tunas_tf.space.search_space import SearchSpace

EDGE_KIND = 'edge'
SETN_KIND = 'setn'


@dataclasses.dataclass(frozen=True)
class CellLayout:
  """One searched cell type of a space (its α is shared by every cell of the type).

  Attributes:
    name: the decision-path prefix ('cell' for NB201, 'normal' / 'reduce' for NASNet cells).
    kind: EDGE_KIND or SETN_KIND.
    num_inputs: input states (1 for NB201, 2 for NASNet cells).
    edges: (target state, source state) of every edge; an 'edge' cell's edge e is decided by
      its e-th decision.
    ops: the op name of every column.
    concat: states concatenated into the cell output (one state for NB201).
    reduction: edges from the input states have stride 2.
    slots: per slot, (node, candidate (edge, op) pairs).
    decisions: indices (in `space.decisions`) of this cell's decisions, in order ('setn':
      ops then inputs of node 0, then of node 1, ...).
    op_pairs: 'setn' only: (first op, second op) column indices of every op-pair choice.
    input_pairs: 'setn' only: per node, (I1, I2) of every input-pair choice.
  """
  name: str
  kind: str
  num_inputs: int
  edges: tuple
  ops: tuple
  concat: tuple
  reduction: bool
  slots: tuple
  decisions: tuple
  op_pairs: tuple = ()
  input_pairs: tuple = ()

  @property
  def num_nodes(self) -> int:
    return len({t for t, _ in self.edges})

  @property
  def num_edges(self) -> int:
    return len(self.edges)

  @property
  def num_ops(self) -> int:
    return len(self.ops)

  @property
  def max_candidates(self) -> int:
    return max(len(c) for _, c in self.slots)

  def node_edges(self, node: int) -> tuple:
    """Indices of the edges into node `node` (state num_inputs + node), by source state."""
    target = self.num_inputs + node
    return tuple(e for e, (t, _) in enumerate(self.edges) if t == target)


def _edge_layout(space: SearchSpace, name: str, nodes: Sequence[dict], num_inputs: int,
                 concat: tuple, reduction: bool) -> CellLayout:
  edges, decisions, ops = [], [], None
  for n, node in enumerate(nodes):
    for key in sorted(node, key=lambda k: int(k.split('<-')[1])):
      target, source = (int(v) for v in key.split('<-'))
      d = space.decision(f'{name}/nodes/{n}/{key}')
      if ops is None:
        ops = tuple(d.oneof.choices)
      elif tuple(d.oneof.choices) != ops:
        raise UserError(f'Cell {name!r} of space {space.name!r} mixes op sets on its edges')
      edges.append((target, source))
      decisions.append(d.index)
  slots = tuple((edges[e][0] - num_inputs, tuple((e, k) for k in range(len(ops))))
                for e in range(len(edges)))
  return CellLayout(name, EDGE_KIND, num_inputs, tuple(edges), ops, tuple(concat), reduction,
                    slots, tuple(decisions))


def _setn_layout(space: SearchSpace, name: str, spec: cell_lib.SetnCellSpec,
                 reduction: bool) -> CellLayout:
  first = spec.nodes[0].ops.choices
  ops = tuple(o for o in cell_lib.SETN_OPS if any(o in pair for pair in first))
  op_pairs = tuple((ops.index(a), ops.index(b)) for a, b in first)
  edges, slots, decisions, input_pairs = [], [], [], []
  num_inputs = cell_lib.NUM_CELL_INPUTS
  for n, node in enumerate(spec.nodes):
    if tuple(node.ops.choices) != tuple(first):
      raise UserError(f'SETN cell {name!r} of space {space.name!r} mixes op sets')
    target = num_inputs + n
    offset = len(edges)
    edges += [(target, j) for j in range(target)]
    candidates = tuple((offset + t, k) for t in range(target) for k in range(len(ops)))
    slots += [(n, candidates), (n, candidates)]
    decisions += [space.decision(f'{name}/nodes/{n}/ops').index,
                  space.decision(f'{name}/nodes/{n}/inputs').index]
    input_pairs.append(tuple(tuple(p) for p in node.inputs.choices))
  return CellLayout(name, SETN_KIND, num_inputs, tuple(edges), ops, tuple(spec.concat),
                    reduction, tuple(slots), tuple(decisions), op_pairs, tuple(input_pairs))


def cell_layouts(space: SearchSpace) -> tuple:
  """The searched cell types of a cell space (NB201: 'cell'; NASNet: 'normal'[, 'reduce']).

  Raises:
    UserError: for a space that is not a NB201 / DARTS / SETN cell space.
  """
  spec = space.spec
  if isinstance(spec, cell_lib.NB201NetworkSpec):
    return (_edge_layout(space, 'cell', spec.cell.nodes, 1, (spec.cell.num_nodes - 1,),
                         False),)
  if isinstance(spec, cell_lib.NASNetNetworkSpec):
    layouts = []
    for name, cell_spec in (('normal', spec.normal), ('reduce', spec.reduce)):
      if cell_spec is None:
        continue
      if isinstance(cell_spec, cell_lib.SetnCellSpec):
        layouts.append(_setn_layout(space, name, cell_spec, name == 'reduce'))
      else:
        layouts.append(_edge_layout(space, name, cell_spec.nodes, cell_lib.NUM_CELL_INPUTS,
                                    cell_spec.concat, name == 'reduce'))
    return tuple(layouts)
  raise UserError(f'Space {space.name!r} ({space.family}) is not a cell space with a cell '
                  'supernet; cell spaces: nas_bench_201, darts, darts_frc, setn')


# Architectures -> slot indices, probabilities -> mixture coefficients (NumPy versions; the
# supernet has the TensorFlow ones).


def slot_indices(layout: CellLayout, indices: Sequence[int]) -> np.ndarray:
  """int32 [num_slots]: the local candidate index of every slot for an architecture.

  Args:
    layout: the cell layout.
    indices: the architecture's indices over *all* decisions of the space.
  """
  chosen = [int(indices[d]) for d in layout.decisions]
  if layout.kind == EDGE_KIND:
    return np.asarray(chosen, np.int32)
  out = []
  for n in range(len(layout.input_pairs)):
    f1, f2 = layout.op_pairs[chosen[2 * n]]
    a, b = layout.input_pairs[n][chosen[2 * n + 1]]
    out += [a * layout.num_ops + f1, b * layout.num_ops + f2]
  return np.asarray(out, np.int32)


def setn_pair_matrices(layout: CellLayout) -> tuple:
  """'setn' cells: (A1, A2) [num_op_pairs, num_ops] first/second-op indicators and, per node,
  (B1, B2) [num_input_pairs, num_inputs] first/second-input indicators (float32)."""
  pairs = np.asarray(layout.op_pairs)
  a1 = np.eye(layout.num_ops, dtype=np.float32)[pairs[:, 0]]
  a2 = np.eye(layout.num_ops, dtype=np.float32)[pairs[:, 1]]
  nodes = []
  for n, inputs in enumerate(layout.input_pairs):
    eye = np.eye(layout.num_inputs + n, dtype=np.float32)
    inputs = np.asarray(inputs)
    nodes.append((eye[inputs[:, 0]], eye[inputs[:, 1]]))
  return a1, a2, tuple(nodes)


def mixture_coefficients(layout: CellLayout, probs: Sequence[np.ndarray]) -> np.ndarray:
  """float32 [num_edges, num_ops] coefficients of the relaxed cell (DARTS / SETN Eq. 10).

  Args:
    layout: the cell layout.
    probs: one probability vector per decision of the *space*.
  """
  mine = [np.asarray(probs[d], np.float32) for d in layout.decisions]
  if layout.kind == EDGE_KIND:
    return np.stack(mine)
  a1, a2, nodes = setn_pair_matrices(layout)
  rows = []
  for n, (b1, b2) in enumerate(nodes):
    h, q = mine[2 * n], mine[2 * n + 1]
    rows.append(np.outer(q @ b1, h @ a1) + np.outer(q @ b2, h @ a2))
  return np.concatenate(rows).astype(np.float32)
