"""The TuNAS one-shot supernet of a mobile search space (TuNAS `rematlib/mobile_model_v3`).

`MobileSupernet(space, ...)` holds the shared weights of every architecture of a mobile space,
allocated once at their largest sizes. It is called as `model((images, masks), training)`, with
one float32 [num_choices] mask per decision in `space.decisions` order (see
notes/SEARCH_INTERFACES.md):

* op decisions (tag 'op') weight a `Switch` over their choices: one-hot runs one op, op warmup's
  all-1/n runs every op and averages the outputs; single-choice op decisions need no switch;
* filter decisions (tag 'filters') are read through their argmax and become prefix channel
  masks (TuNAS channel masking); expansion widths are relative to the masked input width;
* masks of inactive decisions are ignored (their ops are off).

Every batch norm uses batch statistics, in training and at evaluation (TuNAS
`force_stateless_batch_norm`). `model.losses` holds the weight decay of the kernels the masks
use, L2(weight_decay / 2) on the masked kernels, scaled by the op weights of the switches above
them (TuNAS `_mask_regularizer`).

With one-hot masks of an architecture the supernet computes exactly `build_model(space, arch)`
with batch norm in training mode, once the stand-alone weights are copied in with
`copy_from_standalone` (and `copy_to_standalone` goes the other way).
"""

import dataclasses
from typing import Any, Optional, Sequence

import keras
import tensorflow as tf

from tunas_tf.errors import UserError
from tunas_tf.layers import blocks
from tunas_tf.layers import initializers
from tunas_tf.layers.masked import MaskedConv2D
from tunas_tf.models import macs
from tunas_tf.models import supernet_ops as ops_lib
from tunas_tf.models.supernet_widths import MaskContext, Table
from tunas_tf.space import registry
from tunas_tf.space import shapes as shapes_lib
from tunas_tf.space import specs
from tunas_tf.space.architecture import Architecture
from tunas_tf.space.schema import OneOf

CLASSIFIER_NAME = 'classifier'


def largest_architecture(space: Any) -> Architecture:
  """Every decision at its last choice that is not a skip: the widest, deepest child."""
  space = _get_space(space)
  indices = []
  for d in space.decisions:
    kept = [i for i, c in enumerate(d.oneof.choices) if not isinstance(c, specs.ZeroSpec)]
    indices.append(kept[-1] if kept else d.num_choices - 1)
  return space.canonical(Architecture(space.name, tuple(indices)))


def _get_space(space: Any):
  if isinstance(space, str):
    space = registry.get_space(space)
  if space.family != 'mobile':
    raise UserError(f'MobileSupernet needs a mobile search space; {space.name!r} is a '
                    f'{space.family!r} space')
  return space


@dataclasses.dataclass
class _Built:
  """An op with what follows from it: stride, output width, whether it may output zeros."""
  op: keras.layers.Layer
  strides: int
  width: Table
  has_zero: bool = False


