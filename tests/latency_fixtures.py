"""Latency-test fixtures shared by several test files: a toy search space, its architectures
and fake latency tables (pure Python + numpy, no TensorFlow)."""

import itertools

import numpy as np

from latency import enumeration
from latency.table import Entry, LatencyTable
from tunas_tf.space import Architecture, SearchSpace, mobile, specs
from tunas_tf.space.specs import (Block, ConvSpec, DepthwiseBottleneckSpec, GlobalAveragePoolSpec,
                                  MobileSpaceSpec, ResidualSpec, SeparableConvSpec)


def toy_space() -> SearchSpace:
  """Small enough to enumerate every architecture; has every kind of decision.

  Searched filters (so a layer's input width is the previous block's choice), a skippable
  separable conv, expansion / kernel / SE choices, a skippable residual bottleneck and h-swish.
  """
  bneck = lambda strides: DepthwiseBottleneckSpec(
      mobile.expansion_oneof((1, 2)), mobile.kernel_oneof((3, 5)), strides, specs.HSWISH,
      mobile.se_oneof())
  blocks = (
      Block((ConvSpec(3, strides=2, activation=specs.RELU),
             ResidualSpec(mobile.skippable(SeparableConvSpec(mobile.kernel_oneof((3, 5)))))),
            mobile.filters_oneof((8, 16))),
      Block((bneck(2), ResidualSpec(mobile.skippable(bneck(1)))), mobile.filters_oneof((16, 24))),
      Block((ConvSpec(1, activation=specs.RELU), GlobalAveragePoolSpec()),
            mobile.filters_oneof((32, 48))),
  )
  return SearchSpace('toy', MobileSpaceSpec(blocks, 8), 'mobile')


def all_archs(space: SearchSpace):
  """Every distinct (canonical) architecture of a small space."""
  seen = set()
  for indices in itertools.product(*[range(d.num_choices) for d in space.decisions]):
    arch = space.canonical(Architecture(space.name, indices))
    if arch.indices not in seen:
      seen.add(arch.indices)
      yield arch


def make_header(space_name: str, image_size: int, granularity: str = 'op',
                num_classes: int = 1000, **extra) -> dict:
  """A valid table header for tests; `extra` adds or overrides fields."""
  header = {
      'search_space': space_name, 'image_size': image_size, 'num_classes': num_classes,
      'granularity': granularity, 'dtype': 'float32', 'threads': 1, 'device': 'test',
      'runtime': 'litert-python', 'xnnpack': True, 'cpu_model': 'test cpu',
      'libraries': {'tensorflow': 'x'},
      'protocol': {'warmup': 1, 'min_runs': 1, 'min_seconds': 0.0, 'statistic': 'median'},
  }
  header.update(extra)
  return header


def fake_table(space, image_size: int, granularity: str = 'op', seed: int = 0,
               num_classes: int = 1000) -> LatencyTable:
  """A complete table with random positive entries (for cost-model arithmetic)."""
  rng = np.random.default_rng(seed)
  units = enumeration.enumerate_units(space, image_size, granularity, num_classes=num_classes)
  entries = {u.key: Entry(float(rng.uniform(0.01, 1.0)), None, None, 1) for u in units}
  name = space if isinstance(space, str) else space.name
  return LatencyTable(make_header(name, image_size, granularity, num_classes), entries)
