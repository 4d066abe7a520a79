"""Deterministic splits of a training set and dataset-size checks.

Architecture search (TuNAS, GDAS, SETN, DARTS) never touches the test set: it trains the
shared weights on one part of the training set (`search_train`) and judges or updates the
architecture on a held-out part (`search_valid`). The split must be reproducible across
runs and workers, so it depends only on (number of examples, fraction, seed[, labels]).
"""

from typing import Optional, Sequence, Tuple

import numpy as np

from tunas_tf.errors import UserError


def _num_held_out(n: int, fraction: float) -> int:
  """Rounds n * fraction half up, keeping both sides non-empty when n >= 2."""
  k = int(np.floor(n * fraction + 0.5))
  if n >= 2:
    k = min(max(k, 1), n - 1)
  return k


def check_fraction(fraction: float, what: str = 'search_valid_fraction') -> None:
  """Raises UserError unless 0 < fraction < 1."""
  if not isinstance(fraction, (int, float)) or not 0.0 < float(fraction) < 1.0:
    raise UserError(f'{what} must be a number strictly between 0 and 1; got {fraction!r}')


def split_indices(num_examples: int,
                  valid_fraction: float = 0.5,
                  seed: int = 0,
                  labels: Optional[Sequence[int]] = None) -> Tuple[np.ndarray, np.ndarray]:
  """Splits range(num_examples) into disjoint, sorted (train, valid) index arrays.

  Args:
    num_examples: size of the set to split.
    valid_fraction: fraction of examples that go to the valid side, in (0, 1).
    seed: seed of the permutation; the split is a pure function of the arguments.
    labels: optional class label of every example; when given, the split is stratified
      (each class is split with the same fraction), so a small held-out set still sees
      every class.

  Returns:
    (train_indices, valid_indices), both sorted int64 arrays that together cover
    range(num_examples) exactly once.
  """
  check_fraction(valid_fraction)
  if num_examples < 2:
    raise UserError(f'Cannot split {num_examples} example(s) into two non-empty parts')
  rng = np.random.default_rng(seed)
  if labels is None:
    groups = [np.arange(num_examples)]
  else:
    labels = np.asarray(labels)
    if labels.shape != (num_examples,):
      raise ValueError(f'labels has shape {labels.shape}, expected ({num_examples},)')
    groups = [np.flatnonzero(labels == c) for c in np.unique(labels)]
  valid = []
  for group in groups:
    permuted = rng.permutation(group)
    valid.append(permuted[:_num_held_out(len(group), valid_fraction)])
  valid = np.sort(np.concatenate(valid)).astype(np.int64)
  if len(valid) in (0, num_examples):
    # Stratification can round every class to one side (e.g. one example per class).
    valid = np.sort(rng.permutation(num_examples)[:_num_held_out(num_examples, valid_fraction)])
  mask = np.zeros(num_examples, dtype=bool)
  mask[valid] = True
  return np.flatnonzero(~mask).astype(np.int64), valid.astype(np.int64)


def check_min_examples(split_size: int, batch_size: int, what: str) -> None:
  """Raises UserError when a split cannot fill one batch.

  With `drop_remainder=True` (needed for static shapes under tf.distribute) a split smaller
  than the batch yields zero batches, and a repeated empty dataset would spin forever.

  Args:
    split_size: number of examples in the split.
    batch_size: requested (global) batch size.
    what: human-readable name of the split, e.g. "digits search_valid".
  """
  if batch_size < 1:
    raise UserError(f'batch_size must be >= 1; got {batch_size!r}')
  if split_size < batch_size:
    raise UserError(
        f'{what} has {split_size} example(s), fewer than the batch size {batch_size}; '
        f'use a batch size <= {split_size} or a larger dataset')
