"""Cell search spaces: NAS-Bench-201, DARTS/GDAS (NASNet), SETN and PGNAS's multi-branch ResNet.

All are declared in the same `OneOf` language as the mobile spaces (pure Python, no TensorFlow);
the network skeleton (stem, stages, reductions, head) is data beside the decisions, so a variant
with other channels or cells per stage is `with_macro(space, channels=8, cells_per_stage=1)`.
Facts come from shared/docs/anchors/cellsearch.md (§1.1 for the AutoDL layouts) and the papers.

* `nas_bench_201`: one 4-node cell shared by all cells (as in NB201 and GDAS); decision paths
  'cell/nodes/{i-1}/{i}<-{j}' in NB201's edge order (1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2); one
  string token per node, e.g. 'c3-c3avg-skipc1c3'. `to_nb201_string` / `from_nb201_string`
  convert to NB201's '|op~0|+|op~0|op~1|+|op~0|op~1|op~2|' form.
* `darts` (`darts_frc`): the relaxed DARTS space searched by GDAS: one op per edge, 14 edges
  'i<-j' (j < i, states 0 and 1 are the cell inputs, 2..5 the nodes) in a normal and a
  reduction cell; with the GDAS FRC flag the reduction cell is fixed (no decisions).
  A derived DARTS `Genotype` (top-2 inputs per node) lives in `tunas_tf.space.genotypes`.
* `setn`: SETN §3-4.1 encoding: per node an ordered input pair drawn with replacement and an
  op pair (f1, f2) with index(f1) <= index(f2) over SETN's 6 ops; sampling every decision
  uniformly is exactly SETN's UniformSample / OrderedUniformSample (Eq. 2-3). Every node
  f(I) + g(J) has one encoding, except I != J with f == g, which has two. (SETN §3's count
  (1×3×6×10×(6^2)^4)^2 = 9.1e16 counts unordered pairs of distinct inputs times all 6^2 op
  pairs, which contradicts its own Eq. 2-3; this space has (4·9·16·25·21^4)^2 ≈ 10^18.9
  encodings of about 10^18.5 distinct architectures.)
* `pgnas_resnet`: PGNAS §2.2 keep/drop per (layer, kernel-size group) of a multi-branch
  ResNet prior; an architecture is a branch pruning mask.
"""

import dataclasses
import itertools
from typing import Any, Sequence

from tunas_tf.errors import UserError
from tunas_tf.space.architecture import Architecture
from tunas_tf.space.schema import OP_TAG, OneOf
from tunas_tf.space.search_space import SearchSpace

NB201_SPACE = 'nas_bench_201'
NB201_OPS = ('none', 'skip_connect', 'nor_conv_1x1', 'nor_conv_3x3', 'avg_pool_3x3')
DARTS_OPS = ('none', 'skip_connect', 'sep_conv_3x3', 'sep_conv_5x5', 'dil_conv_3x3',
             'dil_conv_5x5', 'avg_pool_3x3', 'max_pool_3x3')
# SETN §3 lists them in this order; the f1 <= f2 rule of Eq. 3 refers to it.
SETN_OPS = ('max_pool_3x3', 'avg_pool_3x3', 'skip_connect', 'sep_conv_3x3', 'sep_conv_5x5',
            'conv_3x1_1x3')
# Short labels of architecture strings (distinct, prefix-free within each op set, no '-').
OP_LABELS = {
    'none': 'none', 'skip_connect': 'skip', 'nor_conv_1x1': 'c1', 'nor_conv_3x3': 'c3',
    'avg_pool_3x3': 'avg', 'max_pool_3x3': 'max', 'sep_conv_3x3': 's3', 'sep_conv_5x5': 's5',
    'dil_conv_3x3': 'd3', 'dil_conv_5x5': 'd5', 'conv_3x1_1x3': 'c31',
}
CELL_OPS = tuple(OP_LABELS)
# Ops without weights (in a normal cell; a strided skip is a FactorizedReduce, with weights).
PARAMETER_FREE_OPS = ('none', 'skip_connect', 'avg_pool_3x3', 'max_pool_3x3')
NUM_CELL_INPUTS = 2  # NASNet cells read the outputs of the two previous cells.


