"""Tests of the TuNAS supernet (tunas_tf.models.supernet): exactness, masks, rematerialization.

Exactness runs at 64×64 with a batch of 4 rather than the usual 32×32 / 2: at 32×32 the last
layers see 1×1 maps, so every batch norm there normalizes 2 numbers, and its gain of up to
1/sqrt(epsilon) per layer turns rounding differences of 1e-7 (the supernet uses the fused batch
norm kernel, the stand-alone model Keras's formula) into logit differences of 0.1-0.4. With 2×2
maps and 4 images the same comparison agrees to ~1e-5.
"""

import random

import keras
import numpy as np
import pytest
import tensorflow as tf

from tunas_tf import models
from tunas_tf import space as space_lib
from tunas_tf.errors import UserError
from tunas_tf.models.supernet import MobileSupernet, largest_architecture
from tunas_tf.models.supernet_weights import copy_from_standalone, copy_to_standalone
from tunas_tf.space import mobile
from tunas_tf.space import specs
from tunas_tf.space.architecture import Architecture
from tunas_tf.space.schema import OP_TAG, OneOf
from tunas_tf.space.search_space import SearchSpace

SEARCH_SPACES = ('proxylessnas', 'proxylessnas_enlarged', 'mobilenet_v3_like')
NUM_CLASSES = 10
EXACT_SIZE, EXACT_BATCH = 64, 4
TINY_SIZE, TINY_BATCH = 32, 2


def _tiny_space() -> SearchSpace:
  """Two stages with every kind of decision: kernels, skips, expansions, SE, filters."""
  bneck = lambda s: specs.DepthwiseBottleneckSpec(
      mobile.expansion_oneof((1, 3)), mobile.kernel_oneof((3, 5)), s, specs.RELU,
      mobile.se_oneof())
  stem = specs.Block((specs.ConvSpec(mobile.kernel_oneof((3, 5)), 2, specs.HSWISH),
                      specs.ResidualSpec(mobile.skippable(
                          specs.SeparableConvSpec(mobile.kernel_oneof((3, 5)), 1, specs.RELU)))),
                     mobile.filters_oneof((8, 16)))
  body = specs.Block((OneOf((bneck(2),), OP_TAG), specs.ResidualSpec(mobile.skippable(bneck(1)))),
                     mobile.filters_oneof((8, 16)))
  head = specs.Block((specs.ConvSpec(1, activation=specs.HSWISH), specs.GlobalAveragePoolSpec()),
                     mobile.filters_oneof((16, 24)))
  last = specs.Block((specs.ConvSpec(1, activation=specs.HSWISH, use_batch_norm=False),), 32)
  return SearchSpace('tiny_supernet_test', specs.MobileSpaceSpec((stem, body, head, last), 8),
                     'mobile')


TINY = _tiny_space()


def _images(size, batch, seed=0):
  return tf.constant(np.random.default_rng(seed).normal(size=(batch, size, size, 3)),
                     tf.float32)


def _one_hot(space, arch):
  return tuple(tf.one_hot(i, d.num_choices) for i, d in zip(arch.indices, space.decisions))


def _op_warmup(space, arch):
  """All op masks 1/n (op warmup); filters masks one-hot of `arch`."""
  return tuple(tf.fill([d.num_choices], 1.0 / d.num_choices) if d.tag == OP_TAG else
               tf.one_hot(i, d.num_choices) for i, d in zip(arch.indices, space.decisions))


@pytest.fixture(scope='module')
def supernets():
  """space name -> supernet (built once: a few seconds each)."""
  keras.utils.set_random_seed(0)
  return {name: MobileSupernet(name, NUM_CLASSES, EXACT_SIZE) for name in SEARCH_SPACES}


# Exactness -----------------------------------------------------------------------------------


def _check_matches_standalone(net, space, arch, size, batch, seed):
  standalone = models.build_model(space, arch, NUM_CLASSES, size)
  images, masks = _images(size, batch, seed), _one_hot(space, arch)
  expected = standalone(images, training=True).numpy()
  before = net((images, masks), training=True).numpy()
  assert np.abs(before - expected).max() > 1e-3  # Different weights: the check can fail.
  copy_from_standalone(net, standalone, arch)
  got = net((images, masks), training=True).numpy()
  np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
  # The weight decay of the masked kernels is the stand-alone model's.
  assert float(net.losses[0]) == pytest.approx(float(sum(standalone.losses)), rel=1e-5)


