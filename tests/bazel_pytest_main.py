"""Entry point of every Bazel py_test in tests/: runs pytest on the test file it is given.

`bazel test` runs a py_test's `main` as a script, but test files are plain pytest modules
(no `__main__` block), so //tests:pytest_test.bzl makes this runner the main of each target
and passes the test file and pytest options as arguments. Outside Bazel, run pytest directly.
"""

import os
import sys

import pytest


def pytest_args(argv, environ):
  """Returns the pytest command line for a Bazel test run.

  Args:
    argv: the arguments Bazel passed (test file paths and pytest options).
    environ: the test environment, read for Bazel's XML_OUTPUT_FILE.

  Returns:
    The arguments for `pytest.main`.
  """
  # The runfiles tree is read-only: no .pytest_cache.
  args = ['-q', '-p', 'no:cacheprovider', *argv]
  xml_output = environ.get('XML_OUTPUT_FILE')
  if xml_output:
    # Bazel reads per-test-case results from this file (shown by `bazel test` tools and IDEs).
    args.append(f'--junitxml={xml_output}')
  return args


def main():
  """Runs pytest and returns its exit status (5, no tests collected, counts as a failure)."""
  tmpdir = os.environ.get('TEST_TMPDIR')
  if tmpdir:
    # HOME is unset and read-only under `bazel test`; give matplotlib a writable cache.
    os.environ.setdefault('MPLCONFIGDIR', os.path.join(tmpdir, 'matplotlib'))
  return pytest.main(pytest_args(sys.argv[1:], os.environ))


if __name__ == '__main__':
  sys.exit(main())
