"""Tests of tunas_tf.models (stand-alone Keras builder, MAC/parameter counts) and space.shapes."""

import math
import random
import subprocess
import sys

import keras
import numpy as np
import pytest

from tunas_tf import layers
from tunas_tf import models
from tunas_tf import space
from tunas_tf.errors import UserError
from tunas_tf.space import shapes as shapes_lib
from tunas_tf.space import specs
from tunas_tf.space.architecture import Architecture

# Published parameter counts (1000 classes; torchvision's counts, which exclude batch norm
# moving statistics, and the ProxylessNAS paper's 4.1M) and multiply-adds at 224×224.
PUBLISHED_PARAMS = {
    'mobilenet_v2': 3.50e6,
    'mnasnet_b1': 4.38e6,
    'proxylessnas_mobile': 4.08e6,
    'mobilenet_v3_large': 5.48e6,
}
PUBLISHED_MACS = {'mobilenet_v2': 300e6, 'mobilenet_v3_large': 219e6}
# MobileNetV2 (Sandler et al., table 2) and MobileNetV3-Large (Howard et al., table 1) each
# have 10 residual connections.
PUBLISHED_RESIDUALS = {'mobilenet_v2': 10, 'mobilenet_v3_large': 10}

SMALL = {'num_classes': 10, 'image_size': 32}


def _reference(name):
  arch = space.get_reference(name)
  return space.get_space(arch.space), arch


def _sample(space_name, seed):
  s = space.get_space(space_name)
  return s, s.sample(random.Random(seed))


@pytest.fixture(scope='module')
def reference_models():
  """The four reference models at 224×224, 1000 classes (built once: ~1.5 s each)."""
  return {name: models.build_model(*_reference(name)) for name in PUBLISHED_PARAMS}


def _numpy(x):
  return keras.ops.convert_to_numpy(x)


def _keras_macs(model):
  """MACs counted from the built Keras layers: output pixels × kernel size of every conv."""
  total = 0
  for layer in model.layers:
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
      _, h, w, _ = layer.output.shape
      total += h * w * math.prod(layer.kernel.shape)
    elif isinstance(layer, layers.SqueezeExcite):  # Two 1×1 convs on a 1×1 map.
      total += math.prod(layer.reduce.kernel.shape) + math.prod(layer.expand.kernel.shape)
  return total


# Reference models at 224 ---------------------------------------------------------------------


@pytest.mark.parametrize('name', sorted(PUBLISHED_PARAMS))
def test_reference_params_match_published(reference_models, name):
  model = reference_models[name]
  target = PUBLISHED_PARAMS[name]
  total = model.count_params()
  trainable = models.count_model_params(model, trainable_only=True)
  assert abs(total - target) / target < 0.03, (name, total)
  assert abs(trainable - target) / target < 0.03, (name, trainable)
  # The pure-Python counter agrees with Keras exactly, with and without BN statistics.
  s, arch = _reference(name)
  assert models.count_params(s, arch) == total
  assert models.count_params(s, arch, batch_norm_statistics=False) == trainable
  assert model.input.shape == (None, 224, 224, 3) and model.output.shape == (None, 1000)


@pytest.mark.parametrize('name', sorted(PUBLISHED_MACS))
def test_reference_macs_match_published(name):
  s, arch = _reference(name)
  macs = models.count_macs(s, arch, image_size=224, num_classes=1000)
  assert abs(macs - PUBLISHED_MACS[name]) / PUBLISHED_MACS[name] < 0.10, macs


@pytest.mark.parametrize('name', sorted(PUBLISHED_PARAMS))
def test_reference_macs_agree_with_keras_layers(reference_models, name):
  s, arch = _reference(name)
  assert models.count_macs(s, arch) == _keras_macs(reference_models[name])


@pytest.mark.parametrize('name', sorted(PUBLISHED_RESIDUALS))
def test_reference_residual_count(reference_models, name):
  adds = [l for l in reference_models[name].layers if isinstance(l, keras.layers.Add)]
  assert len(adds) == PUBLISHED_RESIDUALS[name]


def test_mobilenet_v2_layer_shapes():
  shapes = shapes_lib.layer_shapes(*_reference('mobilenet_v2'), 224)
  by_path = {s.path: s for s in shapes}
  assert by_path['blocks/0/layers/0'].output_size == 112
  last_bneck = by_path['blocks/7/layers/0']
  assert (last_bneck.input_size, last_bneck.input_filters, last_bneck.mid_filters,
          last_bneck.output_filters) == (7, 160, 960, 320)
  assert [s.path for s in shapes if s.op == shapes_lib.SKIP] == [
      'blocks/2/layers/2', 'blocks/2/layers/3', 'blocks/3/layers/3', 'blocks/5/layers/3',
      'blocks/6/layers/3']
  assert shapes[-1].op == shapes_lib.GLOBAL_POOL and shapes[-1].output_size == 1
  assert shapes[-1].output_filters == 1280


