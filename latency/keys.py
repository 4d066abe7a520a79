"""Latency-table units and their stable string keys (pure Python, no TensorFlow).

A *unit* is what one table entry times: a whole layer of the search space ('block'
granularity: an inverted bottleneck, a separable conv, the stem or head conv, the global pool)
or one post-conversion op ('op' granularity: the 1×1 expand conv, the depthwise conv, the
squeeze-and-excite module, the 1×1 project conv, the residual add). Both granularities share
the stem/head conv, the pool and the classifier units.

Why an op granularity: after conversion an inverted bottleneck is CONV_2D, DEPTHWISE_CONV_2D,
[MEAN, CONV_2D, CONV_2D, LOGISTIC, MUL], CONV_2D, [ADD] (BN folded, ReLU fused; see
docs/anchors/latency.md §4.4). Most of a block's choices only touch some of these ops (the
kernel only the depthwise conv; the output width only the project conv), so op keys are far
fewer than block keys, and the fusion effects between ops are absorbed by the linear
calibration of the cost model.

A key lists every field, always in the same order, so it is stable and parses back:
  op=bottleneck,in=28x28x40,out=28x28x40,mid=240,k=5,s=1,se=64,act=hswish,bn=1,res=1,dtype=float32
"""

import dataclasses
from typing import Tuple

from tunas_tf.errors import UserError, unknown_name
from tunas_tf.space import shapes as shapes_lib
from tunas_tf.space.shapes import LayerShape

BLOCK = 'block'
OP = 'op'
GRANULARITIES = (BLOCK, OP)

DTYPES = ('float32', 'int8')

# Unit ops. The first four are `shapes` layer kinds (block granularity); the others are the
# post-conversion ops of a layer (op granularity).
CONV = shapes_lib.CONV
SEPARABLE_CONV = shapes_lib.SEPARABLE_CONV
BOTTLENECK = shapes_lib.BOTTLENECK
GLOBAL_POOL = shapes_lib.GLOBAL_POOL
DEPTHWISE = 'depthwise'
SQUEEZE_EXCITE = 'se'
ADD = 'add'
CLASSIFIER = 'classifier'
UNIT_OPS = (CONV, SEPARABLE_CONV, BOTTLENECK, GLOBAL_POOL, DEPTHWISE, SQUEEZE_EXCITE, ADD,
            CLASSIFIER)
LAYER_OPS = (CONV, SEPARABLE_CONV, BOTTLENECK, GLOBAL_POOL)

_FIELDS = ('op', 'in', 'out', 'mid', 'k', 's', 'se', 'act', 'bn', 'res', 'dtype')


def check_granularity(granularity: str) -> str:
  if granularity not in GRANULARITIES:
    raise unknown_name('latency-table granularity', granularity, GRANULARITIES)
  return granularity


def check_dtype(dtype: str) -> str:
  if dtype not in DTYPES:
    raise unknown_name('latency-table dtype', dtype, DTYPES)
  return dtype


