"""Stand-alone Keras models of cell-space architectures (NAS-Bench-201, DARTS/GDAS, SETN, PGNAS).

`build_cell_model(space, arch)` builds a functional model of standard layers (plus `Zero`) from
the space's macro spec and the architecture's cells (`tunas_tf.space.genotypes.CellGraph`), so
it trains with Keras `fit` and exports with `tunas_tf.export` like the mobile models.

Layer names: stem 'stem_conv' / 'stem_bn'; cell i (AutoDL's numbering, NB201 residual blocks
included) 'cells_{i}_...', its edge j → s with op o 'cells_{i}_e{s}_{j}_{o}'; head 'lastact_bn',
'lastact_relu', 'global_pool', 'classifier'. PGNAS blocks are 'blocks_{b}_k{s}_...'.
"""

from typing import Any, Optional, Union

import keras

from tunas_tf.errors import UserError
from tunas_tf.layers import cell_ops
from tunas_tf.layers import initializers
from tunas_tf.layers.blocks import ConvOptions
from tunas_tf.models import macs
from tunas_tf.space import cell as cell_lib
from tunas_tf.space import genotypes
from tunas_tf.space import registry
from tunas_tf.space.architecture import Architecture
from tunas_tf.space.genotypes import CellGraph, Genotype
from tunas_tf.space.search_space import SearchSpace

INPUT_NAME = 'image'
MIN_IMAGE_SIZE = 8  # Two stride-2 stages.
IMAGE_CHANNELS = 3


def _check_image_size(image_size: Any) -> int:
  if isinstance(image_size, bool) or not isinstance(image_size, int) or (
      image_size < MIN_IMAGE_SIZE):
    raise UserError(f'image_size must be an integer >= {MIN_IMAGE_SIZE}, got {image_size!r}')
  return image_size


def _stem(x, filters: int, options: ConvOptions):
  x = keras.layers.Conv2D(filters, 3, padding='same', use_bias=False,
                          kernel_initializer=initializers.conv_initializer(),
                          kernel_regularizer=initializers.kernel_regularizer(
                              options.weight_decay), name='stem_conv')(x)
  return options.batch_norm('stem_bn')(x)


def _head(x, num_classes: int, options: ConvOptions):
  """BN + ReLU ('lastact'), global average pooling, linear classifier -> logits."""
  x = options.batch_norm('lastact_bn')(x)
  x = keras.layers.ReLU(name='lastact_relu')(x)
  x = keras.layers.GlobalAveragePooling2D(name='global_pool')(x)
  return keras.layers.Dense(num_classes, kernel_initializer=initializers.classifier_initializer(),
                            kernel_regularizer=initializers.kernel_regularizer(
                                options.weight_decay), name='classifier')(x)


def build_cell(inputs: list, graph: CellGraph, filters: int, reduction: bool,
               options: ConvOptions, name: str):
  """Applies one cell to its input states.

  Args:
    inputs: the `graph.num_inputs` input tensors, all with `filters` channels.
    graph: the cell.
    filters: channels of every state.
    reduction: whether edges from the input states have stride 2.
    options: convolution settings.
    name: layer-name prefix.

  Returns:
    The cell output: the concatenation of `graph.concat` states.
  """
  states = list(inputs)
  for i, edges in enumerate(graph.nodes):
    state = graph.num_inputs + i
    terms = []
    for op, source in edges:
      if op == 'none':  # Adds zeros: dropped, unless no edge is left (below).
        continue
      strides = 2 if reduction and source < graph.num_inputs else 1
      terms.append(cell_ops.apply_cell_op(op, states[source], filters, strides, options,
                                          f'{name}_e{state}_{source}_{op}'))
    if not terms:
      node = cell_ops.Zero(filters, 2 if reduction else 1, name=f'{name}_n{state}_zero')(states[0])
    elif len(terms) == 1:
      node = terms[0]
    else:
      node = keras.layers.Add(name=f'{name}_n{state}_add')(terms)
    states.append(node)
  if len(graph.concat) == 1:
    return states[graph.concat[0]]
  return keras.layers.Concatenate(name=f'{name}_concat')([states[c] for c in graph.concat])


def _nb201_body(x, spec: cell_lib.NB201NetworkSpec, graph: CellGraph, options: ConvOptions):
  x = _stem(x, spec.channels, options)
  index = 0
  for stage in range(3):
    filters = spec.channels * 2 ** stage
    if stage:
      x = cell_ops.resnet_basic_block(x, filters, 2, options, f'cells_{index}')
      index += 1
    for _ in range(spec.cells_per_stage):
      x = build_cell([x], graph, filters, False, options, f'cells_{index}')
      index += 1
  return x


def _nasnet_body(x, spec: cell_lib.NASNetNetworkSpec, normal: CellGraph,
                 reduce: Optional[CellGraph], options: ConvOptions):
  s0 = s1 = _stem(x, spec.stem_multiplier * spec.channels, options)
  reduction_prev = False
  for i, (filters, reduction) in enumerate(spec.layout()):
    name = f'cells_{i}'
    if reduction_prev:
      p0 = cell_ops.factorized_reduce(s0, filters, 2, options, f'{name}_pre0')
    else:
      p0 = cell_ops.relu_conv_bn(s0, filters, 1, 1, options, f'{name}_pre0')
    p1 = cell_ops.relu_conv_bn(s1, filters, 1, 1, options, f'{name}_pre1')
    if reduction and reduce is None:
      out = cell_ops.gdas_reduction_cell(p0, p1, filters, options, f'{name}_frc')
    else:
      out = build_cell([p0, p1], reduce if reduction else normal, filters, reduction, options,
                       name)
    s0, s1, reduction_prev = s1, out, reduction
  return s1