def test_macs_do_not_import_tensorflow():
  code = ('import sys\n'
          'from tunas_tf import models, space\n'
          'a = space.get_reference("mobilenet_v3_large")\n'
          'print(models.count_macs(a.space, a), models.count_params(a.space, a))\n'
          'assert "tensorflow" not in sys.modules and "keras" not in sys.modules\n')
  out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
  s, arch = _reference('mobilenet_v3_large')
  assert out.stdout.split() == [str(models.count_macs(s, arch)), str(models.count_params(s, arch))]


# Every registered space ----------------------------------------------------------------------


@pytest.fixture(scope='module')
def sampled_models():
  """space name -> (space, sampled architecture, model at 32×32 with 10 classes)."""
  keras.utils.set_random_seed(0)
  result = {}
  for space_name in space.list_spaces('mobile'):
    s, arch = _sample(space_name, seed=3)
    result[space_name] = (s, arch, models.build_model(s, arch, **SMALL))
  return result


@pytest.mark.parametrize('space_name', space.list_spaces('mobile'))
def test_every_space_builds_and_runs(sampled_models, space_name):
  s, arch, model = sampled_models[space_name]
  images = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
  logits = _numpy(model(images, training=False))
  assert logits.shape == (2, 10)
  assert np.all(np.isfinite(logits))
  assert not np.allclose(logits[0], logits[1])  # The two images give different logits.
  assert model.count_params() == models.count_params(s, arch, num_classes=10)
  assert _keras_macs(model) == models.count_macs(s, arch, **SMALL)


@pytest.mark.parametrize('space_name', space.list_spaces('mobile'))
def test_layer_names_follow_spec_paths(sampled_models, space_name):
  s, arch, model = sampled_models[space_name]
  names = [l.name for l in model.layers]
  for shape in shapes_lib.layer_shapes(s, arch, 32):
    present = [n for n in names if n.startswith(shape.name + '_')]
    assert bool(present) == (shape.op != shapes_lib.SKIP), shape.path
    assert (shape.name + '_add' in names) == shape.residual, shape.path


# Structure -----------------------------------------------------------------------------------


def _proxyless_arch(skip_paths=()):
  """A proxylessnas architecture: every layer e6k5, except `skip_paths` skipped."""
  s = space.get_space('proxylessnas')
  indices = []
  for d in s.decisions:
    if d.path.endswith('expansion_filters'):
      indices.append(1)
    elif d.path.endswith('kernel_size'):
      indices.append(1 if d.num_choices == 3 else 0)
    elif d.path.endswith('/layer'):  # A skippable op: (bneck, skip).
      indices.append(1 if d.group in skip_paths else 0)
    else:
      indices.append(0)
  return s, s.canonical(Architecture(s.name, tuple(indices)))


@pytest.fixture(scope='module')
def proxyless_full():
  """(space, arch, model): proxylessnas with every layer e6k5 (residual test edits its BN)."""
  keras.utils.set_random_seed(0)
  s, arch = _proxyless_arch()
  return s, arch, models.build_model(s, arch, **SMALL)


def test_skipped_layer_removes_its_parameters(proxyless_full):
  s, full, full_model = proxyless_full
  _, skipped = _proxyless_arch({'blocks/3/layers/2'})
  skipped_model = models.build_model(s, skipped, **SMALL)
  shape = shapes_lib.layer_shapes(s, full, 32)
  bneck = [x for x in shape if x.path == 'blocks/3/layers/2'][0]
  # e6 bottleneck 40 -> 240 -> 40 with a 5×5 depthwise: kernels + 4 BN variables per channel.
  expected = 40 * 240 + 4 * 240 + 25 * 240 + 4 * 240 + 240 * 40 + 4 * 40
  assert models.layer_params(bneck) == expected
  assert full_model.count_params() - skipped_model.count_params() == expected
  assert not [l for l in skipped_model.layers if l.name.startswith('blocks_3_layers_2_')]
  assert 'blocks_3_layers_2_add' in [l.name for l in full_model.layers]
  assert models.count_macs(s, full) > models.count_macs(s, skipped)


def test_residual_adds_the_layer_input(proxyless_full):
  s, arch, model = proxyless_full
  residual = [x for x in shapes_lib.layer_shapes(s, arch, 32) if x.residual]
  # The first layer of each block changes stride or width, so only layers 1-3 are residual.
  assert [x.path for x in residual] == [f'blocks/{b}/layers/{l}' for b in range(2, 7)
                                        for l in (1, 2, 3)]
  # Zeroing the projection's batch norm zeroes the branch: the add then returns its input.
  bn = model.get_layer('blocks_4_layers_1_project_bn')
  gamma, beta, mean, var = bn.get_weights()
  bn.set_weights([np.zeros_like(gamma), np.zeros_like(beta), mean, var])
  add = model.get_layer('blocks_4_layers_1_add')
  block_input = model.get_layer('blocks_4_layers_0_project_bn').output
  probe = keras.Model(model.input, [add.output, block_input])
  images = np.random.default_rng(1).normal(size=(2, 32, 32, 3)).astype(np.float32)
  out, x = [_numpy(t) for t in probe(images, training=False)]
  assert np.abs(x).max() > 0
  np.testing.assert_allclose(out, x, rtol=1e-5, atol=1e-6)


