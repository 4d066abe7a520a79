"""Shared plumbing of the absl entry points: user errors become one clear line, exit status 2."""

import os
import sys
from typing import Callable, Sequence

from absl import app
from absl import flags
from absl import logging

from tunas_tf.errors import UserError

EXIT_USER_ERROR = 2

# Hide TensorFlow's C++ start-up chatter (oneDNN, CUDA probing); set it to 0 to see it again.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')


def _fail(message: str) -> None:
  logging.flush()
  sys.stderr.write(f'error: {message}\n')
  sys.exit(EXIT_USER_ERROR)


def _parse_flags(argv):
  """absl's parsing, with a bad flag (unknown, mistyped, not in its enum) as one error line."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    _fail(f'{e}; see --help for the valid flags')


def check_output_dir(path: str, flag: str = 'output_dir') -> None:
  """A UserError unless `path` is, or can be created as, a writable directory."""
  if os.path.exists(path) and not os.path.isdir(path):
    raise UserError(f'--{flag}={path!r} is a file; pass a directory (created if missing)')
  parent = os.path.abspath(path)
  while not os.path.exists(parent):
    parent = os.path.dirname(parent)
  if not os.path.isdir(parent):
    raise UserError(f'--{flag}={path!r} cannot be created: {parent!r} is a file; pass a '
                    'directory path')
  if not os.access(parent, os.W_OK | os.X_OK):
    raise UserError(f'--{flag}={path!r} cannot be written: no write permission on {parent!r}')


def run(main: Callable[[Sequence[str]], None]) -> None:
  """`absl.app.run(main)`, printing a `UserError`, a flag that does not parse, a positional
  argument or an unusable --output_dir as one 'error: ...' line (exit status 2)."""

  def guarded(argv):
    try:
      if len(argv) > 1:
        raise UserError(f'unexpected positional argument(s) {" ".join(argv[1:])!r}; every '
                        'option is a --flag=value (see --help)')
      if 'output_dir' in flags.FLAGS and flags.FLAGS.output_dir:
        check_output_dir(flags.FLAGS.output_dir)
      main(argv)
    except UserError as e:
      _fail(str(e))

  app.run(guarded, flags_parser=_parse_flags)
