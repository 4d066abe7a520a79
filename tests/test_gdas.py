"""GDAS's sampler and the cell supernet's forward modes (tiny shapes, eager where possible)."""

import random

import keras
import numpy as np
import pytest
import tensorflow as tf

from tunas_tf import space as space_lib
from tunas_tf.models import cell_layouts, cell_supernet
from tunas_tf.models.cell_supernet import MIXTURE, PATH, CellSupernet, SearchCell
from tunas_tf.search import cell_common, gdas
from tunas_tf.space import cell


def _tiny(name, channels=4):
  return cell.with_macro(space_lib.get_space(name), channels=channels, cells_per_stage=1)


def _images(n=2, size=16, seed=0):
  return tf.constant(np.random.default_rng(seed).uniform(0, 1, (n, size, size, 3)), tf.float32)


def test_straight_through_forward_is_one_hot_and_gradients_reach_all_alpha():
  logits = tf.Variable(np.random.default_rng(0).normal(size=(6, 5)).astype(np.float32))
  weights = tf.constant(np.random.default_rng(1).normal(size=(6, 5)).astype(np.float32))
  with tf.GradientTape() as tape:
    hardwts, index, probs = gdas.gumbel_straight_through(logits, 1.0, tf.constant([3, 4],
                                                                                  tf.int64))
    loss = tf.reduce_sum(hardwts * weights)
  np.testing.assert_array_equal(index.numpy(), np.argmax(probs.numpy(), axis=-1))
  np.testing.assert_allclose(hardwts.numpy(), np.eye(5)[index.numpy()], atol=1e-6)
  grad = tape.gradient(loss, logits).numpy()
  # The softmax's gradient: every logit of every edge moves, not only the sampled ones.
  assert np.all(np.abs(grad) > 0), grad
  # It is the gradient of probs (straight-through), computed independently here.
  with tf.GradientTape() as tape:
    _, p = gdas._gumbel_softmax(logits, tf.constant(1.0), gdas._attempt_seed(
        tf.constant([3, 4], tf.int64), tf.constant(0)))
    expected_loss = tf.reduce_sum(p * weights)
  np.testing.assert_allclose(grad, tape.gradient(expected_loss, logits).numpy(), rtol=1e-5)


def test_samples_differ_per_seed_and_follow_the_distribution():
  logits = tf.constant([[0.0, np.log(3.0)]] * 4000, tf.float32)  # p = (0.25, 0.75).
  _, index, _ = gdas.gumbel_straight_through(logits, 10.0, tf.constant([1, 2], tf.int64))
  # Gumbel-max sampling is exact whatever tau: argmax(log p + g) ~ p.
  assert np.mean(index.numpy()) == pytest.approx(0.75, abs=0.03)


def test_resampling_is_bounded_and_keeps_finite_draws():
  seed = tf.constant([5, 6], tf.int64)
  finite = tf.zeros([6, 5])
  assert int(gdas._valid_attempt(finite, tf.constant(0.1), seed, 10)) == 0
  # A draw that can never be finite (NaN logits) stops after max_tries attempts.
  nan = tf.fill([6, 5], float('nan'))
  assert int(gdas._valid_attempt(nan, tf.constant(0.1), seed, 7)) == 6


def test_tau_is_linear_from_tau_max_to_tau_min():
  total = 101
  assert float(cell_common.linear_tau(0, total, 10.0, 0.1)) == pytest.approx(10.0)
  assert float(cell_common.linear_tau(50, total, 10.0, 0.1)) == pytest.approx(5.05)
  assert float(cell_common.linear_tau(total - 1, total, 10.0, 0.1)) == pytest.approx(0.1)


class _Counting(keras.layers.Layer):
  """Counts its executions in a variable; returns NaNs when `poison` (a broken op)."""

  def __init__(self, poison=False, **kwargs):
    super().__init__(**kwargs)
    self.poison = poison
    self.calls = tf.Variable(0, trainable=False)
    self.scale = tf.Variable(1.0)
    self.built = True

  def call(self, x):
    with tf.control_dependencies([self.calls.assign_add(1)]):
      y = x * self.scale
    return y * float('nan') if self.poison else y


def _nb201_cell(channels=4):
  layout = cell_layouts.cell_layouts(_tiny('nas_bench_201'))[0]
  return layout, SearchCell(layout, channels)


