"""Tests of tunas_tf.layers: activations, squeeze-and-excite, initializers, op compositions."""

import keras
import numpy as np
import pytest

from tunas_tf import layers
from tunas_tf.errors import UserError


def _numpy(x):
  return keras.ops.convert_to_numpy(x)


def _relu6(x):
  return np.clip(x, 0.0, 6.0)


def test_hard_swish_matches_formula_and_round_trips():
  x = np.array([[-5.0, -3.0, -1.5, 0.0, 0.5, 3.0, 7.0]], np.float32)
  layer = layers.HardSwish(name='hs')
  got = _numpy(layer(x))
  np.testing.assert_allclose(got, x * _relu6(x + 3.0) / 6.0, rtol=1e-6, atol=1e-7)
  # Below -3 it is exactly 0, above +3 it is the identity.
  assert got[0, 0] == 0.0 and got[0, 1] == 0.0
  np.testing.assert_allclose(got[0, -2:], x[0, -2:], rtol=1e-6)
  clone = layers.HardSwish.from_config(layer.get_config())
  assert clone.name == 'hs'


@pytest.mark.parametrize('name,fn', [
    ('relu', lambda x: np.maximum(x, 0.0)),
    ('relu6', _relu6),
    ('hswish', lambda x: x * _relu6(x + 3.0) / 6.0),
    ('sigmoid', lambda x: 1.0 / (1.0 + np.exp(-x))),
])
def test_activation_layer_by_spec_name(name, fn):
  x = np.linspace(-8.0, 8.0, 33, dtype=np.float32)[None]
  layer = layers.activation_layer(name, f'act_{name}')
  assert layer.name == f'act_{name}'
  np.testing.assert_allclose(_numpy(layer(x)), fn(x), rtol=1e-5, atol=1e-6)


def test_activation_layer_unknown_name_lists_known():
  with pytest.raises(UserError, match=r"Unknown activation 'swish'.*hswish.*relu6"):
    layers.activation_layer('swish', 'a')


def test_squeeze_excite_matches_numpy_and_config_round_trip():
  keras.utils.set_random_seed(0)
  x = np.random.default_rng(0).normal(size=(2, 5, 5, 24)).astype(np.float32)
  se = layers.SqueezeExcite(8, name='se')
  got = _numpy(se(x))
  w1, b1, w2, b2 = [_numpy(w) for w in se.get_weights()]
  assert w1.shape == (1, 1, 24, 8) and w2.shape == (1, 1, 8, 24)
  pooled = x.mean(axis=(1, 2))
  hidden = np.maximum(pooled @ w1[0, 0] + b1, 0.0)
  gate = 1.0 / (1.0 + np.exp(-(hidden @ w2[0, 0] + b2)))
  np.testing.assert_allclose(got, x * gate[:, None, None, :], rtol=1e-5, atol=1e-5)
  assert se.count_params() == 24 * 8 + 8 + 8 * 24 + 24

  clone = layers.SqueezeExcite.from_config(se.get_config())
  clone(x)
  clone.set_weights(se.get_weights())
  np.testing.assert_allclose(_numpy(clone(x)), got, rtol=1e-6)


@pytest.mark.parametrize('bad', [0, -1, 2.5, True])
def test_squeeze_excite_rejects_bad_hidden_filters(bad):
  with pytest.raises(ValueError, match='hidden_filters'):
    layers.SqueezeExcite(bad)


def test_depthwise_initializer_has_fan_in_kernel_area():
  # TuNAS depthwise_he_normal: variance 2 / (kh * kw), independent of the channel count.
  keras.utils.set_random_seed(1)
  dw = keras.layers.DepthwiseConv2D(5, depthwise_initializer=layers.depthwise_initializer())
  dw.build((None, 8, 8, 512))
  kernel = dw.kernel.numpy()
  assert kernel.shape == (5, 5, 512, 1)
  assert np.var(kernel) == pytest.approx(2.0 / 25, rel=0.05)
  # Truncated at two standard deviations of the underlying normal.
  assert np.abs(kernel).max() <= 2 * np.sqrt(2.0 / 25) / 0.87962566103423978 + 1e-6


