"""Reference architectures (MobileNetV2, MnasNet-B1, ProxylessNAS-Mobile, MobileNetV3-Large) as data.

The op tuples are TuNAS's `mobile_model_archive` flat form over the uncollapsed ProxylessNAS layer:
index 3 * [expansion = 6] + kernel index (kernels 3, 5, 7), and 6 = skip; the first entry is the
separable conv's kernel index. `_flat_ops_to_indices` maps them onto our collapsed decisions.
"""

from typing import Sequence

from tunas_tf.space.architecture import Architecture

MOBILENET_V2_OPS = (0, 3, 3, 6, 6, 3, 3, 3, 6, 3, 3, 3, 3, 3, 3, 3, 6, 3, 3, 3, 6, 3)
MNASNET_B1_OPS = (0, 0, 0, 0, 6, 1, 1, 1, 6, 4, 4, 4, 6, 3, 3, 6, 6, 4, 4, 4, 4, 3)
PROXYLESSNAS_MOBILE_OPS = (0, 1, 0, 6, 6, 2, 0, 1, 1, 5, 1, 1, 1, 4, 1, 1, 1, 5, 5, 2, 2, 5)

_SKIP = 6
# (block, layer) of each flat op: the sepconv block, five 4-layer blocks, the last bneck.
_FLAT_LAYERS = ([(1, 0)] + [(b, l) for b in range(2, 7) for l in range(4)] + [(7, 0)])


def _layer_choice(code: int, block: int):
  """(expansion index, kernel index, op index) of a flat op code."""
  if block == 1:
    return 0, code, 0
  if code == _SKIP:
    return 0, 0, 1
  return code // 3, code % 3, 0


def _flat_ops_to_indices(space, ops: Sequence[int]) -> tuple:
  """Indices of a ProxylessNAS-family space for TuNAS flat op codes."""
  if len(ops) != len(_FLAT_LAYERS):
    raise ValueError(f'expected {len(_FLAT_LAYERS)} flat ops, got {len(ops)}')
  choice = {f'blocks/{b}/layers/{l}': _layer_choice(code, b)
            for (b, l), code in zip(_FLAT_LAYERS, ops)}
  indices = []
  for d in space.decisions:
    layer = choice.get(d.group)
    if layer is None:  # Block filters: fixed in these spaces.
      indices.append(0)
    elif d.path.endswith('expansion_filters'):
      indices.append(layer[0])
    elif d.path.endswith('kernel_size'):
      indices.append(layer[1])
    else:
      indices.append(layer[2])
  return tuple(indices)


def flat_ops_architecture(space, ops: Sequence[int]) -> Architecture:
  return space.canonical(Architecture(space.name, _flat_ops_to_indices(space, ops)))
