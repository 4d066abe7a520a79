"""Compact, human-readable architecture strings.

One token per group (see `schema.Decision.group`, e.g. one layer or one block's filters), tokens
joined by '-'. A token concatenates the labels of the group's *active* decisions that have more
than one choice, in traversal order: 'e6k5se' (expansion 6, kernel 5, squeeze-excite), 'skip'
(a skipped layer: its inner decisions are inactive and not written), 'c80' (80 output filters).
Single-choice decisions and groups with no real choice are left out, so the string carries exactly
the information of the architecture and round-trips with `Architecture.indices`.
"""

import itertools
import re
from typing import Callable, Sequence

from tunas_tf.errors import UserError
from tunas_tf.space import schema

_MAX_GROUP_ASSIGNMENTS = 200_000
# Negative indices match too, so that the range check names them (not a token count).
_INDICES_RE = re.compile(r'^-?\d+(:-?\d+)*$')


def looks_like_indices(text: str) -> bool:
  return bool(_INDICES_RE.match(text.strip()))


def parse_indices(text: str) -> tuple:
  indices = tuple(int(x) for x in text.strip().split(':'))
  negative = [(pos, i) for pos, i in enumerate(indices) if i < 0]
  if negative:
    pos, i = negative[0]
    raise UserError(f'Index {i} (position {pos}) of {text.strip()!r} is negative; each '
                    'colon-separated index is a choice number >= 0')
  return indices


class ArchStringCodec:
  """Formats and parses the architecture strings of one space."""

  def __init__(self, space_name: str, decisions: Sequence[schema.Decision],
               active_mask: Callable[[Sequence[int]], tuple]):
    self._space = space_name
    self._decisions = tuple(decisions)
    self._active_mask = active_mask
    self._groups = self._token_groups()
    self._tables = [self._group_table(members) for _, members in self._groups]

  def _token_groups(self):
    """[(group path, [decision indices])] for groups with at least one multi-choice decision."""
    order, members = [], {}
    for d in self._decisions:
      if d.parent is not None and self._decisions[d.parent].group != d.group:
        raise ValueError(f'Decision {d.path!r} and its parent are in different groups; '
                         'architecture strings need them in one group')
      if d.group not in members:
        order.append(d.group)
        members[d.group] = []
      members[d.group].append(d.index)
    groups = []
    for g in order:
      if any(self._decisions[i].num_choices > 1 for i in members[g]):
        groups.append((g, members[g]))
    return groups

  def _local_active(self, members, assignment):
    """Activity of a group's decisions under `assignment` (parents are inside the group)."""
    value = dict(zip(members, assignment))
    active = {}
    for i in reversed(members):
      d = self._decisions[i]
      active[i] = d.parent is None or (active[d.parent] and value[d.parent] == d.parent_choice)
    return active

  def _render(self, members, assignment, active) -> str:
    return ''.join(self._decisions[i].oneof.labels[v] for i, v in zip(members, assignment)
                   if active[i] and self._decisions[i].num_choices > 1)

  def _group_table(self, members):
    """{token: canonical assignment of the group's decisions}."""
    sizes = [self._decisions[i].num_choices for i in members]
    total = 1
    for s in sizes:
      total *= s
    if total > _MAX_GROUP_ASSIGNMENTS:
      raise ValueError(f'group of {members} has {total} assignments; too many for a table')
    table = {}
    for assignment in itertools.product(*[range(s) for s in sizes]):
      active = self._local_active(members, assignment)
      canonical = tuple(v if active[i] else 0 for i, v in zip(members, assignment))
      token = self._render(members, assignment, active)
      if table.setdefault(token, canonical) != canonical:
        raise ValueError(f'labels are ambiguous in group {members}: token {token!r}')
    return table

  def format(self, indices: Sequence[int]) -> str:
    active = self._active_mask(indices)
    tokens = []
    for _, members in self._groups:
      assignment = [indices[i] for i in members]
      tokens.append(self._render(members, assignment, {i: active[i] for i in members}))
    return schema.TOKEN_SEPARATOR.join(tokens)

  def parse(self, text: str) -> tuple:
    tokens = text.strip().split(schema.TOKEN_SEPARATOR) if self._groups else []
    if len(tokens) != len(self._groups):
      raise UserError(f'Architecture string {text!r} for space {self._space!r} has '
                      f'{len(tokens)} tokens separated by {schema.TOKEN_SEPARATOR!r}; '
                      f'expected {len(self._groups)}')
    indices = [0] * len(self._decisions)
    position = 0
    for token, (group, members), table in zip(tokens, self._groups, self._tables):
      if token not in table:
        valid = sorted(table)
        shown = ', '.join(repr(t) for t in valid[:24]) + (' ...' if len(valid) > 24 else '')
        raise UserError(f'Malformed architecture string for space {self._space!r} at position '
                        f'{position} (token {token!r}, {group}): expected one of {shown}')
      for i, v in zip(members, table[token]):
        indices[i] = v
      position += len(token) + len(schema.TOKEN_SEPARATOR)
    return tuple(indices)