def test_expansion_one_keeps_expand_conv_and_se_width():
  s = space.get_space('mobilenet_v3_like')
  indices = []
  for d in s.decisions:
    if d.path.endswith('expansion_filters'):
      indices.append(0)  # e1
    elif d.path.endswith('use_squeeze_and_excite'):
      indices.append(1)
    else:
      indices.append(d.num_choices - 1 if d.tag == space.FILTERS_TAG else 0)
  arch = s.canonical(Architecture(s.name, tuple(indices)))
  model = models.build_model(s, arch, **SMALL)
  expand = model.get_layer('blocks_1_layers_1_expand')
  assert expand.kernel.shape == (1, 1, 32, 32)  # Block 1 at its widest has 32 filters.
  se = model.get_layer('blocks_1_layers_1_se')
  assert se.hidden_filters == 8  # make_divisible(32 / 4, 8).


def test_weight_decay_and_classifier():
  keras.utils.set_random_seed(0)
  s, arch = _reference('mobilenet_v3_large')
  model = models.build_model(s, arch, dropout_rate=0.2, weight_decay=1e-3, **SMALL)
  kernels = []
  for layer in model.layers:
    if isinstance(layer, keras.layers.DepthwiseConv2D):
      kernels.append(layer.kernel)
    elif isinstance(layer, keras.layers.Conv2D) and layer.name != 'classifier':
      kernels.append(layer.kernel)
    elif isinstance(layer, layers.SqueezeExcite):
      kernels += [layer.reduce.kernel, layer.expand.kernel]
  expected = sum(5e-4 * float(np.sum(np.square(k.numpy()))) for k in kernels)
  assert len(model.losses) == len(kernels)
  assert float(sum(float(l) for l in model.losses)) == pytest.approx(expected, rel=1e-4)
  classifier = model.get_layer('classifier')
  assert classifier.use_bias and classifier.kernel_regularizer is None
  assert model.get_layer('classifier_dropout').rate == pytest.approx(0.2)
  assert not models.build_model(s, arch, weight_decay=0.0, **SMALL).losses


# Errors --------------------------------------------------------------------------------------


def test_architecture_of_another_space_is_rejected():
  _, arch = _reference('mobilenet_v2')
  with pytest.raises(UserError, match="for space 'mobilenet_v2', not 'proxylessnas'"):
    models.build_model('proxylessnas', arch)
  with pytest.raises(UserError, match="for space 'mobilenet_v2', not 'proxylessnas'"):
    models.count_macs('proxylessnas', arch)


def test_bad_indices_are_rejected():
  s = space.get_space('proxylessnas')
  with pytest.raises(UserError, match='73 decisions, got 2 indices'):
    models.build_model(s, Architecture(s.name, (0, 0)))
  bad = list(s.sample(random.Random(0)).indices)
  bad[1] = 7
  with pytest.raises(UserError, match=r"Index 7 out of range for decision 'blocks/1/layers/0"):
    models.count_macs(s, Architecture(s.name, tuple(bad)))
  with pytest.raises(UserError, match="Unknown search space 'nope'"):
    models.build_model('nope', Architecture('nope', ()))


@pytest.mark.parametrize('kwargs,message', [
    ({'num_classes': 0}, 'num_classes must be an integer >= 1, got 0'),
    ({'num_classes': True}, 'num_classes'),
    ({'image_size': 4}, 'image_size must be at least 8, got 4'),
    ({'image_size': 32.0}, 'image_size must be an integer'),
    ({'image_size': 16}, r"too small: layer 'blocks/6/layers/0' has stride 2.*at least 32"),
    ({'dropout_rate': 1.0}, r'dropout_rate must be a number in \[0, 1\), got 1.0'),
    ({'weight_decay': -1.0}, 'weight_decay must be a number >= 0, got -1.0'),
])
def test_bad_settings_are_rejected(kwargs, message):
  s, arch = _reference('mobilenet_v2')
  with pytest.raises(UserError, match=message):
    models.build_model(s, arch, **{**SMALL, **kwargs})


def test_unexpressible_specs_are_rejected():
  zero_first = specs.MobileSpaceSpec((specs.Block((specs.ZeroSpec(),), 8),))
  with pytest.raises(UserError, match="'blocks/0/layers/0' is a ZeroSpec outside a ResidualSpec"):
    shapes_lib.spec_layer_shapes(zero_first, 32)
  unresolved = space.get_space('proxylessnas').spec
  with pytest.raises(UserError, match='is the spec resolved'):
    shapes_lib.spec_layer_shapes(unresolved, 32)
  bad_act = specs.MobileSpaceSpec((specs.Block((specs.ConvSpec(3, 2, 'gelu'),), 8),))
  with pytest.raises(UserError, match="unknown activation 'gelu'"):
    shapes_lib.spec_layer_shapes(bad_act, 32)
