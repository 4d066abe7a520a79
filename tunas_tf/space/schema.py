"""The search-space language: `OneOf` leaves in plain, immutable data.

A search space is a nested structure of frozen dataclasses, tuples and dicts with `OneOf` nodes
wherever a decision is made. Every other part of the library is a traversal of that one
declaration (see DESIGN.md). This module holds the primitives and the two walkers everything
else is built on:

* `decisions(spec)`: every `OneOf` in traversal order with its deterministic path, its group
  (used by the architecture string) and its parent decision (used for inactive decisions).
* `resolve(spec, indices)`: the spec with each `OneOf` replaced by its chosen value.

Traversal order follows TuNAS's `schema.map_oneofs`: children first, so all decisions inside the
choices of a `OneOf` are numbered before the `OneOf` itself; dataclass fields in declaration
order; dict keys in sorted order; sequences in order.
"""

import dataclasses
from typing import Any, Callable, Optional, Sequence

OP_TAG = 'op'
FILTERS_TAG = 'filters'
TAGS = (OP_TAG, FILTERS_TAG)

# Separates the tokens of an architecture string, so no label may contain it.
TOKEN_SEPARATOR = '-'


def default_label(choice: Any) -> str:
  """The short label of a choice: its `label` attribute if it has one, else `str(choice)`."""
  label = getattr(choice, 'label', None)
  if isinstance(label, str):
    return label
  return str(choice)


@dataclasses.dataclass(frozen=True)
class OneOf:
  """A decision between `choices`.

  Attributes:
    choices: the candidate values (any spec data, possibly containing further `OneOf`s).
    tag: `OP_TAG` or `FILTERS_TAG`; op warmup and filter warmup act on decisions by tag.
    labels: short, distinct labels of the choices used in architecture strings (e.g. 'k3',
      'e6', 'se', 'skip', ''); derived with `default_label` when not given.
  """
  choices: tuple
  tag: str
  labels: Optional[tuple] = None

  def __post_init__(self):
    choices = tuple(self.choices)
    if not choices:
      raise ValueError('OneOf needs at least one choice')
    if self.tag not in TAGS:
      raise ValueError(f'OneOf tag {self.tag!r} is not one of {TAGS}')
    labels = tuple(self.labels) if self.labels is not None else tuple(
        default_label(c) for c in choices)
    if len(labels) != len(choices):
      raise ValueError(f'OneOf has {len(choices)} choices but {len(labels)} labels: {labels}')
    if len(set(labels)) != len(labels):
      raise ValueError(f'OneOf labels must be distinct, got {labels}')
    if any(TOKEN_SEPARATOR in label for label in labels):
      raise ValueError(f'OneOf labels may not contain {TOKEN_SEPARATOR!r}: {labels}')
    object.__setattr__(self, 'choices', choices)
    object.__setattr__(self, 'labels', labels)

  def __len__(self):
    return len(self.choices)


@dataclasses.dataclass(frozen=True)
class Decision:
  """One `OneOf` of a space, as seen by a traversal.

  Attributes:
    index: position in traversal order (the position of its value in `Architecture.indices`).
    path: deterministic name, e.g. 'blocks/3/layers/1/op'; names controller logits,
      architecture parameters, latency-table rows, summaries and error messages.
    group: the path of the innermost sequence element holding the decision (e.g.
      'blocks/3/layers/1'); one group is one token of the architecture string.
    oneof: the `OneOf` itself.
    parent: index of the innermost enclosing decision, or None at top level.
    parent_choice: which choice of `parent` contains this decision (None at top level).
  """
  index: int
  path: str
  group: str
  oneof: OneOf
  parent: Optional[int] = None
  parent_choice: Optional[int] = None

  @property
  def num_choices(self) -> int:
    return len(self.oneof.choices)

  @property
  def tag(self) -> str:
    return self.oneof.tag


def _join(path: str, name: Any) -> str:
  return f'{path}/{name}' if path else str(name)


def _walk(node: Any, path: str, group: str,
          on_oneof: Callable[[OneOf, str, str, list], Any]) -> Any:
  """Post-order walk that rebuilds `node`, letting `on_oneof` decide what a OneOf becomes.

  `on_oneof(oneof, path, group, walked_choices)` is called after all choices were walked.
  """
  if isinstance(node, OneOf):
    walked = [_walk(c, _join(path, i), group, on_oneof) for i, c in enumerate(node.choices)]
    return on_oneof(node, path, group, walked)
  if dataclasses.is_dataclass(node) and not isinstance(node, type):
    changes = {f.name: _walk(getattr(node, f.name), _join(path, f.name), group, on_oneof)
               for f in dataclasses.fields(node)}
    return dataclasses.replace(node, **changes)
  if isinstance(node, (tuple, list)):
    items = [_walk(x, _join(path, i), _join(path, i), on_oneof) for i, x in enumerate(node)]
    return type(node)(items)
  if isinstance(node, dict):
    return {k: _walk(node[k], _join(path, k), group, on_oneof) for k in sorted(node)}
  return node


def decisions(spec: Any) -> tuple:
  """Returns every `OneOf` of `spec` as a `Decision`, in traversal order."""
  found = []

  def record(oneof, path, group, unused_walked):
    found.append((path, group, oneof))
    return oneof  # Leave the structure unchanged so dataclass validation still holds.

  _walk(spec, '', '', record)
  paths = [p for p, _, _ in found]
  result = []
  for index, (path, group, oneof) in enumerate(found):
    parent, parent_choice = _find_parent(path, paths)
    result.append(Decision(index, path, group, oneof, parent, parent_choice))
  return tuple(result)


def _find_parent(path: str, paths: Sequence[str]):
  """The innermost decision whose choices contain `path` (the longest prefix path)."""
  best = None
  for i, other in enumerate(paths):
    if path.startswith(other + '/') and (best is None or len(other) > len(paths[best])):
      best = i
  if best is None:
    return None, None
  choice = path[len(paths[best]) + 1:].split('/', 1)[0]
  return best, int(choice)


def resolve(spec: Any, indices: Sequence[int]) -> Any:
  """Returns `spec` with every `OneOf` replaced by its chosen (and resolved) value.

  Args:
    spec: a search-space declaration.
    indices: one index per decision in traversal order (already validated).
  """
  counter = [0]

  def choose(oneof, unused_path, unused_group, walked):
    # Post-order numbering: the choices (walked above) consumed their decisions first.
    value = walked[indices[counter[0]]]
    counter[0] += 1
    return value

  resolved = _walk(spec, '', '', choose)
  if counter[0] != len(indices):
    raise ValueError(f'spec has {counter[0]} decisions but {len(indices)} indices were given')
  return resolved


def count_distinct(node: Any) -> int:
  """Number of hierarchically distinct values of `node` (a skipped layer's inner choices collapse)."""
  if isinstance(node, OneOf):
    return sum(count_distinct(c) for c in node.choices)
  if dataclasses.is_dataclass(node) and not isinstance(node, type):
    children = [getattr(node, f.name) for f in dataclasses.fields(node)]
  elif isinstance(node, (tuple, list)):
    children = list(node)
  elif isinstance(node, dict):
    children = list(node.values())
  else:
    return 1
  total = 1
  for child in children:
    total *= count_distinct(child)
  return total