def test_conv_initializer_is_he_normal():
  keras.utils.set_random_seed(2)
  conv = keras.layers.Conv2D(96, 3, kernel_initializer=layers.conv_initializer())
  conv.build((None, 8, 8, 128))
  assert np.var(conv.kernel.numpy()) == pytest.approx(2.0 / (9 * 128), rel=0.05)


def test_kernel_regularizer_is_half_weight_decay():
  w = np.arange(6, dtype=np.float32).reshape(2, 3)
  reg = layers.kernel_regularizer(4e-5)
  assert float(reg(w)) == pytest.approx(2e-5 * float(np.sum(w * w)), rel=1e-6)
  assert layers.kernel_regularizer(0.0) is None


@pytest.mark.parametrize('kwargs', [
    {'weight_decay': -1e-5}, {'weight_decay': 'a'}, {'batch_norm_epsilon': 0.0},
    {'batch_norm_momentum': 1.0},
])
def test_conv_options_validation(kwargs):
  with pytest.raises(UserError, match=next(iter(kwargs))):
    layers.ConvOptions(**kwargs)


def _names(model):
  return [l.name for l in model.layers]


def test_inverted_bottleneck_structure_and_names():
  options = layers.ConvOptions(weight_decay=1e-4)
  inputs = keras.Input((8, 8, 16))
  out = layers.inverted_bottleneck(inputs, 48, 24, 5, 2, 'hswish', 16, options, 'b')
  model = keras.Model(inputs, out)
  assert _names(model)[1:] == ['b_expand', 'b_expand_bn', 'b_expand_act', 'b_dw', 'b_dw_bn',
                               'b_dw_act', 'b_se', 'b_project', 'b_project_bn']
  assert tuple(out.shape) == (None, 4, 4, 24)
  layer = {l.name: l for l in model.layers}
  assert not layer['b_expand'].use_bias and not layer['b_dw'].use_bias
  assert layer['b_dw'].kernel.shape == (5, 5, 48, 1)
  assert isinstance(layer['b_expand_act'], layers.HardSwish)
  bn = layer['b_dw_bn']
  assert bn.epsilon == pytest.approx(1e-3) and bn.momentum == pytest.approx(0.99)
  assert layer['b_se'].hidden_filters == 16
  # Expand, depthwise, project and both SE kernels are regularized; biases are not.
  assert len(model.losses) == 5


def test_separable_conv_and_conv_without_batch_norm():
  options = layers.ConvOptions()
  inputs = keras.Input((8, 8, 16))
  x = layers.separable_conv(inputs, 32, 3, 1, 'relu', options, 's')
  x = layers.conv_bn(x, 40, 1, 1, '', options, 'c', use_batch_norm=False)
  model = keras.Model(inputs, x)
  assert _names(model)[1:] == ['s_dw', 's_dw_bn', 's_dw_act', 's_project', 's_project_bn', 'c']
  layer = {l.name: l for l in model.layers}
  assert layer['c'].use_bias and not layer['s_project'].use_bias
  assert tuple(x.shape) == (None, 8, 8, 40)


def test_custom_layers_survive_keras_save_and_load(tmp_path):
  keras.utils.set_random_seed(0)
  inputs = keras.Input((6, 6, 8))
  x = layers.conv_bn(inputs, 16, 3, 1, 'hswish', layers.ConvOptions(), 'c')
  x = layers.squeeze_excite(x, 8, layers.ConvOptions(), 'se')
  model = keras.Model(inputs, x)
  path = str(tmp_path / 'tiny.keras')
  model.save(path)
  loaded = keras.models.load_model(path)
  assert isinstance(loaded.get_layer('c_act'), layers.HardSwish)
  assert isinstance(loaded.get_layer('se'), layers.SqueezeExcite)
  images = np.random.default_rng(0).normal(size=(2, 6, 6, 8)).astype(np.float32)
  np.testing.assert_allclose(_numpy(loaded(images)), _numpy(model(images)), rtol=1e-5, atol=1e-6)
  assert len(loaded.losses) == 3  # Regularizers are restored with the config.
