"""Strict registries of search spaces and reference architectures."""

import functools
import os
import random
from typing import Callable, Dict, Optional, Tuple

from tunas_tf.errors import UserError, unknown_name
from tunas_tf.space import cell
from tunas_tf.space import mobile
from tunas_tf.space import references
from tunas_tf.space.architecture import Architecture
from tunas_tf.space.search_space import SearchSpace

# name -> (factory of the spec, family, description). Specs are built lazily, once.
_SPACES: Dict[str, Tuple[Callable, str, str]] = {
    'proxylessnas': (mobile.proxylessnas_spec, 'mobile',
                     'TuNAS ProxylessNAS space: kernels 3/5/7, expansions 3/6, skips (~10^21.3)'),
    'proxylessnas_enlarged': (mobile.proxylessnas_enlarged_spec, 'mobile',
                              'ProxylessNAS-Enlarged: + per-block output filters (~10^28.1)'),
    'mobilenet_v3_like': (mobile.mobilenet_v3_like_spec, 'mobile',
                          'MobileNetV3-Like: expansions 1-6, SE, h-swish, filters (~10^42.9)'),
    'mobilenet_v2': (functools.partial(mobile.proxylessnas_spec, mobile.MOBILENET_V2_FILTERS),
                     'mobile', 'ProxylessNAS layout with MobileNetV2 filters (reference space)'),
    'mnasnet_b1': (functools.partial(mobile.proxylessnas_spec, mobile.MNASNET_B1_FILTERS),
                   'mobile', 'ProxylessNAS layout with MnasNet-B1 filters (reference space)'),
    'mobilenet_v3_large': (mobile.mobilenet_v3_large_spec, 'mobile',
                           'MobileNetV3-Large, fixed (reference space, no decisions)'),
    'nas_bench_201': (cell.nas_bench_201_spec, 'cell',
                      'NAS-Bench-201: one 4-node cell, 6 edges x 5 ops (15,625), C=16 N=5'),
    'darts': (cell.darts_spec, 'cell',
              'DARTS/GDAS NASNet space: 14 edges x 8 ops, normal + reduction cell (8^28), '
              'C=16 N=2'),
    'darts_frc': (functools.partial(cell.darts_spec, fixed_reduction=True), 'cell',
                  'GDAS-FRC: DARTS normal cell (8^14), fixed GDAS reduction cell, C=16 N=2'),
    'setn': (cell.setn_spec, 'cell',
             'SETN: per node 2 inputs with replacement, ops f1<=f2 of 6 (~10^18.9), C=16 N=2'),
    'pgnas_resnet': (cell.pgnas_resnet_spec, 'pgnas',
                     'PGNAS multi-branch ResNet prior: keep/drop per (block, kernel 1/3/5), '
                     '9 blocks (2^27)'),
}

# reference name -> (space name, flat TuNAS ops or None for a space without decisions).
_REFERENCES = {
    'mobilenet_v2': ('mobilenet_v2', references.MOBILENET_V2_OPS),
    'mnasnet_b1': ('mnasnet_b1', references.MNASNET_B1_OPS),
    'proxylessnas_mobile': ('proxylessnas', references.PROXYLESSNAS_MOBILE_OPS),
    'mobilenet_v3_large': ('mobilenet_v3_large', None),
}


def list_spaces(family: Optional[str] = None) -> Tuple[str, ...]:
  """Registered space names, optionally only those of one family ('mobile', 'cell', ...)."""
  return tuple(sorted(n for n, (_, f, _) in _SPACES.items() if family in (None, f)))


@functools.lru_cache(maxsize=None)
def get_space(name: str) -> SearchSpace:
  """The registered space `name`; an unknown name raises a UserError listing the known ones."""
  if name not in _SPACES:
    raise unknown_name('search space', name, _SPACES)
  factory, family, description = _SPACES[name]
  return SearchSpace(name, factory(), family, description)


def list_references() -> Tuple[str, ...]:
  return tuple(sorted(_REFERENCES))


def get_reference(name: str) -> Architecture:
  """The reference architecture `name` (in its own space)."""
  if name not in _REFERENCES:
    raise unknown_name('reference model', name, _REFERENCES)
  space_name, ops = _REFERENCES[name]
  space = get_space(space_name)
  if ops is None:
    return Architecture(space_name, ())
  return references.flat_ops_architecture(space, ops)


def parse_architecture(text: str, space_name: Optional[str] = None) -> Architecture:
  """Resolves a user's architecture argument.

  Args:
    text: a reference-model name, a path to an architecture JSON file, 'random:SEED', an
      architecture string of `space_name`, or TuNAS colon-separated indices.
    space_name: the space the architecture must belong to (needed for strings and random).

  Returns:
    A validated, canonical `Architecture`.
  """
  text = text.strip()
  if space_name is not None:
    get_space(space_name)  # An unknown space name is the first thing to report.
  if text in _REFERENCES:
    arch = get_reference(text)
  elif text.endswith('.json') or os.path.isfile(text):
    arch = _read_json_file(text)
  else:
    space = get_space(_require_space(space_name, text))
    if text.startswith('random:'):
      arch = space.sample(random.Random(_parse_seed(text)))
    else:
      arch = space.parse(text)
  if space_name is not None and arch.space != space_name:
    raise UserError(f'Architecture {text!r} belongs to space {arch.space!r}, but search space '
                    f'{space_name!r} was requested; drop --search_space or pass {arch.space!r}')
  return get_space(arch.space).canonical(arch)


def _read_json_file(path: str) -> Architecture:
  if not os.path.isfile(path):
    raise UserError(f'Architecture file {path!r} does not exist')
  with open(path) as f:
    text = f.read()
  try:
    arch = Architecture.from_json(text)
    return get_space(arch.space).validate(arch)
  except UserError as e:
    raise UserError(f'Architecture file {path!r}: {e}') from None


def _require_space(space_name: Optional[str], text: str) -> str:
  if space_name is None:
    raise UserError(f'Architecture {text!r} is neither a reference model '
                    f'({", ".join(list_references())}) nor a JSON file; pass a search space '
                    'to read it as an architecture string')
  return space_name


def _parse_seed(text: str) -> int:
  try:
    return int(text.split(':', 1)[1])
  except ValueError:
    raise UserError(f'Expected random:SEED with an integer SEED, got {text!r}') from None