def edge_key(to_node: int, from_node: int) -> str:
  """NB201/AutoDL edge name 'i<-j' (also the last component of the decision path)."""
  return f'{to_node}<-{from_node}'


def op_oneof(ops: Sequence[str]) -> OneOf:
  unknown = [o for o in ops if o not in OP_LABELS]
  if unknown:
    raise UserError(f'Unknown cell ops {unknown}; known cell ops: {", ".join(CELL_OPS)}')
  return OneOf(tuple(ops), OP_TAG, tuple(OP_LABELS[o] for o in ops))


def _check_positive(name: str, value: Any) -> None:
  if isinstance(value, bool) or not isinstance(value, int) or value < 1:
    raise UserError(f'{name} must be a positive integer, got {value!r}')


# NAS-Bench-201 ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class NB201CellSpec:
  """A NAS-Bench-201 cell: node 0 is the input, node i sums op_{i<-j}(node j) for j < i.

  Attributes:
    nodes: nodes[i - 1] maps edge_key(i, j) to the op (a `OneOf` in a space) for every j < i;
      the cell's output is the last node.
  """
  nodes: tuple

  @property
  def num_nodes(self) -> int:
    return len(self.nodes) + 1


@dataclasses.dataclass(frozen=True)
class NB201NetworkSpec:
  """NB201 macro skeleton (AutoDL `TinyNetwork`): 3×3 conv stem (C) + BN; three stages of N
  cells at C, 2C, 4C with a residual basic block (stride 2) before stages 2 and 3; BN + ReLU,
  global average pooling, linear classifier.

  Attributes:
    cell: the `NB201CellSpec` shared by every cell.
    channels: C (NB201: 16).
    cells_per_stage: N (NB201: 5, so 15 cells + 2 residual blocks).
  """
  cell: Any
  channels: int = 16
  cells_per_stage: int = 5

  def __post_init__(self):
    _check_positive('channels', self.channels)
    _check_positive('cells_per_stage', self.cells_per_stage)


def nas_bench_201_spec(channels: int = 16, cells_per_stage: int = 5,
                       num_nodes: int = 4) -> NB201NetworkSpec:
  nodes = tuple({edge_key(i, j): op_oneof(NB201_OPS) for j in range(i)}
                for i in range(1, num_nodes))
  return NB201NetworkSpec(NB201CellSpec(nodes), channels, cells_per_stage)


def nb201_edges(num_nodes: int = 4) -> tuple:
  """Edge keys in decision order: ('1<-0', '2<-0', '2<-1', '3<-0', '3<-1', '3<-2')."""
  return tuple(edge_key(i, j) for i in range(1, num_nodes) for j in range(i))


def check_nb201_arch(arch: Architecture, num_nodes: int = 4) -> None:
  """Raises a UserError unless `arch` is a well-formed `nas_bench_201` architecture."""
  if arch.space != NB201_SPACE:
    raise UserError(f'Architecture is for space {arch.space!r}, not {NB201_SPACE!r}')
  edges = nb201_edges(num_nodes)
  if len(arch.indices) != len(edges) or not all(0 <= i < len(NB201_OPS) for i in arch.indices):
    raise UserError(f'A {NB201_SPACE!r} architecture needs {len(edges)} op indices in '
                    f'0..{len(NB201_OPS) - 1}, got {arch.indices}')


def to_nb201_string(arch: Architecture, num_nodes: int = 4) -> str:
  """The NAS-Bench-201 genotype string, e.g. '|nor_conv_3x3~0|+|none~0|skip_connect~1|+...'."""
  check_nb201_arch(arch, num_nodes)
  ops = iter(NB201_OPS[i] for i in arch.indices)
  return '+'.join('|' + ''.join(f'{next(ops)}~{j}|' for j in range(i))
                  for i in range(1, num_nodes))


