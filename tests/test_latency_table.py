"""Tests of latency-table files: round trip and every bad input (no TensorFlow)."""

import json
import os

import pytest

import latency
from latency.table import SCHEMA_VERSION, Entry, LatencyTable
from tests.latency_fixtures import fake_table, make_header
from tunas_tf.errors import UserError


@pytest.fixture
def table_path(tmp_path):
  path = str(tmp_path / 'table.json')
  fake_table('proxylessnas', 32, 'block').write(path)
  return path


def test_round_trip(table_path):
  table = LatencyTable.read(table_path)
  table.calibration = {'archs': [{'arch': 'x', 'indices': [0], 'measured_ms': 1.0}]}
  table.write(table_path)
  again = LatencyTable.read(table_path)
  assert again.header == table.header
  assert again.entries == table.entries
  assert again.calibration == table.calibration
  with open(table_path) as f:
    assert json.load(f)['schema_version'] == SCHEMA_VERSION
  assert not [n for n in os.listdir(os.path.dirname(table_path)) if n.endswith('.tmp')]


def _rewrite(path, change):
  with open(path) as f:
    data = json.load(f)
  change(data)
  with open(path, 'w') as f:
    json.dump(data, f)


def test_missing_file_names_the_command(tmp_path):
  with pytest.raises(UserError, match='launch.profile_latency'):
    LatencyTable.read(str(tmp_path / 'nope.json'))


def test_truncated_json(table_path):
  with open(table_path) as f:
    text = f.read()
  with open(table_path, 'w') as f:
    f.write(text[:len(text) // 2])
  with pytest.raises(UserError, match='not valid JSON.*truncated'):
    LatencyTable.read(table_path)


def test_corrupt_json(table_path):
  with open(table_path, 'w') as f:
    f.write('{"schema_version": 1, "header": ')
  with pytest.raises(UserError, match='not valid JSON'):
    LatencyTable.read(table_path)
  with open(table_path, 'w') as f:
    f.write('[1, 2]')
  with pytest.raises(UserError, match='JSON object'):
    LatencyTable.read(table_path)


def test_wrong_schema_version(table_path):
  _rewrite(table_path, lambda d: d.update(schema_version=99))
  with pytest.raises(UserError, match='schema_version 99'):
    LatencyTable.read(table_path)


@pytest.mark.parametrize('threads', [0, -1, 1.5, True, '1'])
def test_non_positive_threads(table_path, threads):
  _rewrite(table_path, lambda d: d['header'].update(threads=threads))
  with pytest.raises(UserError, match='threads'):
    LatencyTable.read(table_path)


def test_missing_header_field(table_path):
  _rewrite(table_path, lambda d: d['header'].pop('protocol'))
  with pytest.raises(UserError, match='protocol'):
    LatencyTable.read(table_path)


@pytest.mark.parametrize('value', [{'median_ms': 0.0, 'p10_ms': None, 'p90_ms': None, 'n': 3},
                                   {'median_ms': -1.0, 'p10_ms': 1, 'p90_ms': 1, 'n': 3},
                                   {'median_ms': float('nan'), 'p10_ms': 1, 'p90_ms': 1, 'n': 3},
                                   {'median_ms': 1.0, 'p10_ms': 1, 'p90_ms': 1, 'n': 0},
                                   {'median_ms': 'fast', 'p10_ms': 1, 'p90_ms': 1, 'n': 3},
                                   {'p10_ms': 1, 'p90_ms': 1, 'n': 3}, 7])
def test_bad_entries_never_read_as_zero(table_path, value):
  def change(data):
    key = sorted(data['entries'])[0]
    data['entries'][key] = value
  _rewrite(table_path, change)
  with pytest.raises(UserError, match='entry'):
    LatencyTable.read(table_path)


def test_missing_key_names_key_and_command(table_path):
  table = LatencyTable.read(table_path)
  key = sorted(table.entries)[3]
  del table.entries[key]
  table.write(table_path)
  with pytest.raises(UserError) as info:
    latency.load_cost_model(table_path, 'proxylessnas', 32)
  message = str(info.value)
  assert key in message and 'misses 1 entries' in message
  assert f'python -m launch.profile_latency --search_space=proxylessnas --image_size=32 ' \
         f'--output={table_path}' in message


@pytest.mark.parametrize('space, size, field', [('mobilenet_v2', 32, 'search_space'),
                                                ('proxylessnas', 64, 'image_size')])
def test_header_mismatch_names_the_field(table_path, space, size, field):
  with pytest.raises(UserError, match=f'built with {field}=.*requested'):
    latency.load_cost_model(table_path, space, size)


def test_check_matches_names_field_and_command(table_path):
  table = LatencyTable.read(table_path)
  with pytest.raises(UserError, match="threads=1.*threads=4.*launch.profile_latency.*--threads=4"):
    table.check_matches({'threads': 4, 'search_space': 'proxylessnas'}, table_path)
  table.check_matches({'threads': 1, 'search_space': 'proxylessnas'}, table_path)


def test_statistic_selects_the_stored_value():
  entry = Entry(median_ms=2.0, p10_ms=1.5, p90_ms=3.0, n=10, min_ms=1.25)
  assert entry.value('min') == 1.25
  assert entry.value('median') == entry.value('mean') == 2.0
  with pytest.raises(UserError, match=r"'p50'.*valid: min, median, mean"):
    entry.value('p50')
  with pytest.raises(UserError, match='no min_ms'):
    Entry(2.0, None, None, 1).value('min')


def test_table_statistic_reads_the_header():
  assert latency.table.table_statistic(make_header('proxylessnas', 32)) == 'median'
  old = make_header('proxylessnas', 32, protocol={'warmup': 1})  # Written before 'statistic'.
  assert latency.table.table_statistic(old) == 'median'
  with pytest.raises(UserError, match="'fastest'"):
    latency.table.table_statistic(make_header(
        'proxylessnas', 32, protocol={'statistic': 'fastest'}))


def test_min_table_without_min_entries_is_an_error(table_path):
  _rewrite(table_path, lambda d: d['header']['protocol'].update(statistic='min'))
  with pytest.raises(UserError, match='no min_ms'):
    latency.load_cost_model(table_path, 'proxylessnas', 32)


def test_min_table_predicts_from_min_entries(table_path):
  table = LatencyTable.read(table_path)
  medians = latency.load_cost_model(table_path, 'proxylessnas', 32)
  table.header['protocol']['statistic'] = 'min'
  table.entries = {k: Entry(e.median_ms, None, None, 1, min_ms=0.5 * e.median_ms)
                   for k, e in table.entries.items()}
  table.write(table_path)
  mins = latency.load_cost_model(table_path, 'proxylessnas', 32)
  indices = [[0] * len(mins.space.decisions)]
  assert mins.predict_many(indices)[0] == pytest.approx(0.5 * medians.predict_many(indices)[0])


@pytest.mark.parametrize('value', [0.0, -1.0, float('nan')])
def test_bad_min_entry_is_an_error(table_path, value):
  def change(data):
    key = sorted(data['entries'])[0]
    data['entries'][key]['min_ms'] = value
  _rewrite(table_path, change)
  with pytest.raises(UserError, match='min_ms='):
    LatencyTable.read(table_path)
