"""The ops of a mobile supernet, built from the (unresolved) layer specs.

Every op is a Keras layer with the same three members, so `supernet.py` can treat a network as a
tree of them:

* `call(x, ctx)`: the forward pass, reading the masks of a `MaskContext`;
* `weight_decay_terms(ctx, scale)`: the sum of squares of every masked kernel, each times the
  product of the op weights of the switches above it (TuNAS `_mask_regularizer`: an op that is
  off is not decayed; during op warmup its decay is scaled by 1/n);
* `leaves(indices)`: (weight layer, stand-alone layer name) for the weight layers an
  architecture uses, to copy weights to and from `build_model(space, arch)`;
* `mask_keys()`: the `MaskContext` keys the op reads (a rematerialized switch passes exactly
  those tensors into its recomputation).

Op collapsing (TuNAS section 3.2): a bottleneck has one expand and one project 1×1 conv at the
largest width, shared by every kernel size and expansion ratio (expansions are channel masks);
its depthwise conv is a `Switch` over separate depthwise conv + batch norm layers, one per
kernel size; squeeze-and-excite on/off is a `Switch` between the SE module and the identity.
"""

from typing import Optional, Sequence

import keras
import tensorflow as tf

from tunas_tf.layers import initializers
from tunas_tf.layers.activations import activation_layer
from tunas_tf.layers.masked import MaskedConv2D, MaskedDepthwiseConv2D, StatelessBatchNorm
from tunas_tf.layers.masked_squeeze_excite import MaskedSqueezeExcite
from tunas_tf.layers.switch import Switch
from tunas_tf.models.supernet_widths import CHANNELS, OP, MaskContext, Table
from tunas_tf.space import specs

# Activations with f(0) = 0 keep masked-out channels at zero; others need masking again.
_ZERO_PRESERVING = (specs.RELU, specs.RELU6, specs.HSWISH)


def _channels(table: Table):
  return (CHANNELS, id(table))


def _square_sum(kernel: tf.Tensor) -> tf.Tensor:
  return tf.reduce_sum(tf.square(kernel))


class ConvBN(keras.layers.Layer):
  """k×k conv + [stateless batch norm] + activation between two masked widths.

  Args:
    kernel_size: kernel size.
    strides: stride.
    in_width: width table of the input.
    out_width: width table of the output.
    activation: spec activation name, '' for none.
    use_batch_norm: batch norm after the conv (else the conv has a bias).
    epsilon: batch norm epsilon.
    name: Keras name of the conv (the batch norm gets `name`_bn).
    standalone_name: name of the matching stand-alone conv layer.
  """

  def __init__(self, kernel_size: int, strides: int, in_width: Table, out_width: Table,
               activation: str, use_batch_norm: bool, epsilon: float, name: str,
               standalone_name: str):
    super().__init__(name=f'{name}_op')
    self.in_width, self.out_width = in_width, out_width
    self.standalone_name = standalone_name
    self.conv = MaskedConv2D(out_width.max, kernel_size, in_width.max, strides,
                             use_bias=not use_batch_norm,
                             kernel_initializer=initializers.conv_initializer(), name=name)
    self.bn = StatelessBatchNorm(out_width.max, epsilon, name=f'{name}_bn') if (
        use_batch_norm) else None
    self.activation = activation
    self.act = activation_layer(activation, f'{name}_act') if activation else None
    self.built = True

  def call(self, x, ctx: MaskContext):
    in_mask, out_mask = ctx.channels(self.in_width), ctx.channels(self.out_width)
    y = self.conv(x, input_mask=in_mask, output_mask=out_mask)
    if self.bn is not None:
      y = self.bn(y, channel_mask=out_mask)
    if self.act is not None:
      y = self.act(y)
      if out_mask is not None and self.activation not in _ZERO_PRESERVING:
        y = y * out_mask
    return y

  def weight_decay_terms(self, ctx: MaskContext, scale):
    kernel = self.conv.masked_kernel(ctx.channels(self.in_width), ctx.channels(self.out_width))
    return [scale * _square_sum(kernel)]

  def mask_keys(self):
    return {_channels(self.in_width), _channels(self.out_width)}

  def leaves(self, unused_indices):
    result = [(self.conv, self.standalone_name)]
    if self.bn is not None:
      result.append((self.bn, f'{self.standalone_name}_bn'))
    return result


class DepthwiseBN(keras.layers.Layer):
  """Depthwise k×k conv + stateless batch norm + activation on a masked width.

  Args:
    kernel_size: kernel size.
    strides: stride.
    width: width table of the input (= output).
    activation: spec activation name, '' for none.
    epsilon: batch norm epsilon.
    name: Keras name of the depthwise conv (the batch norm gets `name`_bn).
    standalone_name: name of the matching stand-alone depthwise layer.
  """

  def __init__(self, kernel_size: int, strides: int, width: Table, activation: str,
               epsilon: float, name: str, standalone_name: str):
    super().__init__(name=f'{name}_op')
    self.width, self.standalone_name = width, standalone_name
    self.conv = MaskedDepthwiseConv2D(width.max, kernel_size, strides,
                                      initializers.depthwise_initializer(), name=name)
    self.bn = StatelessBatchNorm(width.max, epsilon, name=f'{name}_bn')
    self.activation = activation
    self.act = activation_layer(activation, f'{name}_act') if activation else None
    self.built = True

  def call(self, x, ctx: MaskContext):
    mask = ctx.channels(self.width)
    y = self.bn(self.conv(x, channel_mask=mask), channel_mask=mask)
    if self.act is not None:
      y = self.act(y)
      if mask is not None and self.activation not in _ZERO_PRESERVING:
        y = y * mask
    return y

  def weight_decay_terms(self, ctx: MaskContext, scale):
    return [scale * _square_sum(self.conv.masked_kernel(ctx.channels(self.width)))]

  def mask_keys(self):
    return {_channels(self.width)}

  def leaves(self, unused_indices):
    return [(self.conv, self.standalone_name), (self.bn, f'{self.standalone_name}_bn')]


