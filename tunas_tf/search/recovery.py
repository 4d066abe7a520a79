"""Resuming from the newest *readable* checkpoint of a run.

A run keeps its last few checkpoints (ckpt-STEP.index + ckpt-STEP.data-*). When the newest
is damaged (a truncated or missing file, random bytes), `restore_newest_good` warns, moves its
files aside into CHECKPOINT_DIR/damaged/ (nothing is deleted) and tries the next older one,
down to the oldest. The checkpoint index is then rewritten to list only the readable ones, so
the manager's rotation can never delete a good checkpoint while keeping a damaged newer one.
If checkpoints exist and none can be read, the run stops with a UserError instead of silently
starting again from step 0.
"""

import glob
import os
import re
import shutil
from typing import List, Optional

import tensorflow as tf
from absl import logging

from tunas_tf.errors import UserError

DAMAGED_DIR = 'damaged'
_PREFIX = re.compile(r'^(.*ckpt-\d+)\.(index|data-\d+-of-\d+)$')
# What reading a damaged checkpoint raises: DataLossError / NotFoundError (OpError) for bad or
# missing files, IndexError / ValueError for truncated ones, AssertionError for missing objects.
_READ_ERRORS = (tf.errors.OpError, ValueError, IndexError, AssertionError, OSError)


def _step(prefix: str) -> int:
  return int(prefix.rsplit('-', 1)[1])


def checkpoint_prefixes(ckpt_dir: str) -> List[str]:
  """Every checkpoint the directory's index names or whose files it holds, newest first."""
  prefixes = set()
  state = tf.train.get_checkpoint_state(ckpt_dir)
  if state is not None:
    prefixes.update(os.path.join(ckpt_dir, os.path.basename(p))
                    for p in state.all_model_checkpoint_paths)
  for path in glob.glob(os.path.join(ckpt_dir, 'ckpt-*')):
    match = _PREFIX.match(path)
    if match:
      prefixes.add(match.group(1))
  return sorted(prefixes, key=_step, reverse=True)


def restore_newest_good(checkpoint: tf.train.Checkpoint, ckpt_dir: str,
                        set_aside: bool = True) -> Optional[str]:
  """Restores the newest readable checkpoint of `ckpt_dir` into `checkpoint`; returns its path
  (None if there is none). `set_aside`: move the damaged ones away and rewrite the index (the
  chief does; other workers only read)."""
  damaged = []
  for prefix in checkpoint_prefixes(ckpt_dir):
    try:
      checkpoint.restore(prefix).assert_existing_objects_matched()
    except _READ_ERRORS as error:
      logging.warning('Checkpoint %s cannot be read (%s: %s); trying an older one', prefix,
                      type(error).__name__, str(error).splitlines()[0][:200] if str(error) else '')
      damaged.append(prefix)
      continue
    if damaged and set_aside:
      _set_aside(damaged, ckpt_dir)
      _rewrite_index(ckpt_dir, prefix)
    return prefix
  if damaged:
    raise UserError(f'every checkpoint in {ckpt_dir!r} is unreadable '
                    f'({", ".join(os.path.basename(p) for p in damaged)}); move that directory '
                    'away to start the run again from step 0')
  return None


def _set_aside(prefixes: List[str], ckpt_dir: str) -> None:
  target = os.path.join(ckpt_dir, DAMAGED_DIR)
  os.makedirs(target, exist_ok=True)
  for prefix in prefixes:
    for path in glob.glob(prefix + '.*'):
      shutil.move(path, os.path.join(target, os.path.basename(path)))
    logging.warning('Moved the files of the damaged %s to %s', os.path.basename(prefix), target)


def _rewrite_index(ckpt_dir: str, restored: str) -> None:
  """The index lists the readable checkpoints up to the restored one, oldest first."""
  kept = [os.path.basename(p) for p in reversed(checkpoint_prefixes(ckpt_dir))
          if _step(p) <= _step(restored)]
  tf.compat.v1.train.update_checkpoint_state(ckpt_dir, os.path.basename(restored),
                                             all_model_checkpoint_paths=kept)
