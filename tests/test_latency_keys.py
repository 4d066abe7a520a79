"""Tests of latency keys and their enumeration (pure Python, no TensorFlow)."""

import random

import pytest

from latency import enumeration
from latency import keys as keys_lib
from latency.lattice import Lattice
from tests.latency_fixtures import all_archs, toy_space
from tunas_tf.errors import UserError
from tunas_tf.space import OneOf, SearchSpace, get_space
from tunas_tf.space.specs import Block, ConvSpec, MobileSpaceSpec, ZeroSpec

MOBILE_SPACES = ('proxylessnas', 'proxylessnas_enlarged', 'mobilenet_v3_like', 'mobilenet_v2',
                 'mnasnet_b1', 'mobilenet_v3_large')


@pytest.mark.parametrize('name', MOBILE_SPACES)
@pytest.mark.parametrize('granularity', keys_lib.GRANULARITIES)
def test_every_layer_of_random_archs_has_an_enumerated_key(name, granularity):
  space = get_space(name)
  units = enumeration.enumerate_units(space, 224, granularity)
  keys = [u.key for u in units]
  assert len(keys) == len(set(keys)), 'duplicate keys'
  known = set(keys)
  rng = random.Random(0)
  for _ in range(200 if space.num_decisions else 1):
    arch = space.sample(rng)
    for unit in enumeration.arch_units(space, arch, 224, granularity):
      assert unit.key in known, (space.to_string(arch), unit.key)


@pytest.mark.parametrize('granularity', keys_lib.GRANULARITIES)
@pytest.mark.parametrize('image_size', [32, 56])
def test_enumeration_is_exactly_the_union_over_all_archs(granularity, image_size):
  space = toy_space()
  used = set()
  for arch in all_archs(space):
    used.update(u.key for u in enumeration.arch_units(space, arch, image_size, granularity))
  enumerated = [u.key for u in enumeration.enumerate_units(space, image_size, granularity)]
  assert len(enumerated) == len(set(enumerated))
  assert set(enumerated) == used


def test_key_counts_at_224():
  # Pinned so that a change in the spaces or the keys is noticed (the README reports them).
  assert enumeration.key_counts('proxylessnas', 224) == {'block': 73, 'op': 98}
  assert enumeration.key_counts('proxylessnas_enlarged', 224) == {'block': 1651, 'op': 672}
  assert enumeration.key_counts('mobilenet_v3_like', 224) == {'block': 7584, 'op': 1512}


def test_op_units_of_a_bottleneck_are_its_converted_ops():
  space = get_space('mobilenet_v3_like')
  lattice = Lattice(space, 224)
  shape = next(s for _, s in lattice.all_shapes()
               if s.op == 'bottleneck' and s.se_filters and s.residual)
  ops = [u.op for u in keys_lib.layer_units(shape, keys_lib.OP)]
  assert ops == ['conv', 'depthwise', 'se', 'conv', 'add']
  expand, depthwise, se, project, add = keys_lib.layer_units(shape, keys_lib.OP)
  assert (expand.input_filters, expand.output_filters, expand.kernel_size) == (
      shape.input_filters, shape.mid_filters, 1)
  assert (depthwise.kernel_size, depthwise.strides) == (shape.kernel_size, shape.strides)
  assert se.mid_filters == shape.se_filters and se.input_size == shape.output_size
  assert project.activation == '' and project.output_filters == shape.output_filters
  assert add.input_filters == shape.output_filters
  assert keys_lib.layer_units(shape, keys_lib.BLOCK)[0].residual


def test_skipped_layer_costs_nothing():
  shape = next(s for _, s in Lattice(toy_space(), 32).all_shapes() if s.op == 'skip')
  assert keys_lib.layer_units(shape, keys_lib.OP) == ()
  assert keys_lib.layer_units(shape, keys_lib.BLOCK) == ()


def test_key_round_trip_and_dtype():
  for unit in enumeration.enumerate_units(toy_space(), 32, keys_lib.OP, dtype='int8'):
    assert unit.key.endswith('dtype=int8')
    assert keys_lib.parse_key(unit.key) == unit


@pytest.mark.parametrize('key', [
    'op=conv,in=8x8x3',
    'op=warp,in=8x8x3,out=8x8x8,mid=0,k=1,s=1,se=0,act=none,bn=1,res=0,dtype=float32',
    'op=conv,in=8x9x3,out=8x8x8,mid=0,k=1,s=1,se=0,act=none,bn=1,res=0,dtype=float32',
    'op=conv,in=8x8x3,out=8x8x8,mid=0,k=1,s=1,se=0,act=none,bn=1,res=0,dtype=float16',
    # Not canonical: the output size does not follow from the input and the stride.
    'op=conv,in=8x8x3,out=2x2x8,mid=0,k=1,s=1,se=0,act=none,bn=1,res=0,dtype=float32',
])
def test_bad_keys_are_user_errors(key):
  with pytest.raises(UserError):
    keys_lib.parse_key(key)


def test_bad_requests():
  with pytest.raises(UserError, match='granularity'):
    enumeration.enumerate_units('proxylessnas', 224, 'layer')
  with pytest.raises(UserError, match='dtype'):
    enumeration.enumerate_units('proxylessnas', 224, 'op', dtype='float16')
  with pytest.raises(UserError, match='image_size'):
    enumeration.enumerate_units('proxylessnas', 4)
  with pytest.raises(UserError, match='mobile'):
    Lattice('nas_bench_201', 32)
  with pytest.raises(UserError, match='Unknown search space'):
    Lattice('no_such_space', 224)


def test_layer_decisions_outside_their_layer_are_rejected():
  # A block whose filters are a OneOf is fine; a top-level decision outside any layer is not.
  spec = MobileSpaceSpec((Block((ConvSpec(OneOf((3, 5), 'op')),), 8),), 8)
  assert enumeration.key_counts(SearchSpace('ok', spec, 'mobile'), 32) == {'block': 3, 'op': 3}
  bad = MobileSpaceSpec((Block((ConvSpec(3), ZeroSpec()), 8),), OneOf((8, 16), 'filters'))
  with pytest.raises(UserError):
    Lattice(SearchSpace('bad', bad, 'mobile'), 32)
