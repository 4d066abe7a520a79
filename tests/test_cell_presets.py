"""Budget presets of the cell searches: resolution, overrides, the CLI and what summary.json records."""

import json
import os
import subprocess
import sys

import pytest

from tunas_tf.errors import UserError
from tunas_tf.search import cell_presets
from tunas_tf.search.cell_config import ALGORITHMS, CellSearchConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULTS = {'algorithm': 'gdas', 'image_size': 32, 'steps': 0, 'epochs': 250, 'channels': 0}


@pytest.mark.parametrize('preset', cell_presets.PRESETS)
@pytest.mark.parametrize('algorithm', ALGORITHMS)
def test_every_preset_gives_a_valid_config_for_every_algorithm(preset, algorithm):
  space = 'pgnas_resnet' if algorithm == 'pgnas' else 'nas_bench_201'
  fields, notes = cell_presets.resolve(preset, algorithm, {}, {'algorithm': algorithm,
                                                               'search_space': space})
  config = CellSearchConfig(**fields)
  assert config.preset == preset and not notes
  if preset == 'paper':  # The reference: 250 epochs at 32 px of the space's own network.
    assert (config.image_size, config.epochs, config.steps, config.channels) == (32, 250, 0, 0)
  else:
    assert config.image_size == 16 and config.steps > 0


def test_the_cpu_preset_trains_longer_than_quick():
  for algorithm in ALGORITHMS:
    assert (cell_presets.settings('cpu', algorithm)['steps'] >
            cell_presets.settings('quick', algorithm)['steps'])


def test_explicit_settings_win_and_each_override_is_named():
  fields, notes = cell_presets.resolve('cpu', 'gdas', DEFAULTS, {'image_size': 32, 'seed': 3})
  assert fields['image_size'] == 32 and fields['seed'] == 3
  assert fields['steps'] == cell_presets.settings('cpu', 'gdas')['steps']
  assert notes == ["--image_size=32 overrides preset 'cpu' (image_size=16)"]
  # An explicit epoch count is what runs: the preset's step count is cleared.
  fields, _ = cell_presets.resolve('quick', 'gdas', DEFAULTS, {'epochs': 2})
  assert (fields['epochs'], fields['steps']) == (2, 0)
  # No preset: the defaults and the explicit flags, as before presets existed.
  fields, notes = cell_presets.resolve('', 'gdas', DEFAULTS, {'steps': 7})
  assert fields == {**DEFAULTS, 'steps': 7, 'preset': ''} and not notes


def test_unknown_presets_are_user_errors_listing_the_valid_ones():
  with pytest.raises(UserError, match="Unknown preset 'fast'; known presets: cpu, paper, quick"):
    cell_presets.settings('fast', 'gdas')
  with pytest.raises(UserError, match="Unknown preset 'fast'"):
    CellSearchConfig(preset='fast')


def _cli(*args):
  return subprocess.run([sys.executable, '-m', 'launch.search_cell', *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=300)


def test_cli_preset_with_overrides_records_the_resolved_settings(tmp_path):
  bad = _cli('--preset=fast', f'--output_dir={tmp_path / "bad"}')
  assert bad.returncode == 2
  assert bad.stderr.strip().splitlines()[-1] == (
      "error: Unknown preset 'fast'; known presets: cpu, paper, quick")
  assert not (tmp_path / 'bad').exists()
  out = tmp_path / 'run'
  done = _cli('--preset=quick', '--algorithm=random', '--dataset=digits', '--steps=3',
              '--batch_size=16', '--channels=4', '--num_cells=1', '--eval_batch_size=64',
              '--num_candidates=4', f'--output_dir={out}')
  assert done.returncode == 0, done.stderr[-2000:]
  assert "--channels=4 overrides preset 'quick' (channels=16)" in done.stderr
  settings = json.loads((out / 'summary.json').read_text())['settings']
  assert settings == json.loads((out / 'config.json').read_text())
  assert (settings['preset'], settings['image_size'], settings['steps'], settings['channels'],
          settings['checkpoint_every']) == ('quick', 16, 3, 4, 1000)