def from_nb201_string(text: str, num_nodes: int = 4) -> Architecture:
  """Parses a NAS-Bench-201 genotype string (edges in NB201's order) into an Architecture.

  Raises:
    UserError: naming the character position for a malformed string or an unknown op.
  """
  if not isinstance(text, str):
    raise UserError(f'A NAS-Bench-201 string must be a str, got {text!r}')
  text = text.strip()
  pos, indices = 0, []

  def fail(what: str, at: int):
    raise UserError(f'Malformed NAS-Bench-201 string {text!r} at position {at}: {what}; '
                    "expected the form '|op~0|+|op~0|op~1|+|op~0|op~1|op~2|'")

  for i in range(1, num_nodes):
    if i > 1:
      if text[pos:pos + 1] != '+':
        fail(f"expected '+' before node {i}, got {text[pos:pos + 1]!r}", pos)
      pos += 1
    if text[pos:pos + 1] != '|':
      fail(f"expected '|' opening node {i}, got {text[pos:pos + 1]!r}", pos)
    pos += 1
    for j in range(i):
      end = text.find('|', pos)
      if end < 0:
        fail(f'edge {edge_key(i, j)} is not closed by "|"', pos)
      op, sep, source = text[pos:end].partition('~')
      if not sep or source != str(j):
        fail(f'expected "op~{j}" for edge {edge_key(i, j)}, got {text[pos:end]!r}', pos)
      if op not in NB201_OPS:
        raise UserError(f'Unknown NAS-Bench-201 op {op!r} at position {pos} of {text!r} (edge '
                        f'{edge_key(i, j)}); known ops: {", ".join(NB201_OPS)}')
      indices.append(NB201_OPS.index(op))
      pos = end + 1
  if pos != len(text):
    fail(f'unexpected trailing text {text[pos:]!r}', pos)
  return Architecture(NB201_SPACE, tuple(indices))


def all_nb201_architectures(num_nodes: int = 4):
  """Yields all 5^6 = 15,625 NB201 architectures (index order, first edge slowest)."""
  for indices in itertools.product(range(len(NB201_OPS)), repeat=len(nb201_edges(num_nodes))):
    yield Architecture(NB201_SPACE, indices)


# DARTS / GDAS and SETN (NASNet macro) ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DartsCellSpec:
  """A relaxed DARTS cell: state 2 + i sums op_{2+i<-j}(state j) over all j < 2 + i.

  Attributes:
    nodes: nodes[i] maps edge_key(2 + i, j) to the op of that edge.
    concat: the states concatenated into the cell output (DARTS: the 4 nodes, 2..5).
  """
  nodes: tuple
  concat: tuple


@dataclasses.dataclass(frozen=True)
class SetnNodeSpec:
  """One SETN node H = f1(I1) + f2(I2).

  Attributes:
    ops: the pair (f1, f2); index(f1) <= index(f2) in `SETN_OPS` (SETN Eq. 3).
    inputs: the pair (I1, I2) of state indices, drawn with replacement (SETN Eq. 2).
  """
  ops: Any
  inputs: Any


@dataclasses.dataclass(frozen=True)
class SetnCellSpec:
  """A SETN cell: nodes[i] computes state 2 + i; `concat` as in `DartsCellSpec`."""
  nodes: tuple
  concat: tuple


