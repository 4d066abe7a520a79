"""Cell supernets of NAS-Bench-201, DARTS/GDAS (incl. FRC) and SETN for GDAS, SETN and DARTS.

Every edge of every cell holds one instance of every op (`cell_search_ops`); the architecture
parameters are not part of the model: a forward pass receives, for each searched cell type
(`cell_layouts.CellLayout`, shared by every cell of that type), either

* mode 'mixture': coefficients [edges, ops]; edge e outputs Σ_k c[e, k] · op_k(x) over every
  op (DARTS first order; SETN's evaluator, Eq. 10; SETN-NON). 'none' contributes nothing;
* mode 'path': slot indices int32 [slots] and optional slot weights [slots, max candidates].
  Each slot runs only its selected candidate, inside a `tf.switch_case`, so the other ops
  cost nothing in the forward *and* the backward pass. With weights w (GDAS's straight-through
  one-hot, `w = one_hot - stop_gradient(p) + p`), a slot outputs
  w_k · op_k(x) + Σ_{i≠k} w_i: AutoDL's `forward_gdas` form, whose extra terms are 0 in the
  forward pass but pass gradients to every architecture parameter (AutoDL issue #36).
  Without weights the slot outputs op_k(x): a fixed architecture (SETN template training and
  candidate scoring, random search).

Macro skeletons follow AutoDL's search networks (anchors/cellsearch.md §1.1): NB201
`TinyNetworkGDAS` (stem 3×3 conv + BN; [C]×N, residual block, [2C]×N, residual block, [4C]×N;
BN + ReLU, global pooling, linear) and `NASNetworkGDAS` (stem 3C; preprocessing 1×1
ReLU-Conv-BN or FactorizedReduce; `multiplier` states concatenated; fixed GDAS reduction cell
for FRC). Every batch norm uses batch statistics; cell batch norms are not affine.
"""

import functools
from typing import Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from tunas_tf.layers import cell_search_ops as ops_lib
from tunas_tf.layers import initializers
from tunas_tf.models import cell_layouts
from tunas_tf.models.cell_layouts import CellLayout
from tunas_tf.space import cell as cell_lib
from tunas_tf.space.search_space import SearchSpace

MIXTURE = 'mixture'
PATH = 'path'


class SearchCell(keras.layers.Layer):
  """One cell holding every op on every edge.

  Args:
    layout: the cell type.
    channels: channels of every state.

  Call arguments (see the module docstring):
    inputs: list of `layout.num_inputs` tensors [batch, h, w, channels].
    mode: MIXTURE or PATH.
    values: MIXTURE: coefficients [edges, ops]; PATH: (indices [slots], weights or None).
  """

  def __init__(self, layout: CellLayout, channels: int, **kwargs):
    super().__init__(**kwargs)
    self.layout = layout
    self.channels = channels
    # Flat (edge-major) list: Keras tracks a list of layers, not a list of lists.
    self.edge_ops = [
        ops_lib.make_search_op(op, channels, channels, self._strides(e))
        for e in range(layout.num_edges) for op in layout.ops]
    self.built = True  # Sub-layers build on their first call (`CellSupernet.build_weights`).

  def _strides(self, edge: int) -> int:
    source = self.layout.edges[edge][1]
    return 2 if self.layout.reduction and source < self.layout.num_inputs else 1

  def _apply(self, edge: int, op: int, states: list) -> tf.Tensor:
    layer = self.edge_ops[edge * self.layout.num_ops + op]
    return ops_lib.fast_call(layer, states[self.layout.edges[edge][1]])

  def _output(self, states: list) -> tf.Tensor:
    concat = self.layout.concat
    return states[concat[0]] if len(concat) == 1 else tf.concat([states[c] for c in concat], -1)

  def call(self, inputs, mode: str = MIXTURE, values=None):
    if mode == MIXTURE:
      return self._mix(list(inputs), values)
    if mode == PATH:
      return self._single_path(list(inputs), *values)
    raise ValueError(f'unknown mode {mode!r}')

  def _mix(self, states: list, coefficients) -> tf.Tensor:
    layout = self.layout
    for node in range(layout.num_nodes):
      terms = []
      for e in layout.node_edges(node):
        for k, op in enumerate(layout.ops):
          if op != 'none':  # c · 0 adds nothing, and no gradient either.
            terms.append(coefficients[e, k] * self._apply(e, k, states))
      states.append(tf.add_n(terms))
    return self._output(states)

  def _single_path(self, states: list, indices, weights) -> tf.Tensor:
    layout = self.layout
    slots_by_node = [[] for _ in range(layout.num_nodes)]
    for s, (node, _) in enumerate(layout.slots):
      slots_by_node[node].append(s)
    for node in range(layout.num_nodes):
      terms = []
      for s in slots_by_node[node]:
        candidates = layout.slots[s][1]
        branches = [functools.partial(self._apply, e, k, states) for e, k in candidates]
        y = tf.switch_case(indices[s], branches)
        if weights is not None:
          w = weights[s, :len(candidates)]
          w_k = tf.gather(w, indices[s])
          y = w_k * y + (tf.reduce_sum(w) - w_k)
        terms.append(y)
      states.append(tf.add_n(terms))
    return self._output(states)


