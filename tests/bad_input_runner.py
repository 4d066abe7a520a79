"""Runs many invocations of one launcher in a single process, for tests/test_bad_inputs.py.

  python tests/bad_input_runner.py launch.train ROOT < cases.json

cases.json is a list of argument lists. Each case goes through the launcher's real entry point
(`launch.common.run` over absl's `app.run`, with sys.argv set to the case), so it is what a user
would see, without paying TensorFlow's import once per case. One JSON line per case: the exit
status, what was written to stderr, and the files under ROOT that the case added, changed or
removed.
"""

import contextlib
import hashlib
import importlib
import io
import json
import os
import sys
import traceback

from absl import flags


def _tree(root):
  """{relative path: sha1 of its bytes, or 'dir'} of everything under `root`."""
  files = {}
  for parent, dirs, names in os.walk(root):
    files.update({os.path.relpath(os.path.join(parent, d), root): 'dir' for d in dirs})
    for name in names:
      path = os.path.join(parent, name)
      with open(path, 'rb') as f:
        files[os.path.relpath(path, root)] = hashlib.sha1(f.read()).hexdigest()
  return files


def _run_case(module, args):
  """(exit status, stderr) of `python -m module *args`, in this process."""
  from launch import common  # pylint: disable=g-import-not-at-top
  flags.FLAGS.unparse_flags()
  sys.argv = [module.__name__, *args]
  err = io.StringIO()
  status = 0
  with contextlib.redirect_stderr(err):
    try:
      common.run(module.main)
    except SystemExit as e:
      status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except Exception:  # pylint: disable=broad-except
      traceback.print_exc()
      status = 1
  return status, err.getvalue()


def main():
  module = importlib.import_module(sys.argv[1])
  root = sys.argv[2]
  for args in json.load(sys.stdin):
    before = _tree(root)
    status, stderr = _run_case(module, args)
    after = _tree(root)
    changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    print(json.dumps({'args': args, 'status': status, 'stderr': stderr, 'changed': changed}),
          flush=True)


if __name__ == '__main__':
  main()