@dataclasses.dataclass(frozen=True)
class NASNetNetworkSpec:
  """NASNet macro skeleton of GDAS/SETN (AutoDL `NASNetworkGDAS`): stem 3×3 conv (3C) + BN;
  cells [C]×N + [2C] + [2C]×(N−1) + [4C] + [4C]×(N−1), the two marked ones reduction cells;
  each cell preprocesses its two inputs (1×1 ReLU-Conv-BN, or FactorizedReduce after a
  reduction) and concatenates `multiplier` states; BN + ReLU, global pooling, linear head.

  Attributes:
    normal: the normal cell (`DartsCellSpec` or `SetnCellSpec`).
    reduce: the reduction cell; None when `fixed_reduction`.
    channels: C (GDAS search: 16).
    cells_per_stage: N (GDAS search: 2, so 6 cells).
    stem_multiplier: stem width is stem_multiplier * C (3).
    fixed_reduction: GDAS FRC: the reduction cell is the fixed GDAS reduction cell.
    eval_layout: the evaluation layout of DARTS / AutoDL `NASNetonCIFAR` instead,
      [C]×N + [2C] + [2C]×N + [4C] + [4C]×N (C=36, N=6: the 20-cell DARTS network).
  """
  normal: Any
  reduce: Any
  channels: int = 16
  cells_per_stage: int = 2
  stem_multiplier: int = 3
  fixed_reduction: bool = False
  eval_layout: bool = False

  def __post_init__(self):
    _check_positive('channels', self.channels)
    _check_positive('cells_per_stage', self.cells_per_stage)
    _check_positive('stem_multiplier', self.stem_multiplier)
    if self.fixed_reduction != (self.reduce is None):
      raise UserError('fixed_reduction=True needs reduce=None and False needs a reduction '
                      f'cell; got fixed_reduction={self.fixed_reduction!r}, '
                      f'reduce={type(self.reduce).__name__}')
    # The FRC cell uses grouped convolutions with 8 groups at 2C and 4C channels.
    if self.fixed_reduction and (2 * self.channels) % 8:
      raise UserError(f'fixed_reduction needs 2 * channels divisible by 8, got channels='
                      f'{self.channels!r}')

  def layout(self) -> tuple:
    """(cell channels C_i, is_reduction) of every cell, in order."""
    c, n = self.channels, self.cells_per_stage
    m = n if self.eval_layout else n - 1  # Normal cells after each reduction cell.
    return tuple([(c, False)] * n + [(2 * c, True)] + [(2 * c, False)] * m +
                 [(4 * c, True)] + [(4 * c, False)] * m)


def darts_cell_spec(ops: Sequence[str] = DARTS_OPS, steps: int = 4,
                    multiplier: int = 4) -> DartsCellSpec:
  nodes = tuple({edge_key(2 + i, j): op_oneof(ops) for j in range(2 + i)} for i in range(steps))
  return DartsCellSpec(nodes, tuple(range(2 + steps - multiplier, 2 + steps)))


def darts_spec(fixed_reduction: bool = False, channels: int = 16,
               cells_per_stage: int = 2) -> NASNetNetworkSpec:
  reduce = None if fixed_reduction else darts_cell_spec()
  return NASNetNetworkSpec(darts_cell_spec(), reduce, channels, cells_per_stage,
                           fixed_reduction=fixed_reduction)


def _pair_label(pair: tuple) -> str:
  return f'{OP_LABELS[pair[0]]}+{OP_LABELS[pair[1]]}'


def setn_node_spec(num_inputs: int, ops: Sequence[str] = SETN_OPS) -> SetnNodeSpec:
  op_pairs = tuple((a, b) for i, a in enumerate(ops) for b in ops[i:])
  input_pairs = tuple(itertools.product(range(num_inputs), repeat=2))
  return SetnNodeSpec(OneOf(op_pairs, OP_TAG, tuple(_pair_label(p) for p in op_pairs)),
                      OneOf(input_pairs, OP_TAG, tuple(f'@{a}{b}' for a, b in input_pairs)))


def setn_cell_spec(steps: int = 4) -> SetnCellSpec:
  nodes = tuple(setn_node_spec(NUM_CELL_INPUTS + i) for i in range(steps))
  return SetnCellSpec(nodes, tuple(range(NUM_CELL_INPUTS, NUM_CELL_INPUTS + steps)))