class _Builder:
  """Turns an unresolved `MobileSpaceSpec` into supernet ops (one walk, paths as in `schema`)."""

  def __init__(self, space, options: blocks.ConvOptions, rematerialize: bool):
    self.decision_of = {d.path: d.index for d in space.decisions}
    self.base = space.spec.filters_base
    self.epsilon = options.batch_norm_epsilon
    # Whether switches built now rematerialize: only the outermost ones do. A switch inside a
    # rematerialized switch keeps no activations after the forward pass anyway (the outer one
    # recomputes it), and recomputing it again would run its ops a third time (and nested
    # tf.recompute_grad inside tf.cond breaks in graph mode).
    self.rematerialize = rematerialize
    self.tables = {}

  def use(self, table: Table) -> Table:
    self.tables[id(table)] = table
    return table

  def values(self, value: Any, path: str) -> Table:
    """The choices of `value` (a OneOf or a plain value) as a table."""
    if isinstance(value, OneOf):
      return Table.of_decision(self.decision_of[path], value.choices)
    return Table.constant(value)

  def network(self, spec: specs.MobileSpaceSpec):
    ops, width = [], self.use(Table.constant(shapes_lib.IMAGE_CHANNELS))
    for b, block in enumerate(spec.blocks):
      filters = self.use(self.values(block.filters, f'blocks/{b}/filters'))
      for l, layer in enumerate(block.layers):
        path = f'blocks/{b}/layers/{l}'
        built = self.layer(layer, path, path.replace('/', '_'), width, filters)
        ops.append(built.op)
        width = built.width
    return ops, width

  def layer(self, spec: Any, path: str, name: str, in_w: Table, out_w: Table) -> _Built:
    """Builds the op of `spec` at `path`; `name` is the stand-alone layer-name prefix."""
    if isinstance(spec, OneOf):
      return self._oneof(spec, path, name, in_w, out_w)
    if isinstance(spec, specs.ResidualSpec):
      return self._residual(spec, path, name, in_w, out_w)
    if isinstance(spec, specs.ZeroSpec):
      return _Built(ops_lib.Zero(name=f'{name}_zero'), 1, in_w, has_zero=True)
    if isinstance(spec, specs.GlobalAveragePoolSpec):
      return _Built(ops_lib.GlobalPool(name=f'{name}_pool'), 1, in_w)
    if isinstance(spec, specs.ConvSpec):
      return self._conv(spec, path, name, in_w, out_w)
    if isinstance(spec, specs.SeparableConvSpec):
      return self._separable(spec, path, name, in_w, out_w)
    if isinstance(spec, specs.DepthwiseBottleneckSpec):
      return self._bottleneck(spec, path, name, in_w, out_w)
    raise UserError(f'Layer {path!r}: the supernet cannot build a {type(spec).__name__}')

  def _oneof(self, spec: OneOf, path, name, in_w, out_w) -> _Built:
    rematerialize = self.rematerialize
    if len(spec.choices) > 1:
      self.rematerialize = False  # For the switches inside this one.
    try:
      built = [self.layer(c, f'{path}/{i}', name, in_w, out_w)
               for i, c in enumerate(spec.choices)]
    finally:
      self.rematerialize = rematerialize
    strides = {b.strides for b in built}
    if len(strides) > 1 or any(not b.width.same_as(built[0].width) for b in built):
      raise UserError(f'Decision {path!r}: its choices have different strides or output '
                      'widths, so the supernet cannot switch between them')
    op = ops_lib.maybe_choice(self.decision_of[path], [b.op for b in built], built[0].strides,
                              built[0].width.max, self.rematerialize, f'{name}_choice')
    return _Built(op, built[0].strides, built[0].width, any(b.has_zero for b in built))

  def _residual(self, spec, path, name, in_w, out_w) -> _Built:
    inner = self.layer(spec.layer, f'{path}/layer', name, in_w, out_w)
    same = in_w.map(lambda a, b: a == b, inner.width)
    if inner.strides == 1 and not same.is_constant:
      raise UserError(f'Layer {path!r}: a residual whose input and output widths depend on '
                      'different decisions is not supported by the supernet')
    residual = inner.strides == 1 and same.values[0]
    if inner.has_zero and not residual:
      raise UserError(f'Layer {path!r} may be skipped but changes the stride or the width; a '
                      'skipped layer must keep its input shape')
    op = ops_lib.Chain([inner.op], residual, name=f'{name}_residual')
    return _Built(op, inner.strides, inner.width)

  def _kernels(self, value, path: str):
    table = self.values(value, path)
    kernels = list(value.choices) if isinstance(value, OneOf) else [value]
    for k in kernels:
      if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise UserError(f'Decision {path!r}: kernel sizes must be positive integers, got {k!r}')
    return kernels, (table.decisions[0] if table.decisions else None)

  def _kernel_choice(self, make, value, path: str, strides: int, channels: int, name: str):
    """A `Choice` over `make(kernel, suffix)` for each kernel size (one op if fixed)."""
    kernels, decision = self._kernels(value, path)
    many = len(kernels) > 1
    branches = [make(k, f'_k{k}' if many else '') for k in kernels]
    return ops_lib.maybe_choice(decision, branches, strides, channels, self.rematerialize,
                                f'{name}_choice')

  def _conv(self, spec, path, name, in_w, out_w) -> _Built:
    make = lambda k, suffix: ops_lib.ConvBN(k, spec.strides, in_w, out_w, spec.activation,
                                            spec.use_batch_norm, self.epsilon,
                                            f'{name}_conv{suffix}', f'{name}_conv')
    op = self._kernel_choice(make, spec.kernel_size, f'{path}/kernel_size', spec.strides,
                             out_w.max, f'{name}_conv')
    return _Built(op, spec.strides, out_w)

  def _depthwise(self, spec, path, name, width):
    make = lambda k, suffix: ops_lib.DepthwiseBN(k, spec.strides, width, spec.activation,
                                                 self.epsilon, f'{name}_dw{suffix}',
                                                 f'{name}_dw')
    return self._kernel_choice(make, spec.kernel_size, f'{path}/kernel_size', spec.strides,
                               width.max, f'{name}_dw')

  def _project(self, name, in_w, out_w):
    return ops_lib.ConvBN(1, 1, in_w, out_w, '', True, self.epsilon, f'{name}_project',
                          f'{name}_project')

  def _separable(self, spec, path, name, in_w, out_w) -> _Built:
    chain = [self._depthwise(spec, path, name, in_w), self._project(name, in_w, out_w)]
    return _Built(ops_lib.Chain(chain, False, name=f'{name}_sepconv'), spec.strides, out_w)

  def _bottleneck(self, spec, path, name, in_w, out_w) -> _Built:
    base = self.base
    expansion = self.values(spec.expansion_filters, f'{path}/expansion_filters')
    mid = self.use(in_w.map(lambda cin, e: specs.expanded_filters(e, cin, base), expansion))
    chain = [ops_lib.ConvBN(1, 1, in_w, mid, spec.activation, True, self.epsilon,
                            f'{name}_expand', f'{name}_expand'),
             self._depthwise(spec, path, name, mid)]
    se = self._squeeze_excite(spec.use_squeeze_and_excite, f'{path}/use_squeeze_and_excite',
                              name, mid)
    if se is not None:
      chain.append(se)
    chain.append(self._project(name, mid, out_w))
    return _Built(ops_lib.Chain(chain, False, name=f'{name}_bottleneck'), spec.strides, out_w)

  def _squeeze_excite(self, value, path, name, mid: Table):
    choices = list(value.choices) if isinstance(value, OneOf) else [value]
    if any(not isinstance(c, bool) for c in choices):
      raise UserError(f'Decision {path!r}: use_squeeze_and_excite must be booleans, got '
                      f'{choices!r}')
    if choices == [False]:
      return None
    hidden = self.use(mid.map(lambda m: specs.se_filters(m, self.base)))
    branches = [ops_lib.SqueezeExciteOp(mid, hidden, f'{name}_se', f'{name}_se') if c else
                ops_lib.Identity(name=f'{name}_no_se') for c in choices]
    decision = self.decision_of[path] if isinstance(value, OneOf) else None
    return ops_lib.maybe_choice(decision, branches, 1, mid.max, self.rematerialize,
                                f'{name}_se_choice')


