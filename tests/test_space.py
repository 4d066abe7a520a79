"""Tests of the search-space language and the registered mobile spaces (no TensorFlow)."""

import json
import math
import random
import subprocess
import sys

import pytest

from tunas_tf import space
from tunas_tf.errors import UserError
from tunas_tf.space import schema
from tunas_tf.space.architecture import Architecture
from tunas_tf.space.schema import FILTERS_TAG, OP_TAG, OneOf
from tunas_tf.space.search_space import SearchSpace
from tunas_tf.space.specs import Block, DepthwiseBottleneckSpec, ZeroSpec

SEARCH_SPACES = ('proxylessnas', 'proxylessnas_enlarged', 'mobilenet_v3_like')


def _toy_space():
  """Two layers: a skippable one with a nested kernel choice, and a fixed one; 2 filters."""
  inner = DepthwiseBottleneckSpec(OneOf((3, 6), FILTERS_TAG, ('e3', 'e6')),
                                  OneOf((3, 5, 7), OP_TAG, ('k3', 'k5', 'k7')))
  layers = (OneOf((inner, ZeroSpec()), OP_TAG), OneOf((inner,), OP_TAG))
  return SearchSpace('toy', Block(layers, OneOf((8, 16), FILTERS_TAG, ('c8', 'c16'))), 'mobile')


def test_traversal_is_post_order_with_paths_and_groups():
  toy = _toy_space()
  paths = [d.path for d in toy.decisions]
  assert paths == ['layers/0/0/expansion_filters', 'layers/0/0/kernel_size', 'layers/0',
                   'layers/1/0/expansion_filters', 'layers/1/0/kernel_size', 'layers/1',
                   'filters']
  assert [d.group for d in toy.decisions][:3] == ['layers/0'] * 3
  assert toy.decisions[-1].group == ''
  assert (toy.decisions[0].parent, toy.decisions[0].parent_choice) == (2, 0)
  assert toy.decisions[2].parent is None


def test_inactive_decisions_under_a_skip():
  toy = _toy_space()
  active = toy.active_mask((1, 2, 1, 0, 0, 0, 1))
  assert active == (False, False, True, True, True, True, True)
  canonical = toy.canonical(Architecture('toy', (1, 2, 1, 0, 0, 0, 1)))
  assert canonical.indices == (0, 0, 1, 0, 0, 0, 1)


def test_resolve_replaces_every_oneof():
  toy = _toy_space()
  block = toy.resolve(Architecture('toy', (1, 2, 0, 0, 1, 0, 1)))
  assert block.filters == 16
  assert block.layers[0] == DepthwiseBottleneckSpec(6, 7)
  assert block.layers[1].kernel_size == 5
  assert 'OneOf' not in repr(block)


def test_toy_cardinality_and_distinct_count():
  toy = _toy_space()
  assert toy.log10_cardinality() == pytest.approx(math.log10(2 * 3 * 2 * 2 * 3 * 1 * 2))
  # Layer 0: 6 bottlenecks + skip = 7; layer 1: 6; filters: 2.
  assert schema.count_distinct(toy.spec) == 7 * 6 * 2


@pytest.mark.parametrize('name,num_decisions,log10', [
    ('proxylessnas', 73, 21.3), ('proxylessnas_enlarged', 73, 28.1),
    ('mobilenet_v3_like', 86, 42.9)])
def test_tunas_spaces_match_reference_code(name, num_decisions, log10):
  s = space.get_space(name)
  assert s.num_decisions == num_decisions
  assert round(s.log10_cardinality(), 1) == log10


@pytest.mark.parametrize('name,log10', [
    ('proxylessnas', 17.8), ('proxylessnas_enlarged', 24.6), ('mobilenet_v3_like', 38.4)])
def test_hierarchically_distinct_counts(name, log10):
  assert round(space.get_space(name).log10_distinct(), 1) == log10


def test_enlarged_filter_choices_follow_tunas_rounding():
  s = space.get_space('proxylessnas_enlarged')
  filters = [d.oneof.choices for d in s.decisions if d.path.endswith('/filters')]
  assert filters[0] == (8, 16, 24, 32)
  assert filters[3] == (16, 24, 32, 40, 48, 64)
  assert filters[5] == (64, 80, 96, 128, 160, 192, 256)
  assert filters[8] == (512, 640, 768, 1024, 1280, 1536, 2048)


