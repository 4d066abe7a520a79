"""Stand-alone training: a tiny run completes, writes its summary, and resumes after a crash."""

import csv
import os

import h5py
import keras
import numpy as np
import pytest

from tunas_tf.errors import UserError
from tunas_tf.training.config import TrainConfig
from tunas_tf.training.standalone import train

# A small fixed architecture keeps the test fast: MobileNetV2's layout at 32x32.
_TINY = dict(search_space='mobilenet_v2', arch='mobilenet_v2', dataset='digits', image_size=32,
             batch_size=32, max_steps_per_epoch=2)


class _Crash(keras.callbacks.Callback):
  """Simulates a killed job at the start of epoch `at`."""

  def __init__(self, at):
    super().__init__()
    self.at = at

  def on_epoch_begin(self, epoch, logs=None):
    if epoch == self.at:
      raise RuntimeError('simulated crash')


def _epochs_logged(output_dir):
  with open(os.path.join(output_dir, 'history.csv')) as f:
    return [int(row['epoch']) for row in csv.DictReader(f)]


def _weights(output_dir):
  """{dataset path: array} of the run's final model.weights.h5."""
  arrays = {}
  with h5py.File(os.path.join(output_dir, 'model.weights.h5'), 'r') as f:
    f.visititems(lambda name, item: arrays.update({name: item[()]})
                 if isinstance(item, h5py.Dataset) else None)
  return arrays


def test_train_resumes_after_a_crash_and_finishes(tmp_path):
  config = TrainConfig(epochs=3, **_TINY)
  out = str(tmp_path / 'run')
  with pytest.raises(RuntimeError, match='simulated crash'):
    train(config, out, extra_callbacks=[_Crash(at=2)])
  assert not os.path.exists(os.path.join(out, 'summary.json'))
  assert _epochs_logged(out) == [0, 1]
  # The interrupted run is not resumed with other settings, and nothing of it is overwritten.
  written = {name: open(os.path.join(out, name)).read() for name in ('arch.json', 'config.json')}
  with pytest.raises(UserError, match=r"another configuration \(arch: 'mobilenet_v2' -> "
                                      r"'mnasnet_b1', search_space: 'mobilenet_v2' -> 'mnasnet_b1'"):
    train(TrainConfig(epochs=3, **{**_TINY, 'arch': 'mnasnet_b1', 'search_space': 'mnasnet_b1'}),
          out)
  with pytest.raises(UserError, match='base_learning_rate: 0.165 -> 0.5'):
    train(TrainConfig(epochs=3, base_learning_rate=0.5, **_TINY), out)
  assert {name: open(os.path.join(out, name)).read() for name in written} == written
  summary = train(config, out)
  assert _epochs_logged(out) == [0, 1, 2]  # Epochs 0 and 1 were not trained again.
  # It ends where an uninterrupted run ends (up to float round-off: runs are not bit-identical).
  whole = str(tmp_path / 'uninterrupted')
  uninterrupted = train(config, whole)
  assert summary['val_loss'] == pytest.approx(uninterrupted['val_loss'], rel=1e-4)
  resumed_weights, whole_weights = _weights(out), _weights(whole)
  assert sorted(resumed_weights) == sorted(whole_weights)
  for name, value in whole_weights.items():
    np.testing.assert_allclose(resumed_weights[name], value, rtol=1e-3, atol=1e-6, err_msg=name)
  for key in ('val_accuracy', 'params', 'macs', 'arch', 'steps_per_epoch'):
    assert key in summary
  assert 0.0 <= summary['val_accuracy'] <= 1.0
  assert os.path.exists(os.path.join(out, 'model.weights.h5'))
  assert os.listdir(os.path.join(out, 'tensorboard'))
  # A finished run is not trained again; another config in the same directory is refused.
  assert train(config, out) == summary
  with pytest.raises(UserError, match='another configuration'):
    train(TrainConfig(epochs=4, **_TINY), out)


def _truncate(path):
  with open(path, 'r+b') as f:
    f.truncate(os.path.getsize(path) // 2)


def _crashed_at_epoch_two(tmp_path):
  """(config, run directory) of a run killed at the start of epoch 2 (two epochs backed up)."""
  config = TrainConfig(epochs=3, **_TINY)
  out = str(tmp_path / 'run')
  with pytest.raises(RuntimeError, match='simulated crash'):
    train(config, out, extra_callbacks=[_Crash(at=2)])
  return config, out


def test_a_damaged_newest_backup_falls_back_to_the_previous_epoch(tmp_path):
  config, out = _crashed_at_epoch_two(tmp_path)
  backup = os.path.join(out, 'backup')
  _truncate(os.path.join(backup, 'latest.weights.h5'))
  train(config, out)
  # Epoch 1 (the damaged backup's) was trained again from the epoch-0 backup; the damaged
  # file was moved aside, not deleted.
  assert _epochs_logged(out) == [0, 1, 1, 2]
  assert os.path.getsize(os.path.join(out, 'backup_damaged', 'latest.weights.h5')) > 0


def test_no_readable_backup_is_a_clear_error_that_deletes_nothing(tmp_path):
  config, out = _crashed_at_epoch_two(tmp_path)
  backup = os.path.join(out, 'backup')
  for name in ('latest.weights.h5', 'latest.weights.h5.bkp'):
    _truncate(os.path.join(backup, name))
  with pytest.raises(UserError, match=r'Neither training backup in .*backup.* can be read .*'
                                      r'move .* aside to train again from epoch 0'):
    train(config, out)
  # Both damaged backups are still there: the newest set aside, the previous one in place.
  assert not os.path.exists(os.path.join(out, 'summary.json'))
  assert sorted(os.listdir(os.path.join(out, 'backup_damaged'))) == [
      'latest.weights.h5', 'training_metadata.json']
  assert {'latest.weights.h5.bkp', 'training_metadata.json.bkp'} <= set(os.listdir(backup))


def test_config_errors_name_the_value():
  with pytest.raises(UserError, match="optimizer must be one of rmsprop, sgd; got 'adam'"):
    TrainConfig(optimizer='adam')
  with pytest.raises(UserError, match='batch_size must be a positive integer; got 0'):
    TrainConfig(batch_size=0)


def test_batch_larger_than_the_split_is_a_clear_error(tmp_path):
  config = TrainConfig(epochs=1, **{**_TINY, 'batch_size': 100_000})
  with pytest.raises(UserError, match='fewer than one batch'):
    train(config, str(tmp_path / 'run'))


@pytest.mark.slow  # The full NAS-Bench-201 network (17 cells) takes ~1 min to trace here.
def test_a_cell_architecture_trains(tmp_path):
  config = TrainConfig(search_space='nas_bench_201', arch='random:0', dataset='digits',
                       image_size=32, batch_size=16, epochs=1, max_steps_per_epoch=1,
                       optimizer='sgd', base_learning_rate=0.1)
  summary = train(config, str(tmp_path / 'cell'))
  assert summary['search_space'] == 'nas_bench_201'
  assert summary['macs'] is None and summary['params'] > 0
