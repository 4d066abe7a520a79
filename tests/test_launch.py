"""The absl entry points, run as a user would: real processes, real files, exit statuses."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(module, *args):
  env = dict(os.environ, PYTHONPATH=ROOT)
  return subprocess.run([sys.executable, '-m', module, *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.parametrize('args,message', [
    (['--arch=resnet50'], 'neither a reference model'),
    (['--arch=k3-e3k5', '--search_space=proxylessnas'], 'expected 22'),
    (['--arch=mobilenet_v2', '--search_space=proxyless'], 'known search spaces'),
    (['--arch=random:1', '--search_space=proxylessnas', '--num_threads=0'], 'num_threads'),
])
def test_export_bad_input_is_one_error_line(tmp_path, args, message):
  result = _run('launch.export_tflite', f'--output_dir={tmp_path}', *args)
  assert result.returncode == 2, result.stderr
  assert message in result.stderr
  assert 'Traceback' not in result.stderr


@pytest.mark.parametrize('module,required', [('launch.search_cell', []), ('launch.train', []),
                                             ('launch.export_tflite', ['--arch=mobilenet_v2'])])
def test_unusable_flags_and_output_dirs_are_one_error_line(tmp_path, module, required):
  a_file = tmp_path / 'a_file'
  a_file.write_text('keep me')
  for args, message in (
      ([f'--output_dir={a_file}'], f"--output_dir='{a_file}' is a file"),
      ([f'--output_dir={a_file}/run'], f"cannot be created: '{a_file}' is a file"),
      ([f'--output_dir={tmp_path}/run', '--no_such_flag=1'],
       "Unknown command line flag 'no_such_flag'"),
      ([f'--output_dir={tmp_path}/run', 'stray'], "unexpected positional argument(s) 'stray'")):
    result = _run(module, *required, *args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]  # One line.
    assert result.stderr.startswith('error: ') and message in result.stderr
  assert a_file.read_text() == 'keep me' and not (tmp_path / 'run').exists()


def test_export_int8_writes_model_and_summary(tmp_path):
  result = _run('launch.export_tflite', '--search_space=proxylessnas', '--arch=random:5',
                '--image_size=32', '--num_classes=10', '--quantize=int8', '--dataset=digits',
                '--saved_model=false', f'--output_dir={tmp_path}')
  assert result.returncode == 0, result.stderr[-3000:]
  summary = json.loads((tmp_path / 'summary.json').read_text())
  for key in ('params', 'macs', 'latency_ms', 'tflite_max_abs_diff', 'int8_top1_agreement'):
    assert key in summary
    assert f'{key}:' in result.stdout
  # Untrained weights: round-off is judged relative to the largest logit.
  assert summary['tflite_max_rel_diff'] < 1e-4
  assert 0.0 <= summary['int8_top1_agreement'] <= 1.0
  assert (tmp_path / 'model.tflite').stat().st_size > 0
  arch = json.loads((tmp_path / 'arch.json').read_text())
  assert arch['space'] == 'proxylessnas' and len(arch['indices']) == 73


def test_train_cli_runs_and_rejects_bad_flags(tmp_path):
  bad = _run('launch.train', f'--output_dir={tmp_path / "bad"}', '--dataset=no_such_data')
  assert bad.returncode == 2 and 'known datasets' in bad.stderr
  good = _run('launch.train', '--search_space=mobilenet_v2', '--arch=mobilenet_v2',
              '--epochs=1', '--max_steps_per_epoch=2', '--batch_size=16',
              f'--output_dir={tmp_path / "run"}')
  assert good.returncode == 0, good.stderr[-3000:]
  assert 'val_accuracy (test):' in good.stdout
  assert json.loads((tmp_path / 'run' / 'summary.json').read_text())['epochs'] == 1


def test_ctrl_c_ends_with_one_line_saying_where_to_resume(tmp_path):
  out = tmp_path / 'run'
  process = subprocess.Popen(
      [sys.executable, '-m', 'launch.search_cell', '--algorithm=random', '--steps=100000',
       '--channels=4', '--num_cells=1', '--image_size=8', '--batch_size=8',
       '--checkpoint_every=5', '--num_candidates=2', f'--output_dir={out}'],
      cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), stdout=subprocess.DEVNULL,
      stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 300
  while not (out / 'checkpoints' / 'checkpoint').exists() and time.time() < deadline:
    time.sleep(0.5)
  process.send_signal(signal.SIGINT)
  _, stderr = process.communicate(timeout=120)
  assert process.returncode == 130, stderr[-2000:]
  assert 'Traceback' not in stderr and 'KeyboardInterrupt' not in stderr
  assert stderr.strip().splitlines()[-1] == (
      f'interrupted: {out} keeps what was saved before (the last checkpoint); run the same '
      'command again to resume from there')
  assert (out / 'checkpoints' / 'checkpoint').exists()
