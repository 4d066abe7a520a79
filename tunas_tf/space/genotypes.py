"""Genotypes of the cell spaces and their conversions (pure Python, no TensorFlow).

* `CellGraph`: a resolved cell as the Keras builder and the searchers see it: for each computed
  state, its (op, input state) edges. NB201 cells have one input state (0) and output their
  last node; NASNet cells have two (the outputs of the two previous cells) and concatenate
  `concat`. Edges whose op is 'none' are kept (they contribute zeros).
* `Genotype`: DARTS's `Genotype(normal, normal_concat, reduce, reduce_concat)` with two
  (op, input) pairs per node, flattened in node order, as DARTS and GDAS print them.
* `derive_darts_genotype`: GDAS/DARTS genotype derivation from architecture weights.
"""

import dataclasses
import math
from typing import Any, NamedTuple, Optional, Sequence

from tunas_tf.errors import UserError, unknown_name
from tunas_tf.space import cell
from tunas_tf.space.architecture import Architecture
from tunas_tf.space.search_space import SearchSpace

EDGES_PER_GENOTYPE_NODE = 2


@dataclasses.dataclass(frozen=True)
class CellGraph:
  """A resolved cell.

  Attributes:
    nodes: nodes[i] holds the (op name, input state) edges of state num_inputs + i.
    concat: the states whose channel-concatenation is the cell output (one state for NB201).
    num_inputs: number of input states (1 for NB201, 2 for NASNet cells).
  """
  nodes: tuple
  concat: tuple
  num_inputs: int


class Genotype(NamedTuple):
  """DARTS genotype: `normal` / `reduce` are ((op, input state), ...) with 2 pairs per node.

  For GDAS FRC (fixed reduction cell) `reduce` and `reduce_concat` are empty.
  """
  normal: tuple
  normal_concat: tuple
  reduce: tuple
  reduce_concat: tuple

  def to_dict(self) -> dict:
    return {'normal': [list(p) for p in self.normal], 'normal_concat': list(self.normal_concat),
            'reduce': [list(p) for p in self.reduce], 'reduce_concat': list(self.reduce_concat)}

  @classmethod
  def from_dict(cls, data: Any) -> 'Genotype':
    """Reads `to_dict` output (or DARTS-style lists); validates with `check_genotype`."""
    keys = cls._fields
    if not isinstance(data, dict) or set(data) != set(keys):
      raise UserError(f'A genotype needs exactly the keys {keys}, got {data!r:.200}')
    try:
      genotype = cls(*(tuple(tuple(p) if f in ('normal', 'reduce') else p for p in data[f])
                       for f in keys))
    except TypeError:
      raise UserError(f'Malformed genotype {data!r:.200}') from None
    return check_genotype(genotype)


def _check_pairs(pairs: Any, what: str) -> None:
  if len(pairs) % EDGES_PER_GENOTYPE_NODE:
    raise UserError(f'Genotype {what} needs 2 (op, input) pairs per node, got {len(pairs)} pairs')
  for n, pair in enumerate(pairs):
    node = n // EDGES_PER_GENOTYPE_NODE
    ok = (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[1], int) and
          not isinstance(pair[1], bool))
    if not ok:
      raise UserError(f'Genotype {what}[{n}] must be (op name, input state), got {pair!r}')
    op, source = pair
    if op not in cell.CELL_OPS:
      raise UserError(f'Unknown op {op!r} in genotype {what}[{n}]; known cell ops: '
                      f'{", ".join(cell.CELL_OPS)}')
    if not 0 <= source < cell.NUM_CELL_INPUTS + node:
      raise UserError(f'Genotype {what}[{n}] reads state {source}, but node {node} (state '
                      f'{cell.NUM_CELL_INPUTS + node}) can only read states 0..'
                      f'{cell.NUM_CELL_INPUTS + node - 1}')


def check_genotype(genotype: Genotype) -> Genotype:
  """Validates op names, input states and concat lists; returns `genotype`."""
  for what in ('normal', 'reduce'):
    pairs = getattr(genotype, what)
    _check_pairs(pairs, what)
    concat = getattr(genotype, f'{what}_concat')
    num_states = cell.NUM_CELL_INPUTS + len(pairs) // EDGES_PER_GENOTYPE_NODE
    if bool(pairs) != bool(concat) or any(not 0 <= c < num_states for c in concat):
      raise UserError(f'Genotype {what}_concat {concat!r} must list states of the '
                      f'{len(pairs) // 2}-node {what} cell (0..{num_states - 1})')
  if not genotype.normal:
    raise UserError('A genotype needs a normal cell')
  return genotype


