"""Per-layer shapes of a resolved mobile architecture (pure Python, no TensorFlow).

One walk over a resolved `MobileSpaceSpec` computes, for every layer, its input resolution,
channel widths, kernel, stride, squeeze-and-excite width, activation and whether it is a residual.
The stand-alone Keras builder, the MAC/parameter counters and the latency-table keys are all
built from this one walk, so they cannot disagree about what an architecture is.

Conventions (TuNAS `rematlib/mobile_model_v3.py`):

* every layer of a `Block` outputs `block.filters` channels, except global pooling, which keeps
  its input channels;
* 'same' padding, so a stride-s layer maps an H×H map to ceil(H / s)×ceil(H / s);
* `ResidualSpec(layer)` adds its input when the stride is 1 and the widths agree; a skipped
  layer (`ZeroSpec`) inside it is the identity.
"""

import dataclasses
from typing import Any, Tuple

from tunas_tf.errors import UserError
from tunas_tf.space import registry
from tunas_tf.space import specs

# Layer kinds (`LayerShape.op`).
CONV = 'conv'
SEPARABLE_CONV = 'separable_conv'
BOTTLENECK = 'bottleneck'
GLOBAL_POOL = 'global_pool'
SKIP = 'skip'  # A skipped layer inside a residual: the identity.
OPS = (CONV, SEPARABLE_CONV, BOTTLENECK, GLOBAL_POOL, SKIP)

MIN_IMAGE_SIZE = 8
IMAGE_CHANNELS = 3