def setn_spec(channels: int = 16, cells_per_stage: int = 2) -> NASNetNetworkSpec:
  return NASNetNetworkSpec(setn_cell_spec(), setn_cell_spec(), channels, cells_per_stage)


# PGNAS multi-branch ResNet ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MultiBranchBlockSpec:
  """A residual block whose body sums one branch per kernel size s (ReLU-Conv_s-BN-ReLU-Conv_s-BN,
  shake-shake style); PGNAS keeps or drops each (block, kernel-size group).

  Attributes:
    filters: output channels.
    strides: stride of the first conv of every branch (and of the shortcut).
    keep: kernel size -> whether its branch is kept (a `OneOf((False, True))` in the space).
  """
  filters: int
  strides: int
  keep: dict


@dataclasses.dataclass(frozen=True)
class PgnasResNetSpec:
  """The prior super-network: 3×3 conv stem + BN, the blocks, BN + ReLU, pooling, linear head."""
  blocks: tuple
  stem_filters: int = 32

  def __post_init__(self):
    _check_positive('stem_filters', self.stem_filters)


def pgnas_resnet_spec(stage_filters: Sequence[int] = (32, 64, 128), blocks_per_stage: int = 3,
                      kernels: Sequence[int] = (1, 3, 5)) -> PgnasResNetSpec:
  _check_positive('blocks_per_stage', blocks_per_stage)
  blocks = []
  for stage, filters in enumerate(stage_filters):
    for b in range(blocks_per_stage):
      keep = {k: OneOf((False, True), OP_TAG, ('', f'k{k}')) for k in kernels}
      blocks.append(MultiBranchBlockSpec(filters, 2 if stage > 0 and b == 0 else 1, keep))
  return PgnasResNetSpec(tuple(blocks), stage_filters[0])


def pgnas_groups(spec: PgnasResNetSpec) -> tuple:
  """(block index, kernel size, input channels k^s_l) of every decision, in decision order.

  The input channels weight PGNAS's entropy term H(p) = Σ k^s_l p^s_l log p^s_l (Eq. 15).
  """
  groups, channels = [], spec.stem_filters
  for b, block in enumerate(spec.blocks):
    groups += [(b, k, channels) for k in sorted(block.keep)]
    channels = block.filters
  return tuple(groups)


# Variants --------------------------------------------------------------------------------------

_MACRO_FIELDS = {NB201NetworkSpec: ('channels', 'cells_per_stage'),
                 NASNetNetworkSpec: ('channels', 'cells_per_stage', 'stem_multiplier',
                                     'eval_layout')}


def with_macro(space: SearchSpace, **changes: Any) -> SearchSpace:
  """The same space (same name and decisions) with other macro parameters, e.g. C=8, N=1.

  Architectures of `space` are architectures of the variant, so tiny test or proxy networks
  and the reference network share one architecture format.
  """
  allowed = _MACRO_FIELDS.get(type(space.spec), ())
  bad = sorted(set(changes) - set(allowed))
  if bad:
    raise UserError(f'Space {space.name!r} has no macro parameter(s) {bad}; valid: '
                    f'{", ".join(allowed) or "none"}')
  spec = dataclasses.replace(space.spec, **changes)
  macro = ', '.join(f'{k}={v}' for k, v in sorted(changes.items()))
  return SearchSpace(space.name, spec, space.family, f'{space.description} [{macro}]')


def parameterized_ops(space: SearchSpace, arch: Architecture) -> int:
  """How many op decisions of `arch` chose an op with weights (not in PARAMETER_FREE_OPS)."""
  arch = space.validate(arch)
  return sum(1 for d, i in zip(space.decisions, arch.indices)
             if d.tag == OP_TAG and d.oneof.choices[i] not in PARAMETER_FREE_OPS)