def genotype_cell_graphs(genotype: Genotype) -> tuple:
  """(normal CellGraph, reduction CellGraph or None for FRC) of a genotype."""
  check_genotype(genotype)
  graphs = []
  for pairs, concat in ((genotype.normal, genotype.normal_concat),
                        (genotype.reduce, genotype.reduce_concat)):
    if not pairs:
      graphs.append(None)
      continue
    nodes = tuple(tuple(pairs[i:i + 2]) for i in range(0, len(pairs), 2))
    graphs.append(CellGraph(nodes, tuple(concat), cell.NUM_CELL_INPUTS))
  return tuple(graphs)


def nb201_cell_graph(arch: Architecture, num_nodes: int = 4) -> CellGraph:
  """The NB201 cell of `arch` (edges in NB201 order, 'none' edges included)."""
  cell.check_nb201_arch(arch, num_nodes)
  ops = iter(cell.NB201_OPS[i] for i in arch.indices)
  nodes = tuple(tuple((next(ops), j) for j in range(i)) for i in range(1, num_nodes))
  return CellGraph(nodes, (num_nodes - 1,), 1)


def _source(key: str) -> int:
  return int(key.split('<-')[1])


def _resolved_cell_graph(resolved: Any) -> Optional[CellGraph]:
  if resolved is None:
    return None
  if isinstance(resolved, cell.DartsCellSpec):
    nodes = tuple(tuple((op, _source(k)) for k, op in sorted(node.items(), key=lambda kv:
                                                            _source(kv[0])))
                  for node in resolved.nodes)
  elif isinstance(resolved, cell.SetnCellSpec):
    nodes = tuple(tuple(zip(node.ops, node.inputs)) for node in resolved.nodes)
  else:
    raise UserError(f'Expected a DARTS or SETN cell, got {type(resolved).__name__}')
  return CellGraph(nodes, tuple(resolved.concat), cell.NUM_CELL_INPUTS)


def nasnet_cell_graphs(space: SearchSpace, arch: Architecture) -> tuple:
  """(normal, reduction or None for FRC) `CellGraph`s of an architecture of a NASNet space."""
  spec = space.resolve(arch)
  if not isinstance(spec, cell.NASNetNetworkSpec):
    raise UserError(f'Space {space.name!r} is not a NASNet cell space (darts, setn)')
  return _resolved_cell_graph(spec.normal), _resolved_cell_graph(spec.reduce)


# DARTS / GDAS genotype derivation --------------------------------------------------------------


def softmax_rows(rows: Sequence[Sequence[float]]) -> list:
  """Row-wise softmax of a [edges, ops] matrix (architecture logits -> weights)."""
  result = []
  for row in rows:
    top = max(row)
    exps = [math.exp(float(v) - top) for v in row]
    total = sum(exps)
    result.append([e / total for e in exps])
  return result


def _as_rows(weights: Any, num_rows: int, num_ops: int, what: str) -> list:
  try:
    rows = [[float(w) for w in row] for row in weights]
  except TypeError:
    raise UserError(f'{what} must be a [{num_rows}, {num_ops}] matrix, got {weights!r:.100}'
                    ) from None
  shape_ok = len(rows) == num_rows and all(len(r) == num_ops for r in rows)
  if not shape_ok:
    raise UserError(f'{what} must have shape [{num_rows}, {num_ops}] (edges x ops), got '
                    f'{len(rows)} rows of lengths {sorted({len(r) for r in rows})}')
  if not all(math.isfinite(w) for r in rows for w in r):
    raise UserError(f'{what} contains non-finite values')
  return rows


def _derive_cell(rows: list, ops: Sequence[str], steps: int, distinct_inputs: bool) -> tuple:
  gene, start = [], 0
  for i in range(steps):
    n = cell.NUM_CELL_INPUTS + i
    # (weight, input, op index) over every non-'none' op of every incoming edge; Python's sort
    # is stable, so ties keep (input, op) order, as AutoDL's and DARTS's parsers do.
    cands = [(w, j, k) for j, row in enumerate(rows[start:start + n]) for k, w in enumerate(row)
             if ops[k] != 'none']
    start += n
    if distinct_inputs:
      best = [max((c for c in cands if c[1] == j), key=lambda c: c[0]) for j in range(n)]
      chosen = sorted(best, key=lambda c: -c[0])[:EDGES_PER_GENOTYPE_NODE]
    else:
      chosen = sorted(cands, key=lambda c: -c[0])[:EDGES_PER_GENOTYPE_NODE]
    gene += [(ops[k], j) for _, j, k in chosen]
  return tuple(gene)