@dataclasses.dataclass(frozen=True, order=True)
class Unit:
  """One timed unit: an op with its exact input shape and settings.

  Attributes:
    op: one of `UNIT_OPS`.
    input_size: input height (= width).
    input_filters: input channels.
    output_filters: output channels (the classifier: number of classes).
    mid_filters: expanded width of a bottleneck; hidden width of an SE unit; else 0.
    kernel_size: conv / depthwise kernel (0 when there is none).
    strides: conv / depthwise stride.
    se_filters: SE hidden width of a bottleneck (0: no SE).
    activation: activation name, '' for none.
    use_batch_norm: whether a conv is followed by batch norm (else it has a bias).
    residual: whether a layer unit includes its residual addition.
    dtype: 'float32' or 'int8' (the TFLite model's kernels).
  """
  op: str
  input_size: int
  input_filters: int
  output_filters: int
  mid_filters: int = 0
  kernel_size: int = 0
  strides: int = 1
  se_filters: int = 0
  activation: str = ''
  use_batch_norm: bool = True
  residual: bool = False
  dtype: str = 'float32'

  @property
  def output_size(self) -> int:
    if self.op in (GLOBAL_POOL, CLASSIFIER):
      return 1
    return -(-self.input_size // self.strides)

  @property
  def key(self) -> str:
    s, o = self.input_size, self.output_size
    values = (self.op, f'{s}x{s}x{self.input_filters}', f'{o}x{o}x{self.output_filters}',
              self.mid_filters, self.kernel_size, self.strides, self.se_filters,
              self.activation or 'none', int(self.use_batch_norm), int(self.residual),
              self.dtype)
    return ','.join(f'{f}={v}' for f, v in zip(_FIELDS, values))

  def layer_shape(self) -> LayerShape:
    """The `LayerShape` of a block-granularity unit (what `build_layer` builds)."""
    if self.op not in LAYER_OPS:
      raise ValueError(f'Unit {self.key!r} is not a layer unit')
    return LayerShape(path=f'unit_{self.op}', op=self.op, input_size=self.input_size,
                      input_filters=self.input_filters, mid_filters=self.mid_filters,
                      output_filters=self.output_filters, kernel_size=self.kernel_size,
                      strides=self.strides, se_filters=self.se_filters,
                      activation=self.activation, use_batch_norm=self.use_batch_norm,
                      residual=self.residual)


def _parse_hwc(text: str, key: str) -> Tuple[int, int, int]:
  parts = text.split('x')
  if len(parts) != 3 or not all(p.isdigit() for p in parts) or parts[0] != parts[1]:
    raise UserError(f'Malformed latency key {key!r}: expected a square HxWxC shape, got {text!r}')
  return int(parts[0]), int(parts[1]), int(parts[2])


def parse_key(key: str) -> Unit:
  """Parses a `Unit.key` string back into the `Unit` (and checks it is canonical)."""
  items = key.split(',')
  pairs = [item.split('=', 1) for item in items]
  if [p[0] for p in pairs] != list(_FIELDS) or any(len(p) != 2 for p in pairs):
    raise UserError(f'Malformed latency key {key!r}: expected fields {",".join(_FIELDS)} in '
                    'this order, e.g. "op=conv,in=224x224x3,out=112x112x32,mid=0,k=3,s=2,'
                    'se=0,act=relu,bn=1,res=0,dtype=float32"')
  v = dict(pairs)
  if v['op'] not in UNIT_OPS:
    raise unknown_name('latency unit op', v['op'], UNIT_OPS)
  size, _, cin = _parse_hwc(v['in'], key)
  _, _, cout = _parse_hwc(v['out'], key)
  try:
    unit = Unit(op=v['op'], input_size=size, input_filters=cin, output_filters=cout,
                mid_filters=int(v['mid']), kernel_size=int(v['k']), strides=int(v['s']),
                se_filters=int(v['se']), activation='' if v['act'] == 'none' else v['act'],
                use_batch_norm=bool(int(v['bn'])), residual=bool(int(v['res'])),
                dtype=check_dtype(v['dtype']))
  except ValueError as e:
    raise UserError(f'Malformed latency key {key!r}: {e}') from None
  if unit.key != key:
    raise UserError(f'Latency key {key!r} is not canonical; expected {unit.key!r}')
  return unit


def _layer_unit(shape: LayerShape, dtype: str) -> Unit:
  return Unit(op=shape.op, input_size=shape.input_size, input_filters=shape.input_filters,
              output_filters=shape.output_filters,
              mid_filters=shape.mid_filters if shape.op == BOTTLENECK else 0,
              kernel_size=shape.kernel_size, strides=shape.strides,
              se_filters=shape.se_filters, activation=shape.activation,
              use_batch_norm=shape.use_batch_norm, residual=shape.residual, dtype=dtype)


def _conv(size, cin, cout, activation, dtype, kernel=1, strides=1) -> Unit:
  return Unit(CONV, size, cin, cout, kernel_size=kernel, strides=strides,
              activation=activation, dtype=dtype)


def _depthwise(size, channels, kernel, strides, activation, dtype) -> Unit:
  return Unit(DEPTHWISE, size, channels, channels, kernel_size=kernel, strides=strides,
              activation=activation, dtype=dtype)


def _op_units(shape: LayerShape, dtype: str) -> Tuple[Unit, ...]:
  """The post-conversion ops of one layer (op granularity)."""
  if shape.op in (CONV, GLOBAL_POOL):
    return (_layer_unit(shape, dtype),)
  size, out = shape.input_size, shape.output_size
  units = []
  if shape.op == BOTTLENECK:
    units.append(_conv(size, shape.input_filters, shape.mid_filters, shape.activation, dtype))
  units.append(_depthwise(size, shape.mid_filters, shape.kernel_size, shape.strides,
                          shape.activation, dtype))
  if shape.se_filters:
    units.append(Unit(SQUEEZE_EXCITE, out, shape.mid_filters, shape.mid_filters,
                      mid_filters=shape.se_filters, activation='relu', dtype=dtype))
  units.append(_conv(out, shape.mid_filters, shape.output_filters, '', dtype))
  if shape.residual:
    units.append(Unit(ADD, out, shape.output_filters, shape.output_filters, dtype=dtype))
  return tuple(units)


def layer_units(shape: LayerShape, granularity: str, dtype: str = 'float32') -> Tuple[Unit, ...]:
  """The units whose latencies sum to the latency of layer `shape`.

  Args:
    shape: a layer from `tunas_tf.space.shapes`.
    granularity: 'block' (one unit per layer) or 'op' (one unit per post-conversion op).
    dtype: the table's dtype.

  Returns:
    The units; empty for a skipped layer (the identity costs nothing).
  """
  check_granularity(granularity)
  check_dtype(dtype)
  if shape.op == shapes_lib.SKIP:
    return ()
  if shape.op not in LAYER_OPS:
    raise UserError(f'Layer {shape.path!r}: no latency unit for op {shape.op!r}')
  if granularity == BLOCK:
    return (_layer_unit(shape, dtype),)
  return _op_units(shape, dtype)


def classifier_unit(input_size: int, input_filters: int, num_classes: int,
                    dtype: str = 'float32') -> Unit:
  """The classifier (1×1 conv with bias to `num_classes` logits) on the last feature map."""
  return Unit(CLASSIFIER, input_size, input_filters, num_classes, use_batch_norm=False,
              dtype=check_dtype(dtype))
