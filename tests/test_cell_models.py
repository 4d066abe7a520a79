"""Tests of the cell ops and the stand-alone cell models: forward passes, parameter counts, training
steps and real TFLite float parity at tiny sizes."""

import random

import keras
import numpy as np
import pytest

from tunas_tf import export
from tunas_tf import space
from tunas_tf.errors import UserError
from tunas_tf.layers import cell_ops
from tunas_tf.models.cell_network import build_cell_model, build_pgnas_resnet
from tunas_tf.space import cell
from tunas_tf.space import genotypes
from tunas_tf.space.architecture import Architecture
from tunas_tf.space.search_space import SearchSpace
from tunas_tf.training import standalone
from tunas_tf.training.config import TrainConfig

OPTIONS = cell_ops.cell_conv_options()
GDAS_V1 = genotypes.get_published_genotype('gdas_v1')
ALL_C3 = '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|'
ALL_NONE = '|none~0|+|none~0|none~1|+|none~0|none~1|none~2|'


def _tiny(name):
  return cell.with_macro(space.get_space(name), channels=8, cells_per_stage=1)


def _tiny_pgnas():
  return SearchSpace('pgnas_resnet_tiny', cell.pgnas_resnet_spec((8, 16, 32), 1), 'pgnas')


def _images(n=2, size=32, seed=0):
  return np.random.default_rng(seed).uniform(-1, 1, (n, size, size, 3)).astype(np.float32)


def _trainable(model):
  return int(sum(np.prod(v.shape) for v in model.trainable_weights))


def _randomize_batch_norms(model, seed=0):
  """Non-trivial BN statistics, so that TFLite's BN folding is actually exercised."""
  rng = np.random.default_rng(seed)
  for layer in model.layers:
    if isinstance(layer, keras.layers.BatchNormalization):
      c = layer.moving_mean.shape[0]
      layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.2, c), rng.normal(0, 0.3, c),
                         rng.uniform(0.5, 2.0, c)])


# Ops -------------------------------------------------------------------------------------------


def test_average_pooling_excludes_padding_like_count_include_pad_false():
  x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
  y = keras.layers.AveragePooling2D(3, 1, padding='same')(x).numpy()[0, :, :, 0]
  assert y[0, 0] == pytest.approx(np.mean(x[0, :2, :2, 0]))  # 4 valid inputs, not 9.
  assert y[1, 1] == pytest.approx(np.mean(x[0, :3, :3, 0]))
  assert y[0, 1] == pytest.approx(np.mean(x[0, :2, :3, 0]))


