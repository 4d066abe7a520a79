"""Argument checks shared by the configuration dataclasses (no TensorFlow import).

Each raises `UserError` naming the field, the allowed range and the offending value.
"""

import dataclasses
from typing import Any

from tunas_tf.errors import UserError


def int_at_least(name: str, value: Any, low: int) -> None:
  if isinstance(value, bool) or not isinstance(value, int) or value < low:
    raise UserError(f'{name} must be an integer >= {low}, got {value!r}')


def number(name: str, value: Any) -> None:
  if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
    raise UserError(f'{name} must be a number, got {value!r}')


def number_above(name: str, value: Any, low: float, allow_equal: bool = False) -> None:
  number(name, value)
  if value < low or (value == low and not allow_equal):
    raise UserError(f'{name} must be {">=" if allow_equal else ">"} {low}, got {value!r}')


def fraction(name: str, value: Any, open_low: bool = False) -> None:
  number(name, value)
  if not (0.0 < value < 1.0 if open_low else 0.0 <= value < 1.0):
    raise UserError(f'{name} must be in {"(0, 1)" if open_low else "[0, 1)"}, got {value!r}')


def dataclass_from_dict(cls, data: dict, what: str):
  """`cls(**data)`, refusing keys that are not fields of the dataclass `cls`."""
  known = {f.name for f in dataclasses.fields(cls)}
  unknown = sorted(set(data) - known)
  if unknown:
    raise UserError(f'Unknown {what} keys {unknown}; known keys: {sorted(known)}')
  return cls(**data)