@pytest.mark.parametrize('name', space.list_spaces())
@pytest.mark.parametrize('seed', range(5))
def test_string_and_json_round_trip(name, seed):
  s = space.get_space(name)
  arch = s.sample(random.Random(seed))
  text = s.to_string(arch)
  assert s.parse(text) == arch
  assert Architecture.from_json(s.to_json(arch)) == arch
  assert s.parse(arch.indices_string) == arch if arch.indices else True


def test_sampling_is_uniform_per_decision():
  s = space.get_space('proxylessnas')
  rng = random.Random(1)
  kernels = [s.sample(rng).indices[1] for _ in range(3000)]
  for k in range(3):
    assert abs(kernels.count(k) / 3000 - 1 / 3) < 0.04


def test_sampling_is_deterministic_for_a_seed():
  s = space.get_space('mobilenet_v3_like')
  assert s.sample(random.Random(7)) == s.sample(random.Random(7))
  assert s.sample(random.Random(7)) != s.sample(random.Random(8))


def test_reference_strings():
  s = space.get_space('proxylessnas')
  mobile = space.get_reference('proxylessnas_mobile')
  assert s.to_string(mobile).split('-')[:5] == ['k3', 'e3k5', 'e3k3', 'skip', 'skip']
  v2 = space.get_reference('mobilenet_v2')
  assert space.get_space(v2.space).to_string(v2).count('skip') == 5
  assert space.get_reference('mobilenet_v3_large').indices == ()


def test_registry_lists_and_rejects_unknown_names():
  assert set(SEARCH_SPACES) <= set(space.list_spaces())
  with pytest.raises(UserError, match='known search spaces: .*proxylessnas'):
    space.get_space('proxyless')
  with pytest.raises(UserError, match='known reference models: .*mobilenet_v2'):
    space.get_reference('resnet50')


def test_malformed_string_names_the_position():
  s = space.get_space('proxylessnas')
  text = s.to_string(space.get_reference('proxylessnas_mobile'))
  bad = text.replace('e3k3', 'e4k3', 1)
  with pytest.raises(UserError, match=r"position 8 \(token 'e4k3', blocks/2/layers/1\)"):
    s.parse(bad)
  with pytest.raises(UserError, match='expected 22'):
    s.parse('k3-e3k5')


def test_out_of_range_index_names_the_decision():
  s = space.get_space('proxylessnas')
  indices = list(space.get_reference('proxylessnas_mobile').indices)
  indices[1] = 5
  with pytest.raises(UserError, match=r"decision 'blocks/1/layers/0/kernel_size'.*0\.\.2"):
    s.validate(Architecture('proxylessnas', tuple(indices)))
  with pytest.raises(UserError, match='73 decisions, got 3'):
    s.parse('0:1:2')


def test_parse_architecture_forms(tmp_path):
  s = space.get_space('proxylessnas')
  ref = space.get_reference('proxylessnas_mobile')
  assert space.parse_architecture('proxylessnas_mobile') == ref
  assert space.parse_architecture(s.to_string(ref), 'proxylessnas') == ref
  path = tmp_path / 'arch.json'
  path.write_text(s.to_json(ref))
  assert space.parse_architecture(str(path)) == ref
  assert space.parse_architecture('random:3', 'proxylessnas') == s.sample(random.Random(3))
  with pytest.raises(UserError, match='belongs to space'):
    space.parse_architecture('mobilenet_v2', 'proxylessnas')
  with pytest.raises(UserError, match='random:SEED'):
    space.parse_architecture('random:x', 'proxylessnas')
  with pytest.raises(UserError, match='does not exist'):
    space.parse_architecture(str(tmp_path / 'missing.json'))


def test_bad_json_is_a_clear_error():
  with pytest.raises(UserError, match='not valid JSON'):
    Architecture.from_json('{')
  with pytest.raises(UserError, match='"space" and "indices"'):
    Architecture.from_json(json.dumps({'indices': [1]}))


def test_oneof_validation():
  with pytest.raises(ValueError, match='at least one'):
    OneOf((), OP_TAG)
  with pytest.raises(ValueError, match='tag'):
    OneOf((1, 2), 'kernel')
  with pytest.raises(ValueError, match='distinct'):
    OneOf((1, 2), OP_TAG, ('a', 'a'))


def test_space_package_imports_no_tensorflow():
  code = ('import sys, tunas_tf.space; '
          'sys.exit(1 if "tensorflow" in sys.modules else 0)')
  assert subprocess.run([sys.executable, '-c', code], check=False).returncode == 0
