"""The TuNAS mobile search spaces and the spaces of the reference models.

Follows `mobile_search_space_v3.py` of the TuNAS reference code (facts in
shared/docs/anchors/tunas.md): `proxylessnas` (73 decisions, ~10^21.3), `proxylessnas_enlarged`
(~10^28.1) and `mobilenet_v3_like` (86 decisions, ~10^42.9), all with op collapsing: one
bottleneck per layer whose kernel size, expansion and SE are separate decisions.

Ordering note: within a bottleneck our decisions are (expansion, kernel, SE), so strings read
'e6k5se'; decision counts and cardinalities equal the reference code's.
"""

from typing import Sequence

from tunas_tf.space import specs
from tunas_tf.space.schema import FILTERS_TAG, OP_TAG, OneOf
from tunas_tf.space.specs import (Block, ConvSpec, DepthwiseBottleneckSpec, FilterMultiplier,
                                  GlobalAveragePoolSpec, MobileSpaceSpec, ResidualSpec,
                                  SeparableConvSpec, ZeroSpec)

FILTERS_BASE = 8
PROXYLESSNAS_MOBILE_FILTERS = (32, 16, 32, 40, 80, 96, 192, 320, 1280)
MOBILENET_V2_FILTERS = (32, 16, 24, 32, 64, 96, 160, 320, 1280)
MNASNET_B1_FILTERS = (32, 16, 24, 40, 80, 96, 192, 320, 1280)
PROXYLESSNAS_ENLARGED_BASE_FILTERS = (16, 16, 16, 32, 64, 128, 256, 512, 1024)
MOBILENET_V3_LIKE_BASE_FILTERS = (16, 16, 32, 64, 128, 256, 512, 1024)
FILTER_MULTIPLIERS = (0.5, 0.625, 0.75, 1.0, 1.25, 1.5, 2.0)
# Stride of the first layer of each of the five searchable blocks.
_BODY_STRIDES = (2, 2, 2, 1, 2)
_V3_BODY_ACTIVATIONS = (specs.RELU, specs.RELU, specs.HSWISH, specs.HSWISH, specs.HSWISH)
_LAYERS_PER_BODY_BLOCK = 4


def kernel_oneof(kernels: Sequence[int]) -> OneOf:
  return OneOf(tuple(kernels), OP_TAG, tuple(f'k{k}' for k in kernels))


def filters_oneof(filters: Sequence[int]) -> OneOf:
  return OneOf(tuple(filters), FILTERS_TAG, tuple(f'c{f}' for f in filters))


def expansion_oneof(scales: Sequence[float]) -> OneOf:
  return OneOf(tuple(FilterMultiplier(float(s)) for s in scales), FILTERS_TAG)


def se_oneof() -> OneOf:
  return OneOf((False, True), OP_TAG, ('', 'se'))


def skippable(layer) -> OneOf:
  return OneOf((layer, ZeroSpec()), OP_TAG)


def scaled_choices(base: int, multipliers: Sequence[float]) -> tuple:
  """Sorted distinct TuNAS-rounded filter sizes base * m."""
  return tuple(sorted({specs.scale_filters(base, m, FILTERS_BASE) for m in multipliers}))


# ProxylessNAS family ---------------------------------------------------------------------------


def _proxyless_bneck(strides: int) -> DepthwiseBottleneckSpec:
  return DepthwiseBottleneckSpec(expansion_filters=expansion_oneof((3, 6)),
                                 kernel_size=kernel_oneof((3, 5, 7)), strides=strides,
                                 activation=specs.RELU)


def _proxyless_body_block(strides: int, filters: OneOf) -> Block:
  # The first layer may not be skipped: a single-choice OneOf, as in the reference code.
  layers = [OneOf((_proxyless_bneck(strides),), OP_TAG)]
  layers += [ResidualSpec(skippable(_proxyless_bneck(1)))
             for _ in range(_LAYERS_PER_BODY_BLOCK - 1)]
  return Block(tuple(layers), filters)


