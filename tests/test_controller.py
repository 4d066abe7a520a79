"""The REINFORCE controller: closed-form entropies and log-probs, sampling, the final argmax."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tunas_tf.errors import UserError
from tunas_tf.search.controller import Controller, step_seed
from tunas_tf.space import FILTERS_TAG, OP_TAG, OneOf, SearchSpace, get_space

# A toy space with a hierarchy: 'outer' chooses between a layer holding two decisions
# ('k' with 3 choices, 'e' with 2) and a skip; 'w' (4 choices) is always active.
_TOY_SPEC = {
    'layer': OneOf(({'k': OneOf((3, 5, 7), OP_TAG), 'e': OneOf((1, 2), FILTERS_TAG)}, 'skip'),
                   OP_TAG, ('on', 'skip')),
    'w': OneOf((8, 16, 24, 32), FILTERS_TAG),
}


@pytest.fixture(scope='module')
def toy():
  space = SearchSpace('toy', _TOY_SPEC, 'toy')
  return space, {d.path: d.index for d in space.decisions}


def _set_logits(controller, space, values):
  for d in space.decisions:
    if d.path in values:
      controller.logits[d.index].assign(np.asarray(values[d.path], np.float32))


def test_toy_space_structure(toy):
  space, index = toy
  k, e, outer = index['layer/0/k'], index['layer/0/e'], index['layer']
  assert space.decisions[k].parent == outer and space.decisions[k].parent_choice == 0
  assert space.decisions[e].parent == outer and space.decisions[index['w']].parent is None


def test_initial_logits_are_zero_and_named_by_path(toy):
  space, _ = toy
  controller = Controller(space)
  for d, v in zip(space.decisions, controller.logits):
    assert v.name == f'logits/{d.path}:0'
    np.testing.assert_array_equal(v.numpy(), np.zeros(d.num_choices))


@pytest.mark.parametrize('name', ['proxylessnas', 'mobilenet_v3_like'])
def test_initial_flat_entropy_is_sum_log_n(name):
  space = get_space(name)
  controller = Controller(space)
  expected = sum(math.log(d.num_choices) for d in space.decisions)
  assert float(controller.flat_entropy()) == pytest.approx(expected, rel=1e-5)


def test_initial_hierarchical_entropy_closed_form(toy):
  space, _ = toy
  controller = Controller(space)
  # Uniform: 'layer' and 'w' always active; 'k' and 'e' active with probability 1/2.
  expected = math.log(2) + math.log(4) + 0.5 * (math.log(3) + math.log(2))
  assert float(controller.entropy()) == pytest.approx(expected, rel=1e-6)


def test_proxylessnas_initial_entropy_counts_skippable_layers_by_half():
  space = get_space('proxylessnas')
  controller = Controller(space)
  # 15 skippable layers (5 blocks x 3) whose inner kernel (3) and expansion (2) decisions
  # are active with probability 1/2; everything else is always active.
  skippable = sum(1 for d in space.decisions if d.num_choices == 2 and d.tag == OP_TAG)
  assert skippable == 15
  always = sum(math.log(d.num_choices) for d in space.decisions if d.parent is None)
  nested = sum(math.log(d.num_choices) for d in space.decisions
               if d.parent is not None and space.decisions[d.parent].num_choices == 2)
  fixed_parent = sum(math.log(d.num_choices) for d in space.decisions
                     if d.parent is not None and space.decisions[d.parent].num_choices == 1)
  expected = always + fixed_parent + 0.5 * nested
  assert nested == pytest.approx(15 * (math.log(3) + math.log(2)))
  assert float(controller.entropy()) == pytest.approx(expected, rel=1e-5)


def test_hand_computed_log_prob_and_entropy(toy):
  space, index = toy
  controller = Controller(space, temperature=2.0)
  logits = {'layer': [math.log(3.0) * 2, 0.0], 'w': [0.0, 0.0, 2 * math.log(2.0), 0.0],
            'layer/0/k': [0.0, 0.0, 0.0], 'layer/0/e': [2 * math.log(3.0), 0.0]}
  _set_logits(controller, space, logits)
  # With temperature 2: p(layer) = (3/4, 1/4), p(w) = (1/5, 1/5, 2/5, 1/5), p(e) = (3/4, 1/4).
  indices = np.zeros(space.num_decisions, np.int32)
  indices[index['layer']], indices[index['w']], indices[index['layer/0/k']] = 0, 2, 1
  indices[index['layer/0/e']] = 1
  expected = math.log(3 / 4) + math.log(2 / 5) + math.log(1 / 3) + math.log(1 / 4)
  assert float(controller.log_prob(tf.constant(indices))) == pytest.approx(expected, rel=1e-5)
  # Skipping the layer deactivates k and e: they no longer count.
  indices[index['layer']] = 1
  expected_skip = math.log(1 / 4) + math.log(2 / 5)
  assert float(controller.log_prob(tf.constant(indices))) == pytest.approx(expected_skip, rel=1e-5)
  flat = expected_skip + math.log(1 / 3) + math.log(1 / 4)
  assert float(controller.log_prob(tf.constant(indices), hierarchical=False)) == pytest.approx(
      flat, rel=1e-5)

  h = lambda p: -sum(x * math.log(x) for x in p)
  h_layer, h_w, h_k, h_e = h([.75, .25]), h([.2, .2, .4, .2]), math.log(3), h([.75, .25])
  assert float(controller.sample_entropy(tf.constant(indices))) == pytest.approx(
      h_layer + h_w, rel=1e-5)
  assert float(controller.entropy()) == pytest.approx(h_layer + h_w + 0.75 * (h_k + h_e),
                                                      rel=1e-5)
  assert float(controller.flat_entropy()) == pytest.approx(h_layer + h_w + h_k + h_e, rel=1e-5)


def test_exact_entropy_is_the_mean_of_sample_entropies(toy):
  space, _ = toy
  controller = Controller(space)
  _set_logits(controller, space, {'layer': [0.3, -0.4], 'layer/0/k': [1.0, 0.0, -1.0],
                                  'w': [0.5, 0.0, 0.0, -2.0]})

  @tf.function
  def draw(i):
    sample = controller.sample(step_seed(7, i, 0))
    return controller.sample_entropy(sample.indices)

  values = [float(draw(tf.constant(i, tf.int64))) for i in range(2000)]
  assert np.mean(values) == pytest.approx(float(controller.entropy()), abs=0.03)


def test_sampling_frequencies_follow_the_policy(toy):
  space, index = toy
  controller = Controller(space)
  _set_logits(controller, space, {'w': [0.0, math.log(3.0), 0.0, 0.0]})  # p(w=1) = 1/2.

  @tf.function
  def draw(i):
    return controller.sample(step_seed(3, i, 1))

  counts = np.zeros(4)
  for i in range(1200):
    sample = draw(tf.constant(i, tf.int64))
    w = int(sample.indices[index['w']])
    counts[w] += 1
    np.testing.assert_array_equal(sample.masks[index['w']].numpy(), np.eye(4)[w])
  assert counts[1] / counts.sum() == pytest.approx(0.5, abs=0.05)


def test_samples_differ_by_replica_and_repeat_by_seed():
  space = get_space('proxylessnas')
  controller = Controller(space)
  a = controller.sample(step_seed(0, tf.constant(5), tf.constant(0))).indices.numpy()
  b = controller.sample(step_seed(0, tf.constant(5), tf.constant(1))).indices.numpy()
  again = controller.sample(step_seed(0, tf.constant(5), tf.constant(0))).indices.numpy()
  np.testing.assert_array_equal(a, again)
  assert not np.array_equal(a, b)
  assert a.shape == (space.num_decisions,) and a.dtype == np.int32


def test_temperature_scales_the_gradient(toy):
  space, _ = toy
  indices = tf.zeros([space.num_decisions], tf.int32)
  grads = []
  for temperature in (1.0, 4.0):
    controller = Controller(space, temperature=temperature)
    with tf.GradientTape() as tape:
      log_prob = controller.log_prob(indices)
    grads.append(tape.gradient(log_prob, controller.logits[-1]).numpy())
  np.testing.assert_allclose(grads[1], grads[0] / 4.0, rtol=1e-6)


def test_most_likely_is_argmax_and_canonical(toy):
  space, index = toy
  controller = Controller(space)
  _set_logits(controller, space, {'layer': [0.0, 1.0], 'layer/0/k': [0.0, 0.0, 2.0],
                                  'w': [0.0, 0.0, 0.0, 1.0]})
  assert controller.most_likely_indices()[index['layer/0/k']] == 2
  arch = controller.most_likely()
  assert arch.indices[index['layer']] == 1 and arch.indices[index['w']] == 3
  assert arch.indices[index['layer/0/k']] == 0  # Inactive under the skip: canonical 0.


def test_bad_temperature_is_a_user_error(toy):
  with pytest.raises(UserError, match='temperature'):
    Controller(toy[0], temperature=0.0)