@pytest.mark.parametrize('space_name', SEARCH_SPACES)
@pytest.mark.parametrize('seed', [1, 2])
def test_one_hot_masks_compute_the_standalone_model(supernets, space_name, seed):
  space = space_lib.get_space(space_name)
  arch = space.sample(random.Random(seed))
  _check_matches_standalone(supernets[space_name], space, arch, EXACT_SIZE, EXACT_BATCH, seed)


def test_fixed_reference_space_computes_the_standalone_model():
  space = space_lib.get_space('mobilenet_v3_large')
  net = MobileSupernet(space, NUM_CLASSES, EXACT_SIZE)
  _check_matches_standalone(net, space, Architecture(space.name, ()), EXACT_SIZE, EXACT_BATCH, 0)


def test_tiny_space_round_trip_through_the_standalone_model():
  keras.utils.set_random_seed(1)
  net = MobileSupernet(TINY, NUM_CLASSES, TINY_SIZE)
  for seed in range(4):
    arch = TINY.sample(random.Random(seed))
    _check_matches_standalone(net, TINY, arch, TINY_SIZE, TINY_BATCH, seed)
  # And back: a fresh stand-alone model gets the supernet's weights of the architecture.
  arch = largest_architecture(TINY)
  target = models.build_model(TINY, arch, NUM_CLASSES, TINY_SIZE)
  copy_to_standalone(net, target, arch)
  images = _images(TINY_SIZE, TINY_BATCH)
  np.testing.assert_allclose(target(images, training=True).numpy(),
                             net((images, _one_hot(TINY, arch)), training=True).numpy(), atol=1e-5)


def test_disabled_ops_are_not_computed():
  """With one-hot masks a single branch runs: NaN weights in the others change nothing."""
  keras.utils.set_random_seed(2)
  net = MobileSupernet(TINY, NUM_CLASSES, TINY_SIZE)
  arch = TINY.canonical(Architecture(TINY.name, tuple(0 for _ in TINY.decisions)))  # k3, no SE.
  used = {id(v) for leaf, _ in net.active_leaves(arch) for v in leaf.weights}
  poisoned = [v for v in net.weights if id(v) not in used and '_k5' in v.path]
  assert poisoned
  for v in poisoned:
    v.assign(tf.fill(v.shape, float('nan')))
  images, masks = _images(TINY_SIZE, TINY_BATCH), _one_hot(TINY, arch)
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(net((images, masks), training=True))
  grads = tape.gradient(loss, net.trainable_variables)
  assert np.isfinite(float(loss))
  assert all(np.all(np.isfinite(g.numpy())) for g in grads)
  # ...while all-1/n op masks do run them.
  assert np.isnan(net((images, _op_warmup(TINY, arch)), training=True).numpy()).all()


# Masks ---------------------------------------------------------------------------------------


def test_masks_of_the_wrong_length_or_shape_are_rejected(supernets):
  net = supernets['proxylessnas']
  space = space_lib.get_space('proxylessnas')
  images = _images(EXACT_SIZE, 1)
  masks = _one_hot(space, space.sample(random.Random(0)))
  with pytest.raises(UserError, match=r"'proxylessnas' has 73 decisions, so the supernet needs "
                                      r'73 masks \(in space.decisions order\), got 72'):
    net((images, masks[:-1]))
  bad = list(masks)
  bad[1] = tf.ones([2])
  with pytest.raises(UserError, match=r"Mask 1 of decision 'blocks/1/layers/0/kernel_size' "
                                      r'must have shape \[3\], got \[2\]'):
    net((images, tuple(bad)))
  with pytest.raises(UserError, match=r'called as model\(\(images, masks\)'):
    net(images)


def test_bad_settings_are_rejected():
  with pytest.raises(UserError, match='image_size must be at least 8, got 4'):
    MobileSupernet(TINY, NUM_CLASSES, 4)
  with pytest.raises(UserError, match=r'dropout_rate must be a number in \[0, 1\), got 1.0'):
    MobileSupernet(TINY, NUM_CLASSES, TINY_SIZE, dropout_rate=1.0)
  with pytest.raises(UserError, match='num_classes must be an integer >= 1, got 0'):
    MobileSupernet(TINY, 0, TINY_SIZE)
  with pytest.raises(UserError, match="Unknown search space 'nope'"):
    MobileSupernet('nope', NUM_CLASSES, TINY_SIZE)