@pytest.mark.parametrize('size', [8, 7])
def test_factorized_reduce_sees_every_pixel(size):
  inputs = keras.Input((size, size, 4))
  model = keras.Model(inputs, cell_ops.factorized_reduce(inputs, 6, 2, OPTIONS, 'fr'))
  out_size = -(-size // 2)
  assert model.output_shape == (None, out_size, out_size, 6)
  x = np.abs(_images(1, size)[..., :1].repeat(4, -1)) + 0.1
  base = model(x, training=False).numpy()
  for r, c in [(0, 0), (1, 1), (size - 1, size - 1)]:  # Even and odd pixels both matter.
    bumped = x.copy()
    bumped[0, r, c] += 5.0
    assert not np.allclose(model(bumped, training=False).numpy(), base), (r, c)


def test_zero_op_shapes_and_values():
  inputs = keras.Input((8, 8, 4))
  out = cell_ops.Zero(6, 2)(inputs)
  assert tuple(out.shape) == (None, 4, 4, 6)
  value = cell_ops.Zero(6, 2)(_images(2, 8)[..., :4])
  assert value.shape == (2, 4, 4, 6) and not np.any(value.numpy())
  assert cell_ops.Zero.from_config(cell_ops.Zero(6, 2).get_config()).filters == 6


@pytest.mark.parametrize('op', cell.CELL_OPS)
@pytest.mark.parametrize('strides', [1, 2])
def test_every_cell_op_keeps_the_cell_shape(op, strides):
  inputs = keras.Input((8, 8, 8))
  out = cell_ops.apply_cell_op(op, inputs, 8, strides, OPTIONS, 'e')
  assert tuple(out.shape) == (None, 8 // strides, 8 // strides, 8)


def test_unknown_cell_op_lists_known_ops():
  with pytest.raises(UserError, match='known cell ops: .*nor_conv_3x3'):
    cell_ops.apply_cell_op('conv_9x9', keras.Input((8, 8, 8)), 8, 1, OPTIONS, 'e')


# Models ----------------------------------------------------------------------------------------


def _nb201_params(ops_per_cell_c3, c=16, n=5, classes=10):
  """Closed-form trainable parameters of an NB201 network whose cells have only nor_conv_3x3
  edges (count `ops_per_cell_c3`) and none edges (PyTorch counts: conv weights + BN affine)."""
  total = 3 * 9 * c + 2 * c  # Stem.
  for stage in range(3):
    w = c * 2 ** stage
    if stage:  # Residual block w/2 -> w: two 3×3 ReLU-Conv-BN and the 1×1 shortcut conv.
      total += 9 * (w // 2) * w + 2 * w + 9 * w * w + 2 * w + (w // 2) * w
    total += n * ops_per_cell_c3 * (9 * w * w + 2 * w)
  return total + 2 * 4 * c + 4 * c * classes + classes  # lastact BN, classifier.


def test_nb201_reference_parameter_counts_match_nas_bench_201():
  s = space.get_space('nas_bench_201')
  big = build_cell_model(s, cell.from_nb201_string(ALL_C3))
  small = build_cell_model(s, cell.from_nb201_string(ALL_NONE))
  # NB201's parameter range is 0.073306 .. 1.531546 M on CIFAR-10.
  assert (_trainable(big), _trainable(small)) == (1531546, 73306)
  assert _trainable(big) == _nb201_params(6) and _trainable(small) == _nb201_params(0)
  names = {layer.name for layer in big.layers}
  assert {'cells_0_e1_0_nor_conv_3x3_conv', 'cells_5_a_conv', 'cells_16_e3_2_nor_conv_3x3_bn',
          'classifier'} <= names
  assert len([n for n in names if n.endswith('_add') and n.startswith('cells_5')]) == 1


def test_darts_v2_parameter_count_matches_darts():
  s = cell.with_macro(space.get_space('darts'), channels=36, cells_per_stage=6, eval_layout=True)
  model = build_cell_model(s, genotypes.get_published_genotype('darts_v2'))
  # DARTS's train.py reports 3.349342 M for this network; GDAS's head adds BN(576) (1,152).
  assert _trainable(model) == 3349342 + 2 * 576


def test_none_edges_add_nothing_and_an_empty_node_is_zero():
  s = _tiny('nas_bench_201')
  arch = cell.from_nb201_string('|none~0|+|nor_conv_1x1~0|none~1|+|none~0|skip_connect~1|'
                                'avg_pool_3x3~2|')
  names = [layer.name for layer in build_cell_model(s, arch).layers]
  assert 'cells_0_n1_zero' in names and not any('_none' in n for n in names)
  assert 'cells_0_e3_2_avg_pool_3x3_avgpool' in names


# Small cells that still hold every op of their space (TFLite conversion time grows with the
# layer count; the published GDAS-V1 genotype is converted in a slow test).
DARTS_SMALL = genotypes.Genotype(
    normal=(('sep_conv_3x3', 0), ('skip_connect', 1), ('dil_conv_3x3', 2), ('avg_pool_3x3', 0),
            ('skip_connect', 3), ('max_pool_3x3', 1), ('skip_connect', 4), ('skip_connect', 2)),
    normal_concat=(2, 3, 4, 5),
    reduce=(('sep_conv_5x5', 1), ('max_pool_3x3', 1), ('skip_connect', 0), ('skip_connect', 2),
            ('dil_conv_5x5', 2), ('avg_pool_3x3', 1), ('skip_connect', 4), ('max_pool_3x3', 0)),
    reduce_concat=(2, 3, 4, 5))
SETN_SMALL = genotypes.Genotype(
    normal=(('max_pool_3x3', 0), ('conv_3x1_1x3', 1), ('avg_pool_3x3', 2), ('skip_connect', 2),
            ('skip_connect', 0), ('conv_3x1_1x3', 3), ('max_pool_3x3', 4), ('avg_pool_3x3', 1)),
    normal_concat=(2, 3, 4, 5),
    reduce=(('skip_connect', 0), ('conv_3x1_1x3', 1), ('avg_pool_3x3', 1), ('max_pool_3x3', 1),
            ('skip_connect', 3), ('skip_connect', 2), ('max_pool_3x3', 0), ('avg_pool_3x3', 4)),
    reduce_concat=(2, 3, 4, 5))
FRC_NORMAL = genotypes.Genotype(
    normal=(('dil_conv_3x3', 0), ('skip_connect', 1), ('max_pool_3x3', 2), ('avg_pool_3x3', 0),
            ('skip_connect', 3), ('none', 1), ('skip_connect', 2), ('max_pool_3x3', 4)),
    normal_concat=(2, 3, 4, 5), reduce=(), reduce_concat=())


def _case(name):
  """(space, architecture or genotype) of one architecture per space, at C=8, N=1."""
  if name == 'nas_bench_201':
    return _tiny(name), cell.from_nb201_string(ALL_C3.replace('nor_conv_3x3~1', 'avg_pool_3x3~1'))
  if name == 'darts':  # Its reduction cell reads input 1 twice, as GDAS allows.
    return _tiny(name), DARTS_SMALL
  if name == 'darts_frc':
    return _tiny(name), genotypes.genotype_to_darts_arch(_tiny(name), FRC_NORMAL)
  if name == 'setn':
    return _tiny(name), genotypes.setn_architecture(_tiny(name), SETN_SMALL)
  return _tiny_pgnas(), _tiny_pgnas().sample(random.Random(1))


@pytest.fixture(scope='module')
def models():
  keras.utils.set_random_seed(0)
  result = {}
  for name in ('nas_bench_201', 'darts', 'darts_frc', 'setn', 'pgnas_resnet'):
    s, arch = _case(name)
    model = build_cell_model(s, arch, num_classes=10, image_size=32)
    _randomize_batch_norms(model)
    result[name] = model
  return result


@pytest.mark.parametrize('name', ['nas_bench_201', 'darts', 'darts_frc', 'setn', 'pgnas_resnet'])
def test_forward_and_tflite_float_parity(models, name):
  model = models[name]
  logits = model(_images(), training=False).numpy()
  assert logits.shape == (2, 10) and np.all(np.isfinite(logits))
  assert not np.allclose(logits[0], logits[1])
  assert export.float_parity(model, export.convert_to_tflite(model), num_samples=2) < 1e-4


@pytest.mark.slow
def test_published_gdas_genotype_tflite_parity():
  model = build_cell_model(_tiny('darts'), GDAS_V1)
  _randomize_batch_norms(model)
  assert export.float_parity(model, export.convert_to_tflite(model), num_samples=2) < 1e-4


def test_darts_arch_and_genotype_build_the_same_network():
  s = _tiny('darts')
  g = GDAS_V1._replace(reduce=GDAS_V1.normal)  # Distinct inputs in every node.
  from_arch = build_cell_model(s, genotypes.genotype_to_darts_arch(s, g))
  from_genotype = build_cell_model(s, g)
  assert sorted(l.name for l in from_arch.layers) == sorted(l.name for l in from_genotype.layers)
  assert from_arch.count_params() == from_genotype.count_params()


def test_frc_and_pgnas_structure():
  frc = build_cell_model(_tiny('darts_frc'), _tiny('darts_frc').sample(random.Random(0)))
  names = {layer.name for layer in frc.layers}
  assert {'cells_1_frc_conv0_conv1x3', 'cells_2_frc_concat'} <= names
  assert frc.get_layer('cells_1_frc_conv0_conv1x3').groups == cell_ops.FRC_GROUPS
  s = _tiny_pgnas()
  everything = build_pgnas_resnet(s, Architecture(s.name, (1,) * 9))
  nothing = build_pgnas_resnet(s, Architecture(s.name, (0,) * 9))
  assert {'blocks_0_k1_a_conv', 'blocks_2_k5_b_bn'} <= {l.name for l in everything.layers}
  assert not any('_k' in l.name for l in nothing.layers)
  assert nothing.count_params() < everything.count_params()


def test_cell_model_trains_with_the_training_optimizer():
  arch = cell.from_nb201_string('|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|'
                                'avg_pool_3x3~2|')
  model = build_cell_model(_tiny('nas_bench_201'), arch)
  config = TrainConfig(search_space='nas_bench_201', arch='c3-noneskip-nonenoneavg', optimizer='sgd',
                       batch_size=4, weight_decay=5e-4)
  model.compile(optimizer=standalone.make_optimizer(config, total_steps=4),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  before = [w.numpy().copy() for w in model.trainable_weights]
  history = model.fit(_images(8), np.arange(8) % 10, batch_size=4, epochs=1, verbose=0)
  assert np.isfinite(history.history['loss'][0])
  assert any(not np.allclose(a, w.numpy()) for a, w in zip(before, model.trainable_weights))


def test_build_errors_are_user_errors():
  with pytest.raises(UserError, match="for space 'darts', not 'nas_bench_201'"):
    build_cell_model('nas_bench_201', Architecture('darts', (0,) * 28))
  with pytest.raises(UserError, match='A Genotype can only be built in a NASNet cell space'):
    build_cell_model('nas_bench_201', GDAS_V1)
  with pytest.raises(UserError, match='fixed_reduction=True, but the genotype has a reduction'):
    build_cell_model('darts_frc', GDAS_V1)
  with pytest.raises(UserError, match="'mobile' space; build_cell_model builds cell"):
    build_cell_model('proxylessnas', space.get_reference('proxylessnas_mobile'))
  with pytest.raises(UserError, match='image_size must be an integer >= 8, got 4'):
    build_cell_model('nas_bench_201', cell.from_nb201_string(ALL_NONE), image_size=4)
  with pytest.raises(UserError, match='not a PGNAS'):
    build_pgnas_resnet('nas_bench_201', cell.from_nb201_string(ALL_NONE))