def _check_dropout(dropout_rate: Any) -> float:
  if isinstance(dropout_rate, bool) or not isinstance(dropout_rate, (int, float)) or not (
      0 <= dropout_rate < 1):
    raise UserError(f'dropout_rate must be a number in [0, 1), got {dropout_rate!r}')
  return float(dropout_rate)


class MobileSupernet(keras.Model):
  """The weight-sharing supernet of a mobile search space.

  Args:
    space: a mobile `SearchSpace` or its registered name (search or fixed reference spaces).
    num_classes: number of logits.
    image_size: height (= width) of the float32 RGB input.
    dropout_rate: dropout before the classifier, in [0, 1).
    weight_decay: kernels get L2(weight_decay / 2) on their masked values; 0 disables it.
    rematerialize: op switches recompute their branches in the backward pass (less memory
      under op warmup, one more forward pass of the enabled ops).
    name: model name; defaults to '<space>_supernet'.

  Call arguments:
    inputs: `(images, masks)`: images [batch, image_size, image_size, 3] float32 and a tuple
      with one float32 [num_choices] mask per decision, in `space.decisions` order.
    training: enables dropout (batch norm always uses batch statistics).

  Returns:
    Logits [batch, num_classes].

  References:
    Bender et al., "Can weight sharing outperform random architecture search? An investigation
    with TuNAS", CVPR 2020, sections 3.2 and 4.2 and appendix C.
  """

  def __init__(self, space: Any, num_classes: int, image_size: int, dropout_rate: float = 0.0,
               weight_decay: float = blocks.DEFAULT_WEIGHT_DECAY, rematerialize: bool = True,
               name: Optional[str] = None):
    space = _get_space(space)
    macs.check_num_classes(num_classes)
    dropout_rate = _check_dropout(dropout_rate)
    options = blocks.ConvOptions(weight_decay=weight_decay)
    # Validates the image size against the strides with the stand-alone builder's messages.
    shapes_lib.layer_shapes(space, largest_architecture(space), image_size)
    super().__init__(name=name or f'{space.name}_supernet')
    self.space = space
    self.num_classes, self.image_size = num_classes, image_size
    self.weight_decay, self.rematerialize = float(weight_decay), bool(rematerialize)
    builder = _Builder(space, options, self.rematerialize)
    self.body, self._last_width = builder.network(space.spec)
    self._tables = tuple(builder.tables.values())
    self.dropout = keras.layers.Dropout(dropout_rate, name=f'{CLASSIFIER_NAME}_dropout') if (
        dropout_rate > 0) else None
    self.classifier = MaskedConv2D(num_classes, 1, self._last_width.max, use_bias=True,
                                   kernel_initializer=initializers.classifier_initializer(),
                                   name=CLASSIFIER_NAME)
    self.built = True

  def check_masks(self, masks: Sequence[Any]) -> tuple:
    """`masks` as float32 tensors, checked against `space.decisions` (UserError if wrong)."""
    decisions = self.space.decisions
    if not isinstance(masks, (tuple, list)):
      raise UserError(f'masks must be a tuple with one tensor per decision of space '
                      f'{self.space.name!r} ({len(decisions)}), got {type(masks).__name__}')
    if len(masks) != len(decisions):
      raise UserError(f'Space {self.space.name!r} has {len(decisions)} decisions, so the '
                      f'supernet needs {len(decisions)} masks (in space.decisions order), got '
                      f'{len(masks)}')
    result = []
    for d, mask in zip(decisions, masks):
      mask = tf.convert_to_tensor(mask, tf.float32)
      if mask.shape.rank != 1 or mask.shape[0] not in (None, d.num_choices):
        raise UserError(f'Mask {d.index} of decision {d.path!r} must have shape '
                        f'[{d.num_choices}], got {mask.shape.as_list()}')
      result.append(mask)
    return tuple(result)

  def context(self, masks: Sequence[Any]) -> MaskContext:
    return MaskContext.create(self.check_masks(masks), self._tables)

  def call(self, inputs, training=None):
    if not isinstance(inputs, (tuple, list)) or len(inputs) != 2:
      raise UserError('MobileSupernet is called as model((images, masks), training=...), got '
                      f'{type(inputs).__name__}')
    images, masks = inputs
    ctx = self.context(masks)
    x = tf.convert_to_tensor(images, tf.float32)
    for op in self.body:
      x = op(x, ctx=ctx)
    if self.weight_decay > 0:
      self.add_loss(self._weight_decay_loss(ctx))
    if self.dropout is not None:
      x = self.dropout(x, training=training)
    x = self.classifier(x, input_mask=ctx.channels(self._last_width))
    if x.shape[1] == 1 and x.shape[2] == 1:
      return tf.reshape(x, [-1, self.num_classes])
    return tf.reduce_mean(x, axis=(1, 2))

  def _weight_decay_loss(self, ctx: MaskContext) -> tf.Tensor:
    one = tf.constant(1.0)
    terms = [t for op in self.body for t in op.weight_decay_terms(ctx, one)]
    return (self.weight_decay / 2) * tf.add_n(terms) if terms else tf.zeros(())

  def weight_decay_loss(self, masks: Sequence[Any]) -> tf.Tensor:
    """The weight decay `model.losses` holds after a call with `masks` (0 if disabled)."""
    if self.weight_decay == 0:
      return tf.zeros(())
    return self._weight_decay_loss(self.context(masks))

  def active_leaves(self, arch: Architecture) -> list:
    """(weight layer, stand-alone layer name) for every weight layer `arch` uses."""
    self.space.validate(arch)
    leaves = [leaf for op in self.body for leaf in op.leaves(arch.indices)]
    return leaves + [(self.classifier, CLASSIFIER_NAME)]