def derive_darts_genotype(weights_normal: Any, weights_reduce: Any = None,
                          ops: Sequence[str] = cell.DARTS_OPS, steps: int = 4,
                          multiplier: int = 4, distinct_inputs: bool = False,
                          from_logits: bool = False) -> Genotype:
  """The discrete genotype of relaxed DARTS-space weights.

  Per node, the two strongest (op, input) pairs over all incoming edges excluding 'none'.
  GDAS's `_parse` (default, `distinct_inputs=False`) may pick two ops from the same input;
  DARTS's original rule (`distinct_inputs=True`) first picks the two inputs whose best
  non-'none' op is strongest, then that op of each.

  Args:
    weights_normal: [14, len(ops)] weights of the normal cell's edges, in decision order
      (softmax of the architecture parameters per edge, as GDAS and DARTS parse them).
    weights_reduce: the same for the reduction cell; None for GDAS FRC (fixed reduction cell).
    ops: op name of each column.
    steps: nodes per cell (B = 4).
    multiplier: number of final states concatenated (4).
    distinct_inputs: DARTS's rule instead of GDAS's.
    from_logits: apply a softmax per edge first.

  Returns:
    A `Genotype`, pairs of each node sorted by decreasing weight.
  """
  num_rows = sum(cell.NUM_CELL_INPUTS + i for i in range(steps))
  if not ops or any(op not in cell.CELL_OPS for op in ops):
    raise UserError(f'ops must be cell op names ({", ".join(cell.CELL_OPS)}), got {ops!r}')
  concat = tuple(range(cell.NUM_CELL_INPUTS + steps - multiplier, cell.NUM_CELL_INPUTS + steps))
  cells = []
  for what, weights in (('weights_normal', weights_normal), ('weights_reduce', weights_reduce)):
    if weights is None:
      cells.append(((), ()))
      continue
    rows = _as_rows(weights, num_rows, len(ops), what)
    rows = softmax_rows(rows) if from_logits else rows
    cells.append((_derive_cell(rows, tuple(ops), steps, distinct_inputs), concat))
  if not cells[0][0]:
    raise UserError('weights_normal is required')
  return check_genotype(Genotype(cells[0][0], cells[0][1], cells[1][0], cells[1][1]))


# Genotypes as architectures --------------------------------------------------------------------


def _decision_slot(path: str) -> tuple:
  """'normal/nodes/1/3<-0' -> ('normal', 1, '3<-0')."""
  cell_name, _, node, key = path.split('/')
  return cell_name, int(node), key


def genotype_to_darts_arch(space: SearchSpace, genotype: Genotype) -> Architecture:
  """The `darts` / `darts_frc` architecture with the genotype's ops and 'none' elsewhere.

  Raises:
    UserError: when a node takes two ops from one input (GDAS allows it): one op per edge
      cannot express that; build the model from the `Genotype` itself instead.
  """
  check_genotype(genotype)
  chosen = {}
  for cell_name in ('normal', 'reduce'):
    for n, (op, source) in enumerate(getattr(genotype, cell_name)):
      node = n // EDGES_PER_GENOTYPE_NODE
      slot = (cell_name, node, cell.edge_key(cell.NUM_CELL_INPUTS + node, source))
      if slot in chosen:
        raise UserError(f'Genotype {cell_name} node {node} uses input {source} twice '
                        f'({chosen[slot]}, {op}); a one-op-per-edge {space.name!r} '
                        'architecture cannot express it: build from the Genotype instead')
      chosen[slot] = op
  indices = []
  for d in space.decisions:
    op = chosen.pop(_decision_slot(d.path), 'none')
    if op not in d.oneof.choices:
      raise UserError(f'Op {op!r} is not a choice of {d.path!r} in space {space.name!r}')
    indices.append(d.oneof.choices.index(op))
  if chosen:
    raise UserError(f'Genotype edges {sorted(chosen)} have no decision in space {space.name!r}')
  return Architecture(space.name, tuple(indices))


