"""Layer specs of the TuNAS mobile search spaces (plain frozen data, no TensorFlow).

Any field may hold a `schema.OneOf` in a search space; `schema.resolve` replaces those with
concrete values, and the model builders only ever see resolved specs.
"""

import dataclasses
from typing import Any, Tuple

RELU = 'relu'
RELU6 = 'relu6'
HSWISH = 'hswish'  # TuNAS's SWISH6: x * relu6(x + 3) / 6.
SIGMOID = 'sigmoid'
ACTIVATIONS = (RELU, RELU6, HSWISH, SIGMOID)

SE_RATIO = 0.25  # TuNAS `_SQUEEZE_AND_EXCITE_RATIO`.


@dataclasses.dataclass(frozen=True)
class FilterMultiplier:
  """Filters expressed relative to the layer's input filters (TuNAS `FilterMultiplier`)."""
  scale: float

  @property
  def label(self) -> str:
    return f'e{self.scale:g}'


@dataclasses.dataclass(frozen=True)
class ZeroSpec:
  """A skipped layer (outputs zeros, so inside a residual the layer is the identity)."""

  @property
  def label(self) -> str:
    return 'skip'


@dataclasses.dataclass(frozen=True)
class ConvSpec:
  """A k×k convolution with optional batch norm and an activation ('' for none)."""
  kernel_size: Any
  strides: int = 1
  activation: str = ''
  use_batch_norm: bool = True

  @property
  def label(self) -> str:
    return ''


@dataclasses.dataclass(frozen=True)
class SeparableConvSpec:
  """Depthwise k×k + BN + activation, then a 1×1 convolution + BN (no activation)."""
  kernel_size: Any
  strides: int = 1
  activation: str = RELU

  @property
  def label(self) -> str:
    return ''


@dataclasses.dataclass(frozen=True)
class DepthwiseBottleneckSpec:
  """Inverted bottleneck: 1×1 expand + BN + act, depthwise k×k + BN + act, [SE], 1×1 + BN.

  Attributes:
    expansion_filters: a `FilterMultiplier` (relative to the input filters) or an int.
    kernel_size: depthwise kernel size.
    strides: depthwise stride.
    activation: activation after the expansion and depthwise convolutions.
    use_squeeze_and_excite: whether an SE module follows the depthwise convolution; its hidden
      width is make_divisible(expanded * SE_RATIO, filters_base), inner ReLU, sigmoid gate.
  """
  expansion_filters: Any
  kernel_size: Any
  strides: int = 1
  activation: str = RELU
  use_squeeze_and_excite: Any = False

  @property
  def label(self) -> str:
    return ''


@dataclasses.dataclass(frozen=True)
class ResidualSpec:
  """`layer(x) + x` when shapes allow (stride 1, same filters); a skipped layer gives `x`."""
  layer: Any


@dataclasses.dataclass(frozen=True)
class GlobalAveragePoolSpec:
  """Global average pooling, keeping a 1×1 spatial map."""


@dataclasses.dataclass(frozen=True)
class Block:
  """A sequence of layers; every layer outputs `filters` channels (except pooling)."""
  layers: Tuple[Any, ...]
  filters: Any


@dataclasses.dataclass(frozen=True)
class MobileSpaceSpec:
  """A whole network: blocks, then a classifier (dropout, 1×1 conv with bias) added by builders.

  Attributes:
    blocks: the blocks in order; the first is the stem, the last the head.
    filters_base: channel counts are rounded to multiples of this.
  """
  blocks: Tuple[Block, ...]
  filters_base: int = 8


def scale_filters(filters: int, multiplier: float, base: int) -> int:
  """TuNAS `scale_filters`: round filters * multiplier half up to a multiple of `base`."""
  rounded = int(filters * multiplier / base + 0.5) * base
  return max(rounded, base)


def make_divisible(value: float, divisor: int, min_value: int = None) -> int:
  """The MobileNetV3 rounding: nearest multiple of `divisor`, never below 90% of `value`."""
  min_value = min_value or divisor
  new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
  if new_value < 0.9 * value:
    new_value += divisor
  return new_value


def expanded_filters(expansion: Any, input_filters: int, base: int) -> int:
  """Width of a bottleneck's expanded layer."""
  if isinstance(expansion, FilterMultiplier):
    return scale_filters(input_filters, expansion.scale, base)
  return int(expansion)


def se_filters(expanded: int, base: int) -> int:
  return make_divisible(expanded * SE_RATIO, base)