class SqueezeExciteOp(keras.layers.Layer):
  """Masked squeeze-and-excite on a bottleneck's expanded width.

  Args:
    width: width table of the input (= output).
    hidden: width table of the hidden layer.
    name: Keras name.
    standalone_name: name of the matching stand-alone `SqueezeExcite` layer.
  """

  def __init__(self, width: Table, hidden: Table, name: str, standalone_name: str):
    super().__init__(name=f'{name}_op')
    self.width, self.hidden, self.standalone_name = width, hidden, standalone_name
    self.se = MaskedSqueezeExcite(width.max, hidden.max, initializers.conv_initializer(),
                                  name=name)
    self.built = True

  def call(self, x, ctx: MaskContext):
    return self.se(x, channel_mask=ctx.channels(self.width),
                   hidden_mask=ctx.channels(self.hidden))

  def weight_decay_terms(self, ctx: MaskContext, scale):
    kernels = self.se.masked_kernels(ctx.channels(self.width), ctx.channels(self.hidden))
    return [scale * _square_sum(k) for k in kernels]

  def mask_keys(self):
    return {_channels(self.width), _channels(self.hidden)}

  def leaves(self, unused_indices):
    return [(self.se, self.standalone_name)]


class Identity(keras.layers.Layer):
  """The identity (SE off; a stateless branch of a `Choice`)."""

  def call(self, x, ctx=None):  # pylint: disable=unused-argument
    return x

  def weight_decay_terms(self, unused_ctx, unused_scale):
    return []

  def mask_keys(self):
    return set()

  def leaves(self, unused_indices):
    return []


class Zero(Identity):
  """A skipped layer: zeros (the identity once the residual adds the input back)."""

  def call(self, x, ctx=None):  # pylint: disable=unused-argument
    return tf.zeros_like(x)


class GlobalPool(Identity):
  """Global average pooling, keeping a 1×1 map (masked channels stay zero)."""

  def call(self, x, ctx=None):  # pylint: disable=unused-argument
    return tf.reduce_mean(x, axis=(1, 2), keepdims=True)


class Choice(keras.layers.Layer):
  """An op decision: a `Switch` over the ops built for its choices, weighted by its mask.

  Args:
    decision: index of the decision in `space.decisions`.
    branches: one op per choice, in choice order.
    strides: stride of the ops.
    output_channels: largest output width of the ops.
    rematerialize: recompute the branches in the backward pass.
    name: Keras name.
  """

  def __init__(self, decision: int, branches: Sequence[keras.layers.Layer], strides: int,
               output_channels: int, rematerialize: bool, name: str):
    super().__init__(name=name)
    self.decision = decision
    self.switch = Switch(branches, strides, output_channels, rematerialize,
                         name=f'{name}_switch')
    self.built = True

  @property
  def branches(self):
    return self.switch.branches

  def call(self, x, ctx: MaskContext):
    inner = set().union(*(b.mask_keys() for b in self.branches))
    return self.switch(x, ctx.op_mask(self.decision), ctx=ctx.restricted(inner))

  def mask_keys(self):
    return {(OP, self.decision)}.union(*(b.mask_keys() for b in self.branches))

  def weight_decay_terms(self, ctx: MaskContext, scale):
    weights = ctx.op_mask(self.decision)
    terms = []
    for i, branch in enumerate(self.branches):
      terms += branch.weight_decay_terms(ctx, scale * weights[i])
    return terms

  def leaves(self, indices):
    return self.branches[indices[self.decision]].leaves(indices)


class Chain(keras.layers.Layer):
  """Ops applied one after the other, optionally adding the input back (a residual)."""

  def __init__(self, ops: Sequence[keras.layers.Layer], residual: bool, name: str):
    super().__init__(name=name)
    self.ops = list(ops)
    self.residual = residual
    self.built = True

  def call(self, x, ctx: MaskContext):
    y = x
    for op in self.ops:
      y = op(y, ctx=ctx)
    return y + x if self.residual else y

  def weight_decay_terms(self, ctx: MaskContext, scale):
    return [t for op in self.ops for t in op.weight_decay_terms(ctx, scale)]

  def mask_keys(self):
    return set().union(*(op.mask_keys() for op in self.ops))

  def leaves(self, indices):
    return [leaf for op in self.ops for leaf in op.leaves(indices)]


def maybe_choice(decision: Optional[int], branches: Sequence[keras.layers.Layer], strides: int,
                 output_channels: int, rematerialize: bool, name: str) -> keras.layers.Layer:
  """A `Choice` over `branches`, or the branch itself when there is only one.

  A single-choice decision (e.g. the unskippable first layer of a block) always has the weight
  1, both sampled and under op warmup, so it needs neither a switch nor a multiplication.
  """
  if len(branches) == 1:
    return branches[0]
  return Choice(decision, branches, strides, output_channels, rematerialize, name)
