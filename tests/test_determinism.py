"""--deterministic: the same command twice gives the same metrics and architecture."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _search(output_dir, *extra):
  args = ['--algorithm=gdas', '--dataset=digits', '--image_size=16', '--channels=4',
          '--num_cells=1', '--steps=6', '--batch_size=16', '--summary_every=1',
          f'--output_dir={output_dir}', *extra]
  done = subprocess.run([sys.executable, '-m', 'launch.search_cell', *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stderr[-2000:]
  rows = [json.loads(line) for line in (output_dir / 'metrics.jsonl').read_text().splitlines()]
  return (output_dir / 'arch.json').read_text(), rows


@pytest.mark.slow  # Two GDAS searches in subprocesses: ~40 s.
def test_the_same_command_twice_gives_the_same_run(tmp_path):
  first = _search(tmp_path / 'a', '--deterministic')
  second = _search(tmp_path / 'b', '--deterministic')
  assert first == second  # Every metric of every step, to the last bit, and the architecture.
