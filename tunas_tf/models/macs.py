"""Analytic multiply-accumulate and parameter counts of mobile architectures (pure Python).

Both are computed from `tunas_tf.space.shapes`, the same per-layer walk the Keras builder uses,
so the latency and search code can cost an architecture without TensorFlow.

MACs count the convolutions (regular, depthwise, the two 1×1 convs of squeeze-and-excite) and
the classifier; batch norm, activations, pooling, the SE product and residual additions are
ignored, as in the MobileNet papers' "multiply-adds".
"""

import math
from typing import Any, Sequence

from tunas_tf.errors import UserError
from tunas_tf.space import shapes as shapes_lib
from tunas_tf.space.shapes import LayerShape

DEFAULT_IMAGE_SIZE = 224
DEFAULT_NUM_CLASSES = 1000


def check_num_classes(num_classes: Any) -> int:
  """Returns `num_classes` if it is an integer >= 1; raises a UserError otherwise."""
  if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
    raise UserError(f'num_classes must be an integer >= 1, got {num_classes!r}')
  return num_classes


def layer_macs(shape: LayerShape) -> int:
  """Multiply-accumulates of one layer."""
  out = shape.output_size ** 2
  k2 = shape.kernel_size ** 2
  if shape.op == shapes_lib.CONV:
    return out * k2 * shape.input_filters * shape.output_filters
  if shape.op == shapes_lib.SEPARABLE_CONV:
    return out * k2 * shape.input_filters + out * shape.input_filters * shape.output_filters
  if shape.op == shapes_lib.BOTTLENECK:
    expand = shape.input_size ** 2 * shape.input_filters * shape.mid_filters
    depthwise = out * k2 * shape.mid_filters
    se = 2 * shape.mid_filters * shape.se_filters  # Two 1×1 convs on the pooled 1×1 map.
    project = out * shape.mid_filters * shape.output_filters
    return expand + depthwise + se + project
  return 0  # Pooling and skipped layers.


def classifier_macs(shapes: Sequence[LayerShape], num_classes: int) -> int:
  """MACs of the final 1×1 classifier conv on the last layer's output."""
  last = shapes[-1]
  return last.output_size ** 2 * last.output_filters * num_classes


def count_macs(space: Any, arch: Any, image_size: int = DEFAULT_IMAGE_SIZE,
               num_classes: int = DEFAULT_NUM_CLASSES) -> int:
  """Multiply-accumulates of the stand-alone model of `arch` on one image.

  Args:
    space: a mobile `SearchSpace` or its registered name.
    arch: an `Architecture` of that space.
    image_size: input height (= width).
    num_classes: classifier width.
  """
  check_num_classes(num_classes)
  shapes = shapes_lib.layer_shapes(space, arch, image_size)
  return sum(layer_macs(s) for s in shapes) + classifier_macs(shapes, num_classes)


def _conv_params(kernel: int, cin: int, cout: int, batch_norm: int) -> int:
  """A conv's kernel plus its batch norm (`batch_norm` variables per channel) or its bias."""
  return kernel * kernel * cin * cout + (batch_norm if batch_norm else 1) * cout


def layer_params(shape: LayerShape, batch_norm_statistics: bool = True) -> int:
  """Parameters of one layer as Keras counts them.

  Args:
    shape: the layer.
    batch_norm_statistics: count batch norm moving mean/variance (Keras `count_params` does;
      papers and torchvision usually do not).
  """
  bn = 4 if batch_norm_statistics else 2
  k, cin, cout = shape.kernel_size, shape.input_filters, shape.output_filters
  mid = shape.mid_filters
  if shape.op == shapes_lib.CONV:
    return _conv_params(k, cin, cout, bn if shape.use_batch_norm else 0)
  if shape.op == shapes_lib.SEPARABLE_CONV:
    return k * k * cin + bn * cin + _conv_params(1, cin, cout, bn)
  if shape.op == shapes_lib.BOTTLENECK:
    se = 0
    if shape.se_filters:
      se = _conv_params(1, mid, shape.se_filters, 0) + _conv_params(1, shape.se_filters, mid, 0)
    return _conv_params(1, cin, mid, bn) + k * k * mid + bn * mid + se + _conv_params(
        1, mid, cout, bn)
  return 0


def count_params(space: Any, arch: Any, num_classes: int = DEFAULT_NUM_CLASSES,
                 batch_norm_statistics: bool = True) -> int:
  """Parameters of the stand-alone model of `arch` (equals Keras `model.count_params()`).

  Args:
    space: a mobile `SearchSpace` or its registered name.
    arch: an `Architecture` of that space.
    num_classes: classifier width.
    batch_norm_statistics: whether to count batch norm moving statistics (see `layer_params`).
  """
  check_num_classes(num_classes)
  spec = shapes_lib.resolve_mobile(space, arch)
  # Parameters do not depend on the resolution; any size the strides accept will do.
  size = max(DEFAULT_IMAGE_SIZE, shapes_lib.total_stride(spec))
  shapes = shapes_lib.spec_layer_shapes(spec, size)
  classifier = _conv_params(1, shapes[-1].output_filters, num_classes, 0)
  return sum(layer_params(s, batch_norm_statistics) for s in shapes) + classifier


def count_model_params(model: Any, trainable_only: bool = False) -> int:
  """Parameters of a built Keras model (all variables, or only the trainable ones)."""
  if not trainable_only:
    return int(model.count_params())
  return sum(math.prod(v.shape) for v in model.trainable_weights)
