"""`Architecture`: a point of a search space, as (space name, one index per decision)."""

import dataclasses
import json
from typing import Any

from tunas_tf.errors import UserError

ARCH_JSON_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Architecture:
  """An architecture of a registered search space.

  Attributes:
    space: the registered name of the search space.
    indices: the chosen choice index of every decision, in traversal order.
  """
  space: str
  indices: tuple

  def __post_init__(self):
    object.__setattr__(self, 'indices', tuple(int(i) for i in self.indices))

  def to_json_dict(self, **extra: Any) -> dict:
    """A JSON-ready dict; `extra` entries (e.g. the string form) are stored beside it."""
    return {'version': ARCH_JSON_VERSION, 'space': self.space, 'indices': list(self.indices),
            **extra}

  @classmethod
  def from_json_dict(cls, data: Any) -> 'Architecture':
    if not isinstance(data, dict) or 'space' not in data or 'indices' not in data:
      raise UserError(f'An architecture JSON needs "space" and "indices" keys, got {data!r:.200}')
    version = data.get('version', ARCH_JSON_VERSION)
    if version != ARCH_JSON_VERSION:
      raise UserError(f'Architecture JSON version {version!r} is not supported '
                      f'(this library reads version {ARCH_JSON_VERSION})')
    indices = data['indices']
    if not isinstance(indices, list) or not all(isinstance(i, int) for i in indices):
      raise UserError(f'Architecture JSON "indices" must be a list of integers, got {indices!r:.200}')
    return cls(str(data['space']), tuple(indices))

  def to_json(self, **extra: Any) -> str:
    return json.dumps(self.to_json_dict(**extra), indent=2, sort_keys=True)

  @classmethod
  def from_json(cls, text: str) -> 'Architecture':
    try:
      data = json.loads(text)
    except json.JSONDecodeError as e:
      raise UserError(f'Architecture JSON is not valid JSON: {e}') from None
    return cls.from_json_dict(data)

  @property
  def indices_string(self) -> str:
    """TuNAS's colon-separated index form, e.g. '0:1:2'."""
    return ':'.join(str(i) for i in self.indices)
