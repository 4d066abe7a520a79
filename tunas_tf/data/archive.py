"""Extraction of image-folder tarballs into a persistent cache, atomically.

The cache entry name depends on the archive's absolute path, mtime and size, so a changed
archive gets a fresh entry. Extraction goes to a temporary sibling directory that is
renamed into place only once it is complete and has the expected layout: an interrupted
run never leaves a half-extracted entry that a later run would trust.
"""

import hashlib
import os
import shutil
import tarfile
import tempfile
import time
from typing import Callable, Optional

from absl import logging

from tunas_tf.errors import UserError

ARCHIVE_SUFFIXES = ('.tar.gz', '.tgz', '.tar')


def is_archive(path: str) -> bool:
  """Whether `path` names a tarball we can extract (by its suffix)."""
  return path.lower().endswith(ARCHIVE_SUFFIXES)


def default_cache_dir() -> str:
  """`$XDG_CACHE_HOME/tunas_tf/datasets`, by default `~/.cache/tunas_tf/datasets`."""
  base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
  return os.path.join(base, 'tunas_tf', 'datasets')


def archive_stem(path: str) -> str:
  """`/a/cifar10-jpg.tar.gz` -> `cifar10-jpg`."""
  name = os.path.basename(path)
  for suffix in ARCHIVE_SUFFIXES:
    if name.lower().endswith(suffix):
      return name[:-len(suffix)]
  return name


def cache_entry_name(path: str) -> str:
  """`<stem>-<16 hex digits of sha256(abspath, mtime, size)>`."""
  stat = os.stat(path)
  key = f'{os.path.abspath(path)}\0{stat.st_mtime_ns}\0{stat.st_size}'
  return f'{archive_stem(path)}-{hashlib.sha256(key.encode()).hexdigest()[:16]}'


def _member_filter(member: tarfile.TarInfo, dest: str) -> Optional[tarfile.TarInfo]:
  """Keeps regular files and directories only, with safe names and no ownership.

  A cheaper equivalent of tarfile's 'data' filter for our needs (that one resolves
  realpaths per member and doubles the time on 60k-file archives): without links nothing
  can point outside `dest`, so rejecting absolute names and '..' suffices.
  """
  del dest  # Unused: safety follows from the checks below.
  name = member.name
  if name.startswith('/') or '..' in name.split('/'):
    raise UserError(f'Unsafe member name {name!r} in dataset archive')
  if not (member.isreg() or member.isdir()):
    return None  # Links and special files have no place in an image folder.
  member.uid = member.gid = None
  member.uname = member.gname = None
  member.mode = 0o644 if member.isreg() else None
  return member


def extract_cached(path: str,
                   cache_dir: Optional[str] = None,
                   validate: Optional[Callable[[str], None]] = None) -> str:
  """Extracts a tarball once into the cache and returns the extracted directory.

  Args:
    path: the .tar.gz / .tgz / .tar file.
    cache_dir: where entries live; `default_cache_dir()` when None.
    validate: called with the temporary extraction directory before it is committed; it
      raises (e.g. UserError for a wrong layout) to reject the archive, which is then
      deleted instead of cached.

  Returns:
    The directory holding the archive's contents.

  Raises:
    UserError: when the file is not a readable tarball.
  """
  cache_dir = cache_dir or default_cache_dir()
  final = os.path.join(cache_dir, cache_entry_name(path))
  if os.path.isdir(final):
    logging.info('Using cached extraction %s of %s', final, path)
    return final
  os.makedirs(cache_dir, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=f'.tmp-{os.path.basename(final)}-', dir=cache_dir)
  try:
    start = time.monotonic()
    try:
      # Stream mode ('r|*') decompresses once; random-access mode reads the archive twice.
      with tarfile.open(path, 'r|*') as tar:
        tar.extractall(tmp, filter=_member_filter)
    except (tarfile.TarError, EOFError, OSError) as e:
      raise UserError(f'Cannot extract dataset archive {path!r}: {e}') from e
    if validate is not None:
      validate(tmp)
    try:
      os.rename(tmp, final)
    except OSError:
      # Another process committed the same entry first; theirs is as good as ours.
      if not os.path.isdir(final):
        raise
      shutil.rmtree(tmp, ignore_errors=True)
    logging.info('Extracted %s to %s in %.1f s', path, final, time.monotonic() - start)
    return final
  finally:
    if os.path.isdir(tmp):
      shutil.rmtree(tmp, ignore_errors=True)
