"""The tables shipped in latency/tables/ load, are complete, calibrated and self-describing."""

import glob
import json
import os
import random

import numpy as np
import pytest

import latency
from tunas_tf.space import get_space

TABLES = sorted(glob.glob(os.path.join(os.path.dirname(latency.__file__), 'tables', '*.json')))


def test_the_three_tunas_spaces_ship_224_tables():
  shipped = {(latency.LatencyTable.read(p).header['search_space'],
              latency.LatencyTable.read(p).header['image_size']) for p in TABLES}
  for name in ('proxylessnas', 'proxylessnas_enlarged', 'mobilenet_v3_like'):
    assert (name, 224) in shipped


@pytest.mark.parametrize('path', TABLES, ids=os.path.basename)
def test_shipped_table_is_complete_and_calibrated(path):
  table = latency.LatencyTable.read(path)
  header = table.header
  assert len((table.calibration or {}).get('archs', [])) >= 10, 'shipped tables are calibrated'
  assert header['threads'] == 1 and header['device'] == 'host'
  name, size = header['search_space'], header['image_size']
  assert os.path.basename(path) == f'{name}_{size}_{header["dtype"]}_t1.json'
  model = latency.load_cost_model(path, name, size)  # Raises on any missing key.
  assert model.scale > 0
  space = get_space(name)
  rng = random.Random(0)
  indices = np.asarray([space.sample(rng).indices for _ in range(8)])
  low, high = model.latency_range_ms()
  predicted = model.predict_many(indices)
  assert np.all((predicted >= low - 1e-9) & (predicted <= high + 1e-9)) and low > 0


def _validation_file(path):
  return os.path.join(os.path.dirname(path), 'validation', os.path.basename(path))


@pytest.mark.parametrize('path', TABLES, ids=os.path.basename)
def test_stored_calibration_is_applied_and_the_validation_file_matches_today(path):
  table = latency.LatencyTable.read(path)
  stored = table.calibration
  name, size = table.header['search_space'], table.header['image_size']
  model = latency.load_cost_model(path, name, size)
  assert (model.scale, model.bias_ms, model.curve) == (stored['a'], stored['b'],
                                                      stored.get('c', 0.0))
  validation = json.load(open(_validation_file(path)))
  space = get_space(name)
  recorded = np.asarray([a['predicted_ms'] for a in validation['archs']])
  today = np.asarray([model.predict_ms(space.parse(a['arch'])) for a in validation['archs']])
  assert len(today) >= 30
  np.testing.assert_allclose(today, recorded, rtol=1e-9)
