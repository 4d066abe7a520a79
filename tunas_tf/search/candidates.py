"""Distinct candidate architectures drawn from independent per-decision distributions (host side).

SETN (§4.3, Algorithm 1) samples T candidates from its evaluator and scores each once; random
search does the same with uniform distributions. Candidates are drawn *without duplicates*:

* spaces of at most `MAX_ENUMERATED` architectures (NAS-Bench-201: 15,625) are enumerated and
  T are drawn exactly without replacement (Gumbel-top-k on the log-probabilities, which is
  sequential sampling proportional to p among the architectures not drawn yet);
* larger spaces draw independent samples and drop repeats, up to `MAX_DRAWS_PER_CANDIDATE` × T
  draws (a peaked distribution may then yield fewer than T distinct candidates; the log says).
"""

import math
from typing import Sequence

import numpy as np
from absl import logging

from tunas_tf.errors import UserError

MAX_ENUMERATED = 200_000
MAX_DRAWS_PER_CANDIDATE = 50


def num_architectures(num_choices: Sequence[int]) -> int:
  return math.prod(int(n) for n in num_choices)


def _log(p: np.ndarray) -> np.ndarray:
  with np.errstate(divide='ignore'):
    return np.log(np.asarray(p, np.float64))


def sample_distinct(probs: Sequence[np.ndarray], num: int, rng: np.random.Generator,
                    what: str = 'space') -> np.ndarray:
  """int32 [n, num_decisions]: n <= num distinct index tuples (n == num when enumerable).

  Args:
    probs: one probability vector per decision.
    num: candidates wanted (T).
    rng: the NumPy generator.
    what: the space's name, for error messages.

  Raises:
    UserError: when `num` exceeds the number of architectures.
  """
  sizes = [len(p) for p in probs]
  total = num_architectures(sizes)
  if isinstance(num, bool) or not isinstance(num, int) or num < 1:
    raise UserError(f'The number of candidates must be a positive integer, got {num!r}')
  if num > total:
    raise UserError(f'num_candidates={num} exceeds the {total} architectures of {what}; '
                    f'pass at most {total}')
  if total <= MAX_ENUMERATED:
    grid = np.indices(sizes).reshape(len(sizes), -1).T  # Every architecture, in index order.
    log_p = sum(_log(p)[grid[:, i]] for i, p in enumerate(probs))
    keys = log_p + rng.gumbel(size=total)
    order = np.argsort(-keys, kind='stable')[:num]
    return grid[order].astype(np.int32)
  seen, out, draws = set(), [], 0
  cumulative = [np.cumsum(np.asarray(p, np.float64) / np.sum(p)) for p in probs]
  while len(out) < num and draws < MAX_DRAWS_PER_CANDIDATE * num:
    batch = max(64, 2 * (num - len(out)))
    draws += batch
    columns = [np.minimum(np.searchsorted(c, rng.random(batch), side='right'), len(c) - 1)
               for c in cumulative]
    for row in np.stack(columns, axis=1):
      key = tuple(int(v) for v in row)
      if key not in seen:
        seen.add(key)
        out.append(key)
        if len(out) == num:
          break
  if len(out) < num:
    logging.warning('Only %d distinct candidates of %s in %d draws (%d wanted): the '
                    'distribution is peaked', len(out), what, draws, num)
  return np.asarray(out, np.int32)


def uniform(num_choices: Sequence[int]) -> list:
  return [np.full(n, 1.0 / n) for n in num_choices]