class CellSupernet(keras.Model):
  """The supernet of a cell space (see the module docstring).

  Args:
    space: a `nas_bench_201`, `darts`, `darts_frc` or `setn` space (any macro variant, e.g.
      `with_macro(space, channels=4, cells_per_stage=1)`).
    num_classes: logits.

  Call arguments:
    images: float32 [batch, h, w, 3].
    mode: MIXTURE or PATH.
    values: one entry per `self.layouts` item: MIXTURE coefficients [edges, ops]; PATH
      (indices int32 [slots], weights [slots, max candidates] or None).

  Returns:
    logits [batch, num_classes].
  """

  def __init__(self, space: SearchSpace, num_classes: int, **kwargs):
    kwargs.setdefault('name', f'{space.name}_supernet')
    super().__init__(**kwargs)
    self.space = space
    self.num_classes = num_classes
    self.layouts = cell_layouts.cell_layouts(space)
    self._layout_index = {l.name: i for i, l in enumerate(self.layouts)}
    spec = space.spec
    if isinstance(spec, cell_lib.NB201NetworkSpec):
      self._build_nb201(spec)
    else:
      self._build_nasnet(spec)
    self.head_bn = ops_lib.BatchStatNorm(affine=True)
    self.classifier = keras.layers.Dense(
        num_classes, kernel_initializer=initializers.classifier_initializer())

  def _stem(self, filters: int):
    self.stem_conv = keras.layers.Conv2D(filters, 3, padding='same', use_bias=False,
                                         kernel_initializer=initializers.conv_initializer())
    self.stem_bn = ops_lib.BatchStatNorm(affine=True)

  def _build_nb201(self, spec: cell_lib.NB201NetworkSpec) -> None:
    self._stem(spec.channels)
    self.body, self.body_kinds = [], []
    for stage in range(3):
      channels = spec.channels * 2 ** stage
      if stage:
        self.body.append(ops_lib.ResNetBasicBlock(channels, 2))
        self.body_kinds.append('resnet')
      for _ in range(spec.cells_per_stage):
        self.body.append(SearchCell(self.layouts[0], channels))
        self.body_kinds.append('cell')

  def _build_nasnet(self, spec: cell_lib.NASNetNetworkSpec) -> None:
    self._stem(spec.stem_multiplier * spec.channels)
    self.body, self.body_kinds, self.pre0, self.pre1 = [], [], [], []
    reduction_prev = False
    for channels, reduction in spec.layout():
      self.pre0.append(ops_lib.FactorizedReduce(channels, 2) if reduction_prev else
                       ops_lib.relu_conv_bn(channels, 1))
      self.pre1.append(ops_lib.relu_conv_bn(channels, 1))
      if reduction and spec.fixed_reduction:
        self.body.append(ops_lib.FixedReductionCell(channels))
        self.body_kinds.append('frc')
      else:
        layout = self.layouts[self._layout_index['reduce' if reduction else 'normal']]
        self.body.append(SearchCell(layout, channels))
        self.body_kinds.append(layout.name)
      reduction_prev = reduction

  def call(self, images, mode: str = MIXTURE, values=None):
    if values is None or len(values) != len(self.layouts):
      raise ValueError(f'expected {len(self.layouts)} per-cell-type values, got {values!r:.100}')
    x = self.stem_bn(self.stem_conv(images))
    if isinstance(self.space.spec, cell_lib.NB201NetworkSpec):
      for layer, kind in zip(self.body, self.body_kinds):
        x = layer(x) if kind == 'resnet' else layer([x], mode=mode, values=values[0])
    else:
      s0 = s1 = x
      for i, (layer, kind) in enumerate(zip(self.body, self.body_kinds)):
        p0, p1 = self.pre0[i](s0), self.pre1[i](s1)
        if kind == 'frc':
          out = layer(p0, p1)
        else:
          out = layer([p0, p1], mode=mode, values=values[self._layout_index[kind]])
        s0, s1 = s1, out
      x = s1
    x = tf.nn.relu(self.head_bn(x))
    return self.classifier(tf.reduce_mean(x, axis=[1, 2]))

  def build_weights(self, image_size: int) -> None:
    """Creates every weight with one (eager) mixture forward pass on zeros."""
    images = tf.zeros([2, image_size, image_size, 3])
    coefficients = [tf.ones([l.num_edges, l.num_ops]) for l in self.layouts]
    self(images, mode=MIXTURE, values=coefficients)

  # Architectures and probabilities -> forward values (TensorFlow, usable in a tf.function).

  def path_values(self, indices: tf.Tensor, weights: Optional[Sequence] = None) -> list:
    """PATH values of an architecture: `indices` int32 [num_decisions] of the space."""
    return [(slot_indices(l, indices), None if weights is None else weights[i])
            for i, l in enumerate(self.layouts)]

  def mixture_values(self, probs: Sequence[tf.Tensor]) -> list:
    """MIXTURE values from one probability vector per decision of the space."""
    return [mixture_coefficients(l, probs) for l in self.layouts]


