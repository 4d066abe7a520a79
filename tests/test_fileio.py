"""Atomic writes: whole files only, the usual permissions, nothing left behind on failure."""

import os
import stat

import pytest

from tunas_tf import fileio


def _mode(path):
  return stat.S_IMODE(os.stat(path).st_mode)


def test_new_file_gets_the_umask_mode(tmp_path):
  old = os.umask(0o022)
  try:
    path = str(tmp_path / 'sub' / 'table.json')
    fileio.atomic_write_json(path, {'a': 1})
  finally:
    os.umask(old)
  assert fileio.read_json(path) == {'a': 1}
  assert _mode(path) == 0o644  # Not mkstemp's 0600: a shipped table must be readable.


def test_rewrite_keeps_the_existing_mode(tmp_path):
  path = str(tmp_path / 'table.json')
  fileio.atomic_write_text(path, 'one')
  os.chmod(path, 0o640)
  fileio.atomic_write_text(path, 'two')
  assert open(path).read() == 'two' and _mode(path) == 0o640


def test_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
  path = str(tmp_path / 'table.json')
  fileio.atomic_write_text(path, 'old')
  with pytest.raises(TypeError):
    fileio.atomic_write_bytes(path, 'not bytes')
  assert open(path).read() == 'old'
  assert os.listdir(tmp_path) == ['table.json']