@dataclasses.dataclass(frozen=True)
class LayerShape:
  """One layer of a resolved architecture, with the shapes it sees.

  Attributes:
    path: the layer's spec path, e.g. 'blocks/3/layers/1' (the group of its decisions).
    op: one of `OPS`.
    input_size: height (= width) of the input map.
    input_filters: input channels.
    mid_filters: width of the depthwise stage: the expanded width of a bottleneck, the input
      width of a separable conv; equal to `output_filters` for other ops.
    output_filters: output channels.
    kernel_size: kernel of the conv (CONV) or of the depthwise conv; 0 for pooling and skips.
    strides: stride of the conv or of the depthwise conv (1 for pooling and skips).
    se_filters: hidden width of the squeeze-and-excite module; 0 when there is none.
    activation: activation name (`specs.ACTIVATIONS`), '' for none.
    use_batch_norm: whether the convolutions are followed by batch norm (else they have biases).
    residual: whether the layer's input is added to its output.
  """
  path: str
  op: str
  input_size: int
  input_filters: int
  mid_filters: int
  output_filters: int
  kernel_size: int = 0
  strides: int = 1
  se_filters: int = 0
  activation: str = ''
  use_batch_norm: bool = True
  residual: bool = False

  @property
  def output_size(self) -> int:
    if self.op == GLOBAL_POOL:
      return 1
    return -(-self.input_size // self.strides)  # ceil: 'same' padding.

  @property
  def name(self) -> str:
    """Keras name prefix derived from the path, e.g. 'blocks_3_layers_1'."""
    return self.path.replace('/', '_')


def spec_layer_shapes(spec: specs.MobileSpaceSpec, image_size: int) -> Tuple[LayerShape, ...]:
  """Walks a resolved spec (no `OneOf` left) and returns the shape of every layer.

  Args:
    spec: a resolved `MobileSpaceSpec`, e.g. `SearchSpace.resolve(arch)`.
    image_size: height (= width) of the input image.

  Returns:
    One `LayerShape` per layer, in network order (skipped layers included, as `SKIP`).

  Raises:
    UserError: for an image too small for the network's strides, or a spec the mobile
      builders cannot express (a `ZeroSpec` outside a residual, an unknown layer type...).
  """
  _check_image_size(image_size)
  if not isinstance(spec, specs.MobileSpaceSpec):
    raise UserError(f'Expected a resolved MobileSpaceSpec, got {type(spec).__name__}')
  size, filters = image_size, IMAGE_CHANNELS
  result = []
  for b, block in enumerate(spec.blocks):
    for l, layer in enumerate(block.layers):
      shape = _layer_shape(f'blocks/{b}/layers/{l}', layer, size, filters, block.filters,
                           spec.filters_base)
      if shape.strides > 1 and shape.input_size < shape.strides:
        raise UserError(
            f'image_size {image_size} is too small: layer {shape.path!r} has stride '
            f'{shape.strides} but receives a {shape.input_size}x{shape.input_size} map; use an '
            f'image_size of at least {total_stride(spec)}')
      result.append(shape)
      size, filters = shape.output_size, shape.output_filters
  return tuple(result)


def resolve_mobile(space: Any, arch: Any) -> specs.MobileSpaceSpec:
  """The resolved spec of `arch`, validated against `space` (a `SearchSpace` or its name)."""
  if isinstance(space, str):
    space = registry.get_space(space)
  if space.family != 'mobile':
    raise UserError(f'Space {space.name!r} is a {space.family!r} space; layer shapes are '
                    "defined for 'mobile' spaces only")
  return space.resolve(arch)


def layer_shapes(space: Any, arch: Any, image_size: int) -> Tuple[LayerShape, ...]:
  """`spec_layer_shapes` of `arch`, validated against `space` (a `SearchSpace` or its name)."""
  return spec_layer_shapes(resolve_mobile(space, arch), image_size)


def total_stride(spec: specs.MobileSpaceSpec) -> int:
  """Product of the strides of all layers of a resolved spec."""
  result = 1
  for block in spec.blocks:
    for layer in block.layers:
      inner = layer.layer if isinstance(layer, specs.ResidualSpec) else layer
      result *= int(getattr(inner, 'strides', 1))
  return result


def _check_image_size(image_size: Any) -> None:
  if isinstance(image_size, bool) or not isinstance(image_size, int):
    raise UserError(f'image_size must be an integer, got {image_size!r}')
  if image_size < MIN_IMAGE_SIZE:
    raise UserError(f'image_size must be at least {MIN_IMAGE_SIZE}, got {image_size}')


def _check_activation(path: str, activation: Any) -> str:
  if activation != '' and activation not in specs.ACTIVATIONS:
    raise UserError(f'Layer {path!r}: unknown activation {activation!r}; known activations: '
                    f"{', '.join(specs.ACTIVATIONS)} or '' (none)")
  return activation


def _positive_int(path: str, field: str, value: Any) -> int:
  if isinstance(value, bool) or not isinstance(value, int) or value < 1:
    raise UserError(f'Layer {path!r}: {field} must be a positive integer, got {value!r} '
                    '(is the spec resolved?)')
  return value


def _layer_shape(path: str, layer: Any, size: int, cin: int, block_filters: Any,
                 base: int) -> LayerShape:
  """The shape of one layer given its input resolution and width."""
  if isinstance(layer, specs.ResidualSpec):
    return _residual_shape(path, layer.layer, size, cin, block_filters, base)
  if isinstance(layer, specs.GlobalAveragePoolSpec):
    return LayerShape(path, GLOBAL_POOL, size, cin, cin, cin)
  if isinstance(layer, specs.ZeroSpec):
    raise UserError(f'Layer {path!r} is a ZeroSpec outside a ResidualSpec; it would output '
                    'zeros. Only layers inside a ResidualSpec may be skipped')
  cout = _positive_int(path, 'block filters', block_filters)
  if isinstance(layer, specs.ConvSpec):
    return LayerShape(path, CONV, size, cin, cout, cout,
                      kernel_size=_positive_int(path, 'kernel_size', layer.kernel_size),
                      strides=_positive_int(path, 'strides', layer.strides),
                      activation=_check_activation(path, layer.activation),
                      use_batch_norm=bool(layer.use_batch_norm))
  if isinstance(layer, specs.SeparableConvSpec):
    return LayerShape(path, SEPARABLE_CONV, size, cin, cin, cout,
                      kernel_size=_positive_int(path, 'kernel_size', layer.kernel_size),
                      strides=_positive_int(path, 'strides', layer.strides),
                      activation=_check_activation(path, layer.activation))
  if isinstance(layer, specs.DepthwiseBottleneckSpec):
    return _bottleneck_shape(path, layer, size, cin, cout, base)
  raise UserError(f'Layer {path!r}: unsupported layer spec {type(layer).__name__} '
                  f'({layer!r:.120}); mobile layers are ConvSpec, SeparableConvSpec, '
                  'DepthwiseBottleneckSpec, GlobalAveragePoolSpec and ResidualSpec')


def _bottleneck_shape(path: str, layer: specs.DepthwiseBottleneckSpec, size: int, cin: int,
                      cout: int, base: int) -> LayerShape:
  expansion = layer.expansion_filters
  if not isinstance(expansion, (int, specs.FilterMultiplier)) or isinstance(expansion, bool):
    raise UserError(f'Layer {path!r}: expansion_filters must be an int or a FilterMultiplier, '
                    f'got {expansion!r} (is the spec resolved?)')
  mid = specs.expanded_filters(expansion, cin, base)
  use_se = layer.use_squeeze_and_excite
  if not isinstance(use_se, bool):
    raise UserError(f'Layer {path!r}: use_squeeze_and_excite must be a bool, got {use_se!r}')
  return LayerShape(path, BOTTLENECK, size, cin, _positive_int(path, 'expansion', mid), cout,
                    kernel_size=_positive_int(path, 'kernel_size', layer.kernel_size),
                    strides=_positive_int(path, 'strides', layer.strides),
                    se_filters=specs.se_filters(mid, base) if use_se else 0,
                    activation=_check_activation(path, layer.activation))


def _residual_shape(path: str, inner: Any, size: int, cin: int, block_filters: Any,
                    base: int) -> LayerShape:
  if isinstance(inner, specs.ZeroSpec):
    cout = _positive_int(path, 'block filters', block_filters)
    if cout != cin:
      raise UserError(f'Layer {path!r} may be skipped, but its input has {cin} filters and its '
                      f'output {cout}; a skipped layer must keep the width')
    return LayerShape(path, SKIP, size, cin, cin, cin)
  if isinstance(inner, (specs.ResidualSpec, specs.GlobalAveragePoolSpec)):
    raise UserError(f'Layer {path!r}: a ResidualSpec may not hold a '
                    f'{type(inner).__name__}')
  shape = _layer_shape(path, inner, size, cin, block_filters, base)
  # An addition needs equal shapes. Our spaces only wrap stride-1 layers inside a block (TuNAS
  # assumes this); a ResidualSpec that changes the shape degrades to the plain layer.
  residual = shape.strides == 1 and shape.input_filters == shape.output_filters
  return dataclasses.replace(shape, residual=residual)