def test_only_the_sampled_op_runs_forward_and_backward():
  layout, search_cell = _nb201_cell()
  num_ops = layout.num_ops
  counters = {}
  for e in range(layout.num_edges):
    for k in range(num_ops):
      # c3 (index 3) of every edge is broken: it must never run unless sampled.
      counters[e, k] = _Counting(poison=(k == 3))
      search_cell.edge_ops[e * num_ops + k] = counters[e, k]
  x = _images(2, 8)[..., :1] * tf.ones([1, 1, 1, 4])
  index = tf.constant([1, 2, 4, 0, 1, 2], tf.int32)
  weights = tf.Variable(tf.one_hot(index, num_ops))

  @tf.function
  def step():
    with tf.GradientTape() as tape:
      y = search_cell([x], mode=PATH, values=(index, weights))
      loss = tf.reduce_sum(y)
    variables = [weights] + [c.scale for c in counters.values()]
    return y, tape.gradient(loss, variables)

  y, grads = step()
  assert np.all(np.isfinite(y.numpy()))
  assert all(g is None or np.all(np.isfinite(g.numpy())) for g in grads)
  runs = {key: int(c.calls.numpy()) for key, c in counters.items()}
  assert {key for key, n in runs.items() if n} == {(e, int(k)) for e, k in enumerate(index)}
  assert all(n == 1 for n in runs.values() if n)  # Once: the backward pass does not re-run it.
  # The unsampled ops' weights still get gradients, through the straight-through scalars.
  assert np.all(grads[0].numpy() != 0)
  # Sampling the broken op does poison the output (the test above could fail).
  bad = tf.constant([3, 2, 4, 0, 1, 2], tf.int32)
  assert np.all(np.isnan(search_cell([x], mode=PATH, values=(bad, None)).numpy()))


def test_gdas_slot_output_and_gradients_follow_autodl_forward():
  """edge = w_k op_k(x) + Σ_{i≠k} w_i: value op_k(x) when w is one-hot, dL/dw_i = Σ dL/dy."""
  layout, search_cell = _nb201_cell()
  x = tf.concat([_images(2, 8), _images(2, 8, seed=1)[..., :1]], axis=-1)  # 4 channels.
  search_cell([x], mode=MIXTURE, values=tf.ones([6, 5]))  # Builds the ops.
  index = tf.constant([3, 3, 3, 3, 3, 3], tf.int32)
  w = tf.Variable(tf.one_hot(index, 5))
  upstream = tf.constant(np.random.default_rng(2).normal(size=(2, 8, 8, 4)), tf.float32)
  with tf.GradientTape() as tape:
    y = search_cell([x], mode=PATH, values=(index, w))
    loss = tf.reduce_sum(y * upstream)
  fixed = search_cell([x], mode=PATH, values=(index, None))
  np.testing.assert_allclose(y.numpy(), fixed.numpy(), rtol=1e-6, atol=1e-6)
  grad = tape.gradient(loss, w).numpy()
  # Edge 3<-2 (the last) feeds the output directly: its non-sampled weights get Σ upstream.
  np.testing.assert_allclose(grad[5, [0, 1, 2, 4]], np.sum(upstream.numpy()), rtol=1e-4)


def test_single_path_equals_one_hot_mixture_in_the_nb201_network():
  space = _tiny('nas_bench_201')
  net = CellSupernet(space, 10)
  net.build_weights(16)
  arch = space.sample(random.Random(3))
  images = _images(2, 16)
  path = net(images, mode=PATH, values=net.path_values(tf.constant(arch.indices)))
  one_hot = [tf.one_hot(i, d.num_choices) for i, d in zip(arch.indices, space.decisions)]
  mixture = net(images, mode=MIXTURE, values=net.mixture_values(one_hot))
  np.testing.assert_allclose(path.numpy(), mixture.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('name', ['darts', 'setn'])
def test_single_path_equals_one_hot_mixture_in_a_nasnet_cell(name):
  """The reduction cell (strided input edges); SETN cells through Eq. 10's coefficients."""
  space = space_lib.get_space(name)
  layout = cell_layouts.cell_layouts(space)[1]
  search_cell = SearchCell(layout, 4)
  inputs = [_images(2, 8, seed=s)[..., :1] * tf.ones([1, 1, 1, 4]) + 0.1 * s for s in (0, 1)]
  arch = space.sample(random.Random(4))
  path = search_cell(inputs, mode=PATH,
                     values=(cell_supernet.slot_indices(layout, tf.constant(arch.indices)), None))
  one_hot = [tf.one_hot(i, d.num_choices) for i, d in zip(arch.indices, space.decisions)]
  coefficients = cell_supernet.mixture_coefficients(layout, one_hot)
  mixture = search_cell(inputs, mode=MIXTURE, values=coefficients)
  assert path.shape == (2, 4, 4, 16)
  np.testing.assert_allclose(path.numpy(), mixture.numpy(), rtol=1e-4, atol=1e-5)
  # The NumPy and TensorFlow coefficient maps agree on random distributions.
  probs = [np.random.default_rng(i).dirichlet(np.ones(d.num_choices)).astype(np.float32)
           for i, d in enumerate(space.decisions)]
  values = cell_supernet.mixture_coefficients(layout, [tf.constant(p) for p in probs]).numpy()
  np.testing.assert_allclose(values, cell_layouts.mixture_coefficients(layout, probs), rtol=1e-5)
  # Each node's coefficients sum to its number of terms (one per edge, or SETN's two).
  for n in range(layout.num_nodes):
    terms = 2 if layout.kind == cell_layouts.SETN_KIND else len(layout.node_edges(n))
    assert values[list(layout.node_edges(n))].sum() == pytest.approx(terms, rel=1e-5)