def setn_genotype(space: SearchSpace, arch: Architecture) -> Genotype:
  """The DARTS-style genotype of a `setn` architecture: [(f1, I1), (f2, I2)] per node."""
  normal, reduce = nasnet_cell_graphs(space, arch)
  flat = lambda g: tuple(edge for node in g.nodes for edge in node)
  return Genotype(flat(normal), normal.concat, flat(reduce), reduce.concat)


def setn_architecture(space: SearchSpace, genotype: Genotype) -> Architecture:
  """The `setn` architecture of a genotype over SETN's ops (each node's pair ordered so that
  index(f1) <= index(f2), SETN Eq. 3)."""
  check_genotype(genotype)
  nodes = {}
  for cell_name in ('normal', 'reduce'):
    pairs = getattr(genotype, cell_name)
    for i in range(0, len(pairs), EDGES_PER_GENOTYPE_NODE):
      a, b = pairs[i], pairs[i + 1]
      for op, _ in (a, b):
        if op not in cell.SETN_OPS:
          raise UserError(f'Op {op!r} is not a SETN op; SETN ops: {", ".join(cell.SETN_OPS)}')
      if cell.SETN_OPS.index(a[0]) > cell.SETN_OPS.index(b[0]):
        a, b = b, a
      nodes[(cell_name, i // 2)] = {'ops': (a[0], b[0]), 'inputs': (a[1], b[1])}
  indices = []
  for d in space.decisions:
    cell_name, _, node, field = d.path.split('/')
    value = nodes.get((cell_name, int(node)), {}).get(field)
    if value not in d.oneof.choices:
      raise UserError(f'Genotype gives {value!r} for {d.path!r} of space {space.name!r}, '
                      f'which is not one of its choices')
    indices.append(d.oneof.choices.index(value))
  return Architecture(space.name, tuple(indices))


# Published genotypes ---------------------------------------------------------------------------

# As AutoDL's xautodl/nas_infer_model/DXYs/genotypes.py lists them (per-node pairs flattened).
# DARTS (2nd order) trains to 3,349,342 parameters at C=36, 20 cells (DARTS train.py's
# "param size = 3.349342MB"); GDAS's own older genotype file ends GDAS_V1's reduction cell with
# sep_conv_5x5 from state 2 instead of 1.
PUBLISHED_GENOTYPES = {
    'darts_v2': Genotype(
        normal=(('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0),
                ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0),
                ('skip_connect', 0), ('dil_conv_3x3', 2)),
        normal_concat=(2, 3, 4, 5),
        reduce=(('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2),
                ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2),
                ('skip_connect', 2), ('max_pool_3x3', 1)),
        reduce_concat=(2, 3, 4, 5)),
    'gdas_v1': Genotype(
        normal=(('skip_connect', 0), ('skip_connect', 1), ('skip_connect', 0),
                ('sep_conv_5x5', 2), ('sep_conv_3x3', 3), ('skip_connect', 0),
                ('sep_conv_5x5', 4), ('sep_conv_3x3', 3)),
        normal_concat=(2, 3, 4, 5),
        reduce=(('sep_conv_5x5', 0), ('sep_conv_3x3', 1), ('sep_conv_5x5', 2),
                ('sep_conv_5x5', 1), ('dil_conv_5x5', 2), ('sep_conv_3x3', 1),
                ('sep_conv_5x5', 0), ('sep_conv_5x5', 1)),
        reduce_concat=(2, 3, 4, 5)),
    'setn': Genotype(
        normal=(('skip_connect', 0), ('sep_conv_5x5', 1), ('sep_conv_5x5', 0),
                ('sep_conv_3x3', 1), ('sep_conv_5x5', 1), ('sep_conv_5x5', 3),
                ('max_pool_3x3', 1), ('conv_3x1_1x3', 4)),
        normal_concat=(2, 3, 4, 5),
        reduce=(('sep_conv_3x3', 0), ('sep_conv_5x5', 1), ('avg_pool_3x3', 0),
                ('sep_conv_5x5', 1), ('avg_pool_3x3', 0), ('sep_conv_5x5', 1),
                ('avg_pool_3x3', 0), ('skip_connect', 1)),
        reduce_concat=(2, 3, 4, 5)),
}


def get_published_genotype(name: str) -> Genotype:
  """A published DARTS-space genotype ('darts_v2', 'gdas_v1', 'setn')."""
  if name not in PUBLISHED_GENOTYPES:
    raise unknown_name('published genotype', name, PUBLISHED_GENOTYPES)
  return PUBLISHED_GENOTYPES[name]
