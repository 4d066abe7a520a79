"""Search runs of the study benches (flag-free): one `launch.search_cell` process per run, a
finished run reused, an interrupted one resumed, and each run's wall time kept beside it."""

import os
import subprocess
import sys
import time
from typing import Any, Dict, List, Sequence

from absl import logging

from bench import paths
from tunas_tf import fileio
from tunas_tf.errors import UserError

TIMING_FILE = 'study_timing.json'


def parse_seeds(values: Sequence[str]) -> List[int]:
  """The --seeds of a study: distinct integers >= 0, else a UserError."""
  try:
    seeds = [int(s) for s in values]
  except ValueError:
    raise UserError(f'--seeds={",".join(values)!r}: pass integers, e.g. 0,1,2') from None
  if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
    raise UserError(f'--seeds={",".join(values)!r}: pass distinct integers >= 0')
  return seeds


def finished_seconds(run_dir: str):
  """The wall time of a run a study finished in `run_dir`, or None."""
  path = os.path.join(run_dir, TIMING_FILE)
  return fileio.read_json(path)['study_seconds'] if os.path.exists(path) else None


def run_search_cell(args: Sequence[str], run_dir: str, label: str,
                    extra_seconds: float = 0.0) -> Dict[str, Any]:
  """Runs `launch.search_cell ARGS --output_dir=RUN_DIR` unless a study finished it; returns its
  summary with `study_seconds` (its wall time plus `extra_seconds`)."""
  summary_path = os.path.join(run_dir, 'summary.json')
  seconds = finished_seconds(run_dir)
  if seconds is not None and os.path.exists(summary_path):
    return {**fileio.read_json(summary_path), 'study_seconds': seconds}
  args = [*args, f'--output_dir={run_dir}']
  logging.info('search_cell %s', ' '.join(args))
  start = time.perf_counter()
  done = subprocess.run([sys.executable, '-m', 'launch.search_cell', *args],
                        cwd=paths.REPO, capture_output=True, text=True)
  if done.returncode != 0:
    raise UserError(f'{label} failed (exit {done.returncode}); its last '
                    f'output:\n{done.stderr[-1500:]}')
  seconds = time.perf_counter() - start + extra_seconds
  fileio.atomic_write_json(os.path.join(run_dir, TIMING_FILE), {'study_seconds': seconds})
  return {**fileio.read_json(summary_path), 'study_seconds': seconds}