def slot_indices(layout: CellLayout, indices: tf.Tensor) -> tf.Tensor:
  """int32 [slots] of an architecture (indices over all decisions), in the graph."""
  indices = tf.cast(indices, tf.int32)
  chosen = tf.gather(indices, list(layout.decisions))
  if layout.kind == cell_layouts.EDGE_KIND:
    return chosen
  op_pairs = tf.constant(layout.op_pairs, tf.int32)
  out = []
  for n, inputs in enumerate(layout.input_pairs):
    f = tf.gather(op_pairs, chosen[2 * n])
    ab = tf.gather(tf.constant(inputs, tf.int32), chosen[2 * n + 1])
    out.append(ab * layout.num_ops + f)
  return tf.concat(out, axis=0)


def mixture_coefficients(layout: CellLayout, probs: Sequence[tf.Tensor]) -> tf.Tensor:
  """float32 [edges, ops] coefficients (see `cell_layouts.mixture_coefficients`), in the graph."""
  mine = [probs[d] for d in layout.decisions]
  if layout.kind == cell_layouts.EDGE_KIND:
    return tf.stack(mine)
  a1, a2, nodes = cell_layouts.setn_pair_matrices(layout)
  rows = []
  for n, (b1, b2) in enumerate(nodes):
    h, q = mine[2 * n][tf.newaxis], mine[2 * n + 1][tf.newaxis]
    rows.append(tf.transpose(q @ b1) @ (h @ a1) + tf.transpose(q @ b2) @ (h @ a2))
  return tf.concat(rows, axis=0)


def check_supported(space: SearchSpace) -> None:
  """Raises a UserError unless `space` has a cell supernet."""
  cell_layouts.cell_layouts(space)


def num_weights(model: keras.Model) -> int:
  return int(sum(np.prod(v.shape) for v in model.trainable_variables))
