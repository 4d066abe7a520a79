"""Atomic file writes: a reader (or a resumed run) sees the old file or the new one, never half;
and reading weights back with a clear error when they do not fit.

Everything is written into a temporary sibling of the target on the same filesystem, flushed,
then renamed into place (`os.replace` is atomic on POSIX).
"""

import contextlib
import json
import os
import shutil
import tempfile
from typing import Any, Iterator

from tunas_tf.errors import UserError


def atomic_write_bytes(path: str, content: bytes) -> None:
  """Writes `content` to `path` atomically, creating the parent directory if missing."""
  parent = os.path.dirname(os.path.abspath(path))
  os.makedirs(parent, exist_ok=True)
  fd, tmp_path = tempfile.mkstemp(dir=parent, prefix=f'.{os.path.basename(path)}.',
                                  suffix='.tmp')
  try:
    with os.fdopen(fd, 'wb') as f:
      f.write(content)
      f.flush()
      os.fsync(f.fileno())
    os.chmod(tmp_path, _mode_for(path))  # mkstemp makes 0600 files; keep the usual mode.
    os.replace(tmp_path, path)
  except BaseException:
    with contextlib.suppress(FileNotFoundError):
      os.remove(tmp_path)
    raise


def _mode_for(path: str) -> int:
  """The existing file's permissions, or those a plain open() would give a new file."""
  try:
    return os.stat(path).st_mode & 0o777
  except FileNotFoundError:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_text(path: str, text: str) -> None:
  atomic_write_bytes(path, text.encode('utf-8'))


def atomic_write_json(path: str, data: Any) -> None:
  atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + '\n')


def read_json(path: str) -> Any:
  with open(path) as f:
    return json.load(f)


def load_weights(model: Any, path: str, hint: str) -> None:
  """`model.load_weights(path)`; a damaged file or another network's weights become a UserError
  that names the file, the cause and `hint` (what the user can do)."""
  try:
    model.load_weights(path)
  except (OSError, ValueError, KeyError) as e:
    cause = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise UserError(f'Weights file {path!r} cannot be loaded into this network ({cause:.200}); '
                    f'{hint}') from None


@contextlib.contextmanager
def atomic_directory(path: str, overwrite: bool) -> Iterator[str]:
  """Yields a temporary directory that replaces `path` when the block succeeds.

  A directory cannot be swapped in a single rename when the target exists, so an existing
  target is first moved aside and deleted only after the new one is in place: at no time is
  there a partially written directory at `path`.

  Args:
    path: the final directory.
    overwrite: whether an existing `path` may be replaced.

  Yields:
    The temporary directory to fill (it exists and is empty).

  Raises:
    UserError: if `path` exists and `overwrite` is False, or `path` is a file.
  """
  path = os.path.abspath(path)
  if os.path.isfile(path):
    raise UserError(f'Output directory {path!r} is an existing file; pass a directory path')
  if os.path.exists(path) and not overwrite:
    raise UserError(f'Output directory {path!r} already exists; pass overwrite=True to '
                    'replace it')
  parent = os.path.dirname(path)
  os.makedirs(parent, exist_ok=True)
  tmp_dir = tempfile.mkdtemp(dir=parent, prefix=f'.{os.path.basename(path)}.', suffix='.tmp')
  try:
    yield tmp_dir
    old_dir = None
    if os.path.exists(path):
      old_dir = tempfile.mkdtemp(dir=parent, prefix=f'.{os.path.basename(path)}.', suffix='.old')
      os.rename(path, os.path.join(old_dir, 'previous'))
    os.rename(tmp_dir, path)
    if old_dir is not None:
      shutil.rmtree(old_dir, ignore_errors=True)
  finally:
    if os.path.exists(tmp_dir):
      shutil.rmtree(tmp_dir, ignore_errors=True)
