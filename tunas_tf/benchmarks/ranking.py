"""Rank correlation for ranking benchmarks (e.g. supernet accuracy vs. ground truth)."""

import math
from typing import Sequence

from tunas_tf.errors import UserError


def _tie_pairs(sorted_values: Sequence[float]) -> int:
  """Σ t(t-1)/2 over runs of equal values of a sorted sequence."""
  total, run = 0, 1
  for a, b in zip(sorted_values, sorted_values[1:]):
    if a == b:
      run += 1
    else:
      total, run = total + run * (run - 1) // 2, 1
  return total + run * (run - 1) // 2


def _count_inversions(values: list) -> int:
  """Number of pairs i < j with values[i] > values[j] (bottom-up merge sort, O(n log n))."""
  swaps, width, n = 0, 1, len(values)
  while width < n:
    merged = []
    for lo in range(0, n, 2 * width):
      left, right = values[lo:lo + width], values[lo + width:lo + 2 * width]
      i = j = 0
      while i < len(left) and j < len(right):
        if right[j] < left[i]:
          merged.append(right[j])
          swaps += len(left) - i  # right[j] jumps over every remaining left element.
          j += 1
        else:
          merged.append(left[i])
          i += 1
      merged += left[i:] + right[j:]
    values, width = merged, 2 * width
  return swaps


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
  """Kendall's τ-b of two score lists (ties handled as in scipy.stats.kendalltau).

  Knight's O(n log n) algorithm: sort by (x, y), count the inversions of y.

  Returns:
    τ-b in [-1, 1]; NaN when either list is constant (the rank correlation is undefined).

  Raises:
    UserError: for lists of different lengths, fewer than two items or non-finite values.
  """
  x, y = [float(v) for v in x], [float(v) for v in y]
  if len(x) != len(y) or len(x) < 2:
    raise UserError(f'kendall_tau needs two lists of equal length >= 2, got {len(x)} and '
                    f'{len(y)} items')
  if not all(math.isfinite(v) for v in x + y):
    raise UserError('kendall_tau got non-finite scores')
  n = len(x)
  pairs = sorted(zip(x, y))
  total = n * (n - 1) // 2
  x_ties = _tie_pairs([p[0] for p in pairs])
  joint_ties = _tie_pairs(pairs)
  ys = [p[1] for p in pairs]
  discordant = _count_inversions(ys)
  y_ties = _tie_pairs(sorted(ys))
  denominator = math.sqrt((total - x_ties) * (total - y_ties))
  if denominator == 0:
    return float('nan')
  return (total - x_ties - y_ties + joint_ties - 2 * discordant) / denominator
