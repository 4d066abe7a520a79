"""Keras epoch backups that survive a damaged newest backup.

Keras's `BackupAndRestore(double_checkpoint=True)` keeps the newest epoch's weights and training
metadata, and a copy of the previous epoch's. It falls back to the previous one only on an
`OSError`, silently, and ends in a traceback when that fails too. `RecoveringBackup` falls back
on any read error, with a warning, after moving the damaged files into a `backup_damaged`
directory beside the backup one (Keras deletes the backup directory when training finishes; the
damaged files stay); when no backup can be read, a UserError says how to start over.
"""

import os
import shutil

import keras
from absl import logging

from tunas_tf.errors import UserError

DAMAGED_SUFFIX = '_damaged'
# What reading a damaged backup raises: OSError (h5py: truncated or foreign bytes), ValueError
# (weights that do not fit, invalid metadata JSON), KeyError (a missing entry in the file).
_READ_ERRORS = (OSError, ValueError, KeyError)


def _cause(error: Exception) -> str:
  text = str(error).strip()
  return f'{type(error).__name__}: {text.splitlines()[0][:200]}' if text else type(error).__name__


class RecoveringBackup(keras.callbacks.BackupAndRestore):
  """Epoch backups in `backup_dir`: resumes from the newest readable one.

  `restore(model)` before `fit` loads it and returns the epoch training resumes at (so the data
  stream can start there too); used as a callback without it, `fit` restores it itself.
  """

  def __init__(self, backup_dir: str):
    super().__init__(backup_dir, double_checkpoint=True)
    self._restored_epoch = None

  def restore(self, model: keras.Model) -> int:
    """Loads the newest readable backup into `model`; returns its epoch (0: none)."""
    self.set_model(model)
    self._recover()
    self._restored_epoch = int(getattr(model, '_initial_epoch', 0) or 0)
    return self._restored_epoch

  def on_train_begin(self, logs=None):
    if self._restored_epoch is not None:
      self.model._initial_epoch = self._restored_epoch  # pylint: disable=protected-access
      return
    self._recover()

  def _recover(self) -> None:
    try:
      self._load_model()
      return
    except _READ_ERRORS as error:
      newest_error = error
    if not os.path.exists(self._prev_weights_path):
      raise UserError(f'Training backup {self._weights_path!r} cannot be read '
                      f'({_cause(newest_error)}) and no older backup is kept; move '
                      f'{self.backup_dir!r} aside to train again from epoch 0')
    logging.warning('Training backup %s cannot be read (%s); resuming from the previous '
                    "epoch's backup instead (the damaged files are kept in %s)",
                    self._weights_path, _cause(newest_error),
                    self._damaged_dir)
    self._set_aside_newest()
    shutil.copyfile(self._prev_weights_path, self._weights_path)
    if os.path.exists(self._prev_training_metadata_path):
      shutil.copyfile(self._prev_training_metadata_path, self._training_metadata_path)
    try:
      self._load_model()
    except _READ_ERRORS as error:
      raise UserError(f'Neither training backup in {self.backup_dir!r} can be read (newest: '
                      f'{_cause(newest_error)}; previous: {_cause(error)}); move '
                      f'{self.backup_dir!r} aside to train again from epoch 0') from None

  @property
  def _damaged_dir(self) -> str:
    return os.path.normpath(self.backup_dir) + DAMAGED_SUFFIX

  def _set_aside_newest(self) -> None:
    os.makedirs(self._damaged_dir, exist_ok=True)
    for path in (self._weights_path, self._training_metadata_path):
      if os.path.exists(path):
        os.replace(path, os.path.join(self._damaged_dir, os.path.basename(path)))
