"""bench.pgnas_study: random masks of the same keep count, and a tiny run on `digits`."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from bench import pgnas_study

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_random_masks_keep_exactly_the_count_spread_over_all_slices():
  masks = pgnas_study.random_masks([3, 5, 8], kept=6, count=50, seed=0)
  assert len(masks) == 50
  for mask in masks:
    assert [len(m) for m in mask] == [3, 5, 8]
    assert sum(float(np.sum(m)) for m in mask) == 6
  per_group = np.mean([[np.sum(m) for m in mask] for mask in masks], axis=0)
  assert per_group == pytest.approx([6 * 3 / 16, 6 * 5 / 16, 6 * 8 / 16], abs=0.5)
  again = pgnas_study.random_masks([3, 5, 8], kept=6, count=50, seed=0)
  assert all(np.array_equal(np.concatenate(a), np.concatenate(b)) for a, b in zip(masks, again))


@pytest.mark.slow  # A PGNAS search in a subprocess and its networks scored: ~1 min.
def test_study_scores_the_pick_the_prior_and_random_masks(tmp_path):
  args = ['--preset=quick', '--seeds=0', '--dataset=digits', '--test_examples=128',
          '--random_masks=3', '--set=steps=3,batch_size=16,eval_batch_size=64,num_candidates=4',
          f'--output_dir={tmp_path}']
  run = lambda: subprocess.run([sys.executable, '-m', 'bench.pgnas_study', *args], cwd=ROOT,
                               capture_output=True, text=True, timeout=600)
  done = run()
  assert done.returncode == 0, done.stderr[-3000:]
  study = json.loads((tmp_path / 'pgnas_study.json').read_text())
  (row,) = study['runs']
  summary = json.loads((tmp_path / 'seed0' / 'summary.json').read_text())
  assert row['kept_slices'] / row['total_slices'] == pytest.approx(summary['kept_slice_fraction'])
  assert row['kept_slices'] < row['total_slices'] and 0 < row['kept_weight_fraction'] < 1
  assert row['test_examples'] == 128
  assert run().returncode == 0  # The finished search is reused, and scores the same.
  assert json.loads((tmp_path / 'pgnas_study.json').read_text()) == study
