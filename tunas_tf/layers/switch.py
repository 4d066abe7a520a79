"""`Switch`: a weighted sum over candidate ops that only runs the enabled ones (TuNAS `Switch`)."""

from typing import Any, Sequence

import keras
import tensorflow as tf


class Switch(keras.layers.Layer):
  """`output = Σ_i choice_weights[i] · branch_i(x)`, skipping every branch whose weight is 0.

  Each branch runs inside a `tf.cond` on `choice_weights[i] != 0`, so a one-hot choice computes a
  single branch (in the forward and in the backward pass), and op warmup's all-1/n weights run
  every branch and average them.

  With `rematerialize=True` the switch is a `tf.custom_gradient` function, as in TuNAS: the
  forward pass keeps none of the branches' activations, and the backward pass recomputes each
  enabled branch from the switch input inside its own `tf.cond` and backpropagates through it
  right away, one branch after the other. Activation memory then no longer grows with the
  number of enabled candidates (TuNAS appendix C), and no `tf.cond` is ever differentiated,
  which keeps graphs small. Keras variables are not captured by the custom-gradient function:
  their values are read once outside and passed in as explicit inputs, which the branches see
  through a `keras.StatelessScope` (TuNAS passes `trainable_tensors()` for the same reason:
  tf.cond, custom gradients and captured variables do not mix well). Gradients equal the
  plain version's, including the gradient with respect to `choice_weights`.

  The branches must be stateless (no variable updates: use stateless batch norm), and
  deterministic, since they run again in the backward pass.

  Args:
    branches: layers called as `branch(x)` (or `branch(x, ctx=ctx)` when a context is given);
      all must return tensors of the same shape.
    strides: spatial stride of the branches (their output is ceil(size / strides)).
    output_channels: channels of the branches' output.
    rematerialize: recompute the branches in the backward pass instead of storing activations.
    **kwargs: base `keras.layers.Layer` arguments.

  Call arguments:
    inputs: [batch, height, width, channels].
    choice_weights: float32 [len(branches)], e.g. a one-hot choice or all 1/n.
    ctx: optional object passed to every branch (e.g. the channel masks of a supernet); with
      `rematerialize`, it must offer `tensors()`, `differentiable()` and `with_tensors(tensors)`
      (see `tunas_tf.models.supernet_widths.MaskContext`) so its tensors can be explicit
      inputs.

  Returns:
    [batch, ceil(height / strides), ceil(width / strides), output_channels].

  References:
    Bender et al., "Can weight sharing outperform random architecture search? An investigation
    with TuNAS", CVPR 2020, section 4.2 ("Op Warmup") and appendix C (rematerialization);
    TuNAS `rematlib/layers.py` `Switch`.
  """

  def __init__(self, branches: Sequence[keras.layers.Layer], strides: int,
               output_channels: int, rematerialize: bool = True, **kwargs):
    super().__init__(**kwargs)
    if not branches:
      raise ValueError('A Switch needs at least one branch')
    self.branches = list(branches)
    self.strides = strides
    self.output_channels = output_channels
    self.rematerialize = rematerialize
    self.built = True

  def _output_shape(self, x):
    """[batch, ceil(h / s), ceil(w / s), channels], static where the input shape is."""
    size = lambda n: None if n is None else -(-n // self.strides)  # 'same' padding: ceil.
    static = [x.shape[0], size(x.shape[1]), size(x.shape[2]), self.output_channels]
    if all(d is not None for d in static):
      return static
    dynamic = tf.shape(x)
    ceil = lambda n: (n + self.strides - 1) // self.strides
    return tf.stack([dynamic[0], ceil(dynamic[1]), ceil(dynamic[2]), self.output_channels])

  def _forward(self, x, choice_weights, ctx: Any):
    shape = self._output_shape(x)
    out = None
    for branch, w in zip(self.branches, tf.unstack(choice_weights, len(self.branches))):

      def run(branch=branch, w=w, out=out):
        y = w * self._branch(branch, x, ctx)
        return y if out is None else out + y

      # The first disabled branch starts the sum at zero; later ones pass it on.
      skip = (lambda: tf.zeros(shape, x.dtype)) if out is None else (lambda out=out: out)
      out = tf.cond(tf.not_equal(w, 0.0), run, skip)
    return out

  def _branch(self, branch, x, ctx: Any):
    return branch(x) if ctx is None else branch(x, ctx=ctx)

  def call(self, inputs, choice_weights, ctx=None):
    choice_weights = tf.convert_to_tensor(choice_weights, tf.float32)
    if not self.rematerialize:
      return self._forward(inputs, choice_weights, ctx)
    variables = list(self.weights)
    values = [tf.convert_to_tensor(v) for v in variables]  # Reads, seen by the outer tape.
    ctx_tensors = ctx.tensors() if ctx is not None else []
    differentiable = ctx.differentiable() if ctx is not None else []
    return self._rematerialized(variables, ctx, differentiable)(inputs, choice_weights, *values,
                                                                *ctx_tensors)

  def _rematerialized(self, variables, ctx: Any, differentiable):
    """The switch as a custom-gradient function of (x, weights, *values, *ctx_tensors).

    `differentiable` says which context tensors get a gradient (e.g. op masks, not 0/1
    channel masks).

    Every tensor the branches read is an explicit input: the variables' values (seen through a
    StatelessScope) and the context's tensors. Captured by closure they would get no gradient,
    and inside a tf.function the backward pass could not reach them.
    """
    num_values = len(variables)

    def run(fn, x, args):
      values, tensors = args[:num_values], args[num_values:]
      inner = ctx.with_tensors(tensors) if ctx is not None else None
      with keras.StatelessScope(state_mapping=list(zip(variables, values))):
        return fn(x, inner)

    @tf.custom_gradient
    def switch(x, weights, *args):
      # Inputs without gradient: an outer GradientTape records none of the forward ops, so
      # none of their activations are kept.
      frozen = [tf.stop_gradient(a) for a in args]
      y = run(lambda x_, c: self._forward(x_, tf.stop_gradient(weights), c),
              tf.stop_gradient(x), frozen)
      # Differentiate with respect to x, the values and the context tensors that allow it.
      wanted = [True] * (1 + num_values) + list(differentiable)
      sources = [a for a, keep in zip((x,) + args, wanted) if keep]

      def inputs_from(watched):
        it = iter(watched)
        return [next(it) if keep else a for a, keep in zip((x,) + args, wanted)]

      def grad_fn(dy):
        # An exact 0 (NaN only if dy holds one) that makes the recomputation depend on dy:
        # otherwise graph optimizers merge it with the identical forward ops (common
        # subexpression elimination), which keeps every activation alive until the backward
        # pass, and could run it early. tf.recompute_grad does the same.
        first = tf.reshape(dy, [-1])[0]
        after_dy = tf.where(tf.math.is_nan(first), first, tf.zeros_like(first))
        totals = [tf.zeros_like(s) for s in sources]
        weight_grads = []
        for i, branch in enumerate(self.branches):
          w = weights[i]

          def backprop(totals=totals, branch=branch, w=w):
            # Recompute the branch from the switch input, then backprop into it at once.
            with tf.GradientTape() as tape:
              tape.watch(sources)
              all_inputs = inputs_from(sources)
              y_i = run(lambda x_, c: self._branch(branch, x_, c), all_inputs[0] + after_dy,
                        all_inputs[1:])
            grads = tape.gradient(y_i, sources, output_gradients=w * dy,
                                  unconnected_gradients=tf.UnconnectedGradients.ZERO)
            return [t + g for t, g in zip(totals, grads)] + [tf.reduce_sum(dy * y_i)]

          def skip(totals=totals):
            return list(totals) + [tf.zeros(())]

          # Chained through `totals`, so the branches recompute one after the other and at
          # most one branch's activations are alive at a time.
          out = tf.cond(tf.not_equal(w, 0.0), backprop, skip)
          totals, weight_grads = out[:-1], weight_grads + [out[-1]]
        grads = iter(totals)
        input_grads = [next(grads) if keep else None for keep in wanted]
        return [input_grads[0], tf.stack(weight_grads)] + input_grads[1:]

      return y, grad_fn

    return switch