def proxylessnas_base(block_filters: Sequence[Sequence[int]]) -> MobileSpaceSpec:
  """`_proxylessnas_search_base`: 9 blocks (stem, sepconv, 5 searchable, last bneck, head).

  Args:
    block_filters: for each of the 9 blocks, its output-filter choices.
  """
  f = [filters_oneof(choices) for choices in block_filters]
  blocks = [Block((ConvSpec(3, strides=2, activation=specs.RELU),), f[0]),
            Block((SeparableConvSpec(kernel_oneof((3, 5, 7)), 1, specs.RELU),), f[1])]
  blocks += [_proxyless_body_block(s, f[2 + i]) for i, s in enumerate(_BODY_STRIDES)]
  blocks.append(Block((OneOf((_proxyless_bneck(1),), OP_TAG),), f[7]))
  blocks.append(Block((ConvSpec(1, activation=specs.RELU), GlobalAveragePoolSpec()), f[8]))
  return MobileSpaceSpec(tuple(blocks), FILTERS_BASE)


def proxylessnas_spec(filters: Sequence[int] = PROXYLESSNAS_MOBILE_FILTERS) -> MobileSpaceSpec:
  return proxylessnas_base([(f,) for f in filters])


def proxylessnas_enlarged_spec() -> MobileSpaceSpec:
  return proxylessnas_base([scaled_choices(f, FILTER_MULTIPLIERS)
                            for f in PROXYLESSNAS_ENLARGED_BASE_FILTERS])


# MobileNetV3 family ----------------------------------------------------------------------------


def _v3_bneck(strides: int, activation: str) -> DepthwiseBottleneckSpec:
  return DepthwiseBottleneckSpec(expansion_filters=expansion_oneof((1, 2, 3, 4, 5, 6)),
                                 kernel_size=kernel_oneof((3, 5, 7)), strides=strides,
                                 activation=activation, use_squeeze_and_excite=se_oneof())


def mobilenet_v3_like_spec() -> MobileSpaceSpec:
  """`_mobilenet_v3_large_search_base` with relative expansions and searched SE."""
  f = [filters_oneof(scaled_choices(b, FILTER_MULTIPLIERS))
       for b in MOBILENET_V3_LIKE_BASE_FILTERS]
  stem = Block((ConvSpec(kernel_oneof((3, 5)), strides=2, activation=specs.HSWISH),
                ResidualSpec(skippable(SeparableConvSpec(kernel_oneof((3, 5, 7)), 1,
                                                         specs.RELU)))), f[0])
  blocks = [stem]
  for i, (s, act) in enumerate(zip(_BODY_STRIDES, _V3_BODY_ACTIVATIONS)):
    layers = [_v3_bneck(s, act)]
    layers += [ResidualSpec(skippable(_v3_bneck(1, act)))
               for _ in range(_LAYERS_PER_BODY_BLOCK - 1)]
    blocks.append(Block(tuple(layers), f[1 + i]))
  blocks.append(Block((ConvSpec(1, activation=specs.HSWISH), GlobalAveragePoolSpec()), f[6]))
  blocks.append(Block((ConvSpec(1, activation=specs.HSWISH, use_batch_norm=False),), f[7]))
  return MobileSpaceSpec(tuple(blocks), FILTERS_BASE)


# (filters, kernel, expansion sizes, SE, activation, first stride) of MobileNetV3-Large.
_MOBILENET_V3_LARGE_BLOCKS = (
    (24, 3, (64, 72), False, specs.RELU, 2),
    (40, 5, (72, 120, 120), True, specs.RELU, 2),
    (80, 3, (240, 200, 184, 184), False, specs.HSWISH, 2),
    (112, 3, (480, 672), True, specs.HSWISH, 1),
    (160, 5, (672, 960, 960), True, specs.HSWISH, 2),
)


def mobilenet_v3_large_spec() -> MobileSpaceSpec:
  """A faithful MobileNetV3-Large (absolute expansion sizes); a space with no decisions."""
  stem = Block((ConvSpec(3, strides=2, activation=specs.HSWISH),
                ResidualSpec(SeparableConvSpec(3, 1, specs.RELU))), 16)
  blocks = [stem]
  for filters, kernel, expansions, se, act, stride in _MOBILENET_V3_LARGE_BLOCKS:
    layers = []
    for j, e in enumerate(expansions):
      layer = DepthwiseBottleneckSpec(e, kernel, stride if j == 0 else 1, act, se)
      layers.append(layer if j == 0 else ResidualSpec(layer))
    blocks.append(Block(tuple(layers), filters))
  blocks.append(Block((ConvSpec(1, activation=specs.HSWISH), GlobalAveragePoolSpec()), 960))
  blocks.append(Block((ConvSpec(1, activation=specs.HSWISH, use_batch_norm=False),), 1280))
  return MobileSpaceSpec(tuple(blocks), FILTERS_BASE)
