"""Shared plumbing of the absl entry points: user errors become one clear line, exit status 2."""

import os
import sys
from typing import Callable, Sequence

from absl import app
from absl import logging

from tunas_tf.errors import UserError

EXIT_USER_ERROR = 2

# Hide TensorFlow's C++ start-up chatter (oneDNN, CUDA probing); set it to 0 to see it again.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')


def run(main: Callable[[Sequence[str]], None]) -> None:
  """`absl.app.run(main)`, printing a `UserError` as 'error: ...' with no traceback."""

  def guarded(argv):
    if len(argv) > 1:
      raise app.UsageError(f'Unexpected positional arguments: {" ".join(argv[1:])}')
    try:
      main(argv)
    except UserError as e:
      logging.flush()
      sys.stderr.write(f'error: {e}\n')
      sys.exit(EXIT_USER_ERROR)

  app.run(guarded)