def _nasnet_graphs(space: SearchSpace, arch: Union[Architecture, Genotype]) -> tuple:
  spec = space.spec
  if isinstance(arch, Genotype):
    normal, reduce = genotypes.genotype_cell_graphs(arch)
    if (reduce is None) != spec.fixed_reduction:
      raise UserError(f'Space {space.name!r} has fixed_reduction={spec.fixed_reduction}, but '
                      f'the genotype {"has no" if reduce is None else "has a"} reduction cell')
    return normal, reduce
  return genotypes.nasnet_cell_graphs(space, space.validate(arch))


def _multi_branch_block(x, block: cell_lib.MultiBranchBlockSpec, options: ConvOptions,
                        name: str):
  terms = []
  for k in sorted(block.keep):
    if block.keep[k]:
      y = cell_ops.relu_conv_bn(x, block.filters, k, block.strides, options, f'{name}_k{k}_a')
      terms.append(cell_ops.relu_conv_bn(y, block.filters, k, 1, options, f'{name}_k{k}_b'))
  shortcut = x
  if block.strides > 1:
    shortcut = keras.layers.AveragePooling2D(block.strides, padding='same',
                                             name=f'{name}_down_pool')(x)
  if block.strides > 1 or x.shape[-1] != block.filters:
    shortcut = cell_ops.factorized_reduce(shortcut, block.filters, 1, options, f'{name}_down')
  if not terms:  # Every branch dropped: the block is its shortcut.
    return shortcut
  return keras.layers.Add(name=f'{name}_add')([shortcut] + terms)


def _pgnas_body(x, spec: cell_lib.PgnasResNetSpec, options: ConvOptions):
  x = _stem(x, spec.stem_filters, options)
  for b, block in enumerate(spec.blocks):
    x = _multi_branch_block(x, block, options, f'blocks_{b}')
  return x


def build_cell_model(space: Union[str, SearchSpace], arch: Union[Architecture, Genotype],
                     num_classes: int = 10, image_size: int = 32,
                     weight_decay: float = cell_ops.CELL_WEIGHT_DECAY,
                     name: Optional[str] = None) -> keras.Model:
  """Builds the stand-alone classifier of a cell-space architecture.

  Args:
    space: a cell or PGNAS `SearchSpace` (e.g. `with_macro(get_space('nas_bench_201'),
      channels=8, cells_per_stage=1)`) or a registered name.
    arch: an `Architecture` of `space`; for `darts` / `darts_frc` (and `setn`) also a
      `Genotype` (e.g. from `derive_darts_genotype`, or a published DARTS/GDAS genotype).
    num_classes: number of logits.
    image_size: height (= width) of the float32 RGB input.
    weight_decay: L2(weight_decay / 2) on every kernel (NB201/GDAS SGD weight decay 5e-4).
    name: model name; defaults to the space name.

  Returns:
    A functional `keras.Model` mapping [batch, image_size, image_size, 3] float32 images to
    [batch, num_classes] logits.

  Raises:
    UserError: for a non-cell space, a foreign architecture, bad sizes or settings.
  """
  if isinstance(space, str):
    space = registry.get_space(space)
  macs.check_num_classes(num_classes)
  _check_image_size(image_size)
  options = cell_ops.cell_conv_options(weight_decay)
  spec = space.spec
  if isinstance(arch, Genotype) and not isinstance(spec, cell_lib.NASNetNetworkSpec):
    raise UserError(f'A Genotype can only be built in a NASNet cell space (darts, darts_frc, '
                    f'setn), not {space.name!r}')
  inputs = keras.Input((image_size, image_size, IMAGE_CHANNELS), dtype='float32',
                       name=INPUT_NAME)
  if isinstance(spec, cell_lib.NB201NetworkSpec):
    graph = genotypes.nb201_cell_graph(space.validate(arch), spec.cell.num_nodes)
    x = _nb201_body(inputs, spec, graph, options)
  elif isinstance(spec, cell_lib.NASNetNetworkSpec):
    x = _nasnet_body(inputs, spec, *_nasnet_graphs(space, arch), options)
  elif isinstance(spec, cell_lib.PgnasResNetSpec):
    x = _pgnas_body(inputs, space.resolve(arch), options)
  else:
    raise UserError(f'Space {space.name!r} is a {space.family!r} space; build_cell_model '
                    'builds cell and PGNAS spaces (use tunas_tf.models.build_model)')
  return keras.Model(inputs, _head(x, num_classes, options), name=name or space.name)


def build_pgnas_resnet(space: Union[str, SearchSpace], arch: Architecture, num_classes: int = 10,
                       image_size: int = 32, weight_decay: float = cell_ops.CELL_WEIGHT_DECAY,
                       name: Optional[str] = None) -> keras.Model:
  """The pruned multi-branch ResNet of a PGNAS keep mask (a `pgnas_resnet` architecture).

  Kept (block, kernel) branches are ReLU-Conv_k-BN-ReLU-Conv_k-BN; a block whose branches are
  all dropped is its shortcut (identity, or 2×2 average pool + 1×1 conv + BN when it strides or
  widens). Arguments as `build_cell_model`.
  """
  if isinstance(space, str):
    space = registry.get_space(space)
  if not isinstance(space.spec, cell_lib.PgnasResNetSpec):
    raise UserError(f'Space {space.name!r} is not a PGNAS multi-branch ResNet space')
  return build_cell_model(space, arch, num_classes, image_size, weight_decay, name)
