"""Weight copies between a `MobileSupernet` and the stand-alone model of one of its architectures.

A stand-alone layer's weights are the leading slice of the supernet's max-size weights (prefix
channel masking), so copying is slicing. The pairing comes from the supernet's own structure
(`MobileSupernet.active_leaves`), and every weight of the stand-alone model must be paired, so a
naming mismatch fails loudly instead of silently leaving weights behind.
"""

from typing import List, Tuple

import keras

from tunas_tf.errors import UserError
from tunas_tf.layers.masked import load_prefix, read_prefix
from tunas_tf.layers.squeeze_excite import SqueezeExcite
from tunas_tf.space.architecture import Architecture


def _standalone_weights(layer: keras.layers.Layer) -> list:
  """The weights of a stand-alone layer that have a supernet counterpart, in order."""
  if isinstance(layer, keras.layers.BatchNormalization):
    return [layer.gamma, layer.beta]  # Moving statistics: the supernet has none.
  if isinstance(layer, SqueezeExcite):
    return [layer.reduce.kernel, layer.reduce.bias, layer.expand.kernel, layer.expand.bias]
  if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
    return [layer.kernel] + ([layer.bias] if layer.use_bias else [])
  raise ValueError(f'No supernet counterpart for layer {layer.name!r} ({type(layer).__name__})')


def _pairs(supernet, standalone: keras.Model, arch: Architecture) -> List[Tuple]:
  """(supernet leaf, stand-alone layer) for every weight layer of the stand-alone model."""
  by_name = {layer.name: layer for layer in standalone.layers}
  pairs, used = [], set()
  for leaf, name in supernet.active_leaves(arch):
    if name not in by_name:
      raise UserError(f'The stand-alone model has no layer {name!r}; was it built from '
                      f'{supernet.space.to_string(arch)!r} of space {supernet.space.name!r}?')
    pairs.append((leaf, by_name[name]))
    used.add(name)
  unpaired = [l.name for l in standalone.layers if l.weights and l.name not in used]
  if unpaired:
    raise UserError(f'Stand-alone layers {unpaired} have no counterpart in the supernet for '
                    f'architecture {supernet.space.to_string(arch)!r}')
  return pairs


def copy_from_standalone(supernet, standalone: keras.Model, arch: Architecture) -> None:
  """Writes the weights of `standalone` = `build_model(space, arch)` into `supernet`.

  Each stand-alone weight goes into the leading slice of the supernet weight it corresponds to;
  the rest of the supernet (other channels, other ops) keeps its values.

  Args:
    supernet: a `MobileSupernet` of the architecture's space.
    standalone: the stand-alone model of `arch` (same num_classes).
    arch: the architecture.
  """
  for leaf, layer in _pairs(supernet, standalone, arch):
    load_prefix(leaf.prefix_weights(), [keras.ops.convert_to_numpy(w)
                                        for w in _standalone_weights(layer)])


def copy_to_standalone(supernet, standalone: keras.Model, arch: Architecture) -> None:
  """Writes the supernet's weights for `arch` into `standalone` = `build_model(space, arch)`.

  The stand-alone batch norms keep their moving statistics (the supernet has none).
  """
  for leaf, layer in _pairs(supernet, standalone, arch):
    targets = _standalone_weights(layer)
    for target, value in zip(targets, read_prefix(leaf.prefix_weights(),
                                                  [t.shape for t in targets])):
      target.assign(value)