def test_largest_architecture_keeps_every_layer_at_its_largest():
  space = space_lib.get_space('mobilenet_v3_like')
  arch = largest_architecture(space)
  text = space.to_string(arch)
  assert 'skip' not in text
  assert text.startswith('k5-k7-c32-' + 'e6k7se-' * 4 + 'c32-' + 'e6k7se-' * 4 + 'c64-')
  assert text.endswith('-c1024-c2048')


# Rematerialization ---------------------------------------------------------------------------


def _loss_and_grads(net, masks, labels):
  images = _images(TINY_SIZE, TINY_BATCH)
  with tf.GradientTape() as tape:
    tape.watch(masks)
    logits = net((images, masks), training=True)
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
    loss += tf.add_n(net.losses)
  return loss, tape.gradient(loss, net.trainable_variables + list(masks))


@pytest.fixture(scope='module')
def tiny_pair():
  """(rematerialized, plain) tiny supernets with the same weights."""
  keras.utils.set_random_seed(3)
  remat = MobileSupernet(TINY, NUM_CLASSES, TINY_SIZE, rematerialize=True)
  plain = MobileSupernet(TINY, NUM_CLASSES, TINY_SIZE, rematerialize=False)
  plain.set_weights(remat.get_weights())
  return remat, plain


@pytest.mark.parametrize('warmup', [True, False])
def test_rematerialized_gradients_equal_plain_gradients(tiny_pair, warmup):
  remat, plain = tiny_pair
  assert remat.rematerialize and not plain.rematerialize
  arch = largest_architecture(TINY)
  masks = _op_warmup(TINY, arch) if warmup else _one_hot(TINY, arch)
  labels = tf.constant([1, 7])
  loss_r, grads_r = _loss_and_grads(remat, masks, labels)
  loss_p, grads_p = _loss_and_grads(plain, masks, labels)
  assert float(loss_r) == pytest.approx(float(loss_p), abs=1e-6)
  num_variables = len(remat.trainable_variables)
  assert len(grads_r) == num_variables + len(masks)
  # Every variable gets a gradient tensor (zeros for ops that are off; plain autodiff through
  # tf.cond gives None there, which we compare as zeros).
  assert all(g is not None for g in grads_r[:num_variables])
  if warmup:
    assert all(g is not None for g in grads_p[:num_variables])
  # Op masks get gradients too (filters masks are read through argmax: None in both).
  assert [g is None for g in grads_r[num_variables:]] == [g is None for g in grads_p[num_variables:]]
  op_masks = [i for i, d in enumerate(TINY.decisions) if d.tag == OP_TAG and d.num_choices > 1]
  assert all(grads_r[num_variables + i] is not None for i in op_masks)
  for a, b in zip(grads_r, grads_p):
    if a is not None:
      expected = np.zeros(a.shape) if b is None else b.numpy()
      np.testing.assert_allclose(a.numpy(), expected, rtol=0, atol=1e-5)
  nonzero = [float(tf.reduce_max(tf.abs(g))) > 0 for g in grads_r[:num_variables]]
  # Under op warmup every op runs, so every variable gets a gradient (TuNAS slow test).
  assert all(nonzero) if warmup else any(nonzero)


def test_compiled_training_step_with_rematerialization(tiny_pair):
  net, _ = tiny_pair
  optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
  optimizer.build(net.trainable_variables)  # Slots now, so the step traces once.
  images, labels = _images(TINY_SIZE, TINY_BATCH), tf.constant([3, 4])
  traces = []

  @tf.function
  def step(masks):
    traces.append(1)
    with tf.GradientTape() as tape:
      logits = net((images, masks), training=True)
      loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
      loss += tf.add_n(net.losses)
    optimizer.apply(tape.gradient(loss, net.trainable_variables), net.trainable_variables)
    return loss

  before = [v.numpy() for v in net.trainable_variables]
  arch = TINY.sample(random.Random(5))
  losses = [float(step(masks)) for masks in (_op_warmup(TINY, arch), _one_hot(TINY, arch),
                                             _one_hot(TINY, TINY.sample(random.Random(6))))]
  assert len(traces) == 1  # New masks are new values, not a new trace.
  assert all(np.isfinite(losses))
  changed = [not np.array_equal(b, v.numpy()) for b, v in zip(before, net.trainable_variables)]
  assert all(changed)  # The op-warmup step reaches every variable.
