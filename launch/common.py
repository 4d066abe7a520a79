"""Shared plumbing of the absl entry points: user errors become one clear line, exit status 2."""

import os
import sys
from typing import Callable, Sequence

from absl import app
from absl import flags
from absl import logging

from tunas_tf.errors import UserError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130

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


def existing_ancestor(path: str) -> str:
  """`path` made absolute, or its nearest ancestor that exists."""
  parent = os.path.abspath(path)
  while not os.path.exists(parent):
    parent = os.path.dirname(parent)
  return parent


def check_output_dir(path: str, flag: str = 'output_dir') -> None:
  """A UserError unless `path` is, or can be created as, a writable directory."""
  if os.path.exists(path) and not os.path.isdir(path):
    raise UserError(f'--{flag}={path!r} is a file; pass a directory (created if missing)')
  parent = existing_ancestor(path)
  if not os.path.isdir(parent):
    raise UserError(f'--{flag}={path!r} cannot be created: {parent!r} is a file; pass a '
                    'directory path')
  if not os.access(parent, os.W_OK | os.X_OK):
    raise UserError(f'--{flag}={path!r} cannot be written: no write permission on {parent!r}')


def _interrupted(resumable: bool) -> None:
  """Ctrl-C: one line saying what is kept (exit status 130, as shells report SIGINT)."""
  logging.flush()
  where = next((flags.FLAGS[f].value for f in ('output_dir', 'output')
                if f in flags.FLAGS and flags.FLAGS[f].value), None)
  if resumable and where:
    message = (f'interrupted: {where} keeps what was saved before (the last checkpoint); run '
               'the same command again to resume from there')
  elif resumable:
    message = 'interrupted; run the same command again to resume'
  else:
    message = 'interrupted before the command finished; run it again'
  sys.stderr.write(message + '\n')
  sys.exit(EXIT_INTERRUPTED)


def run(main: Callable[[Sequence[str]], None], resumable: bool = True) -> None:
  """`absl.app.run(main)`, printing a `UserError`, a flag that does not parse, a positional
  argument or an unusable --output_dir as one 'error: ...' line (exit status 2), and Ctrl-C as
  one line saying where the run can resume (`resumable`) or that it did not finish."""

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
    except KeyboardInterrupt:
      _interrupted(resumable)

  app.run(guarded, flags_parser=_parse_flags)
