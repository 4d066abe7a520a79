"""How far to trust a table: predictions vs end-to-end measurements of held-out architectures.

Metrics follow nn-Meter's definitions (docs/anchors/latency.md §1.1, §6): MAPE, RMSE, ±5 % and
±10 % accuracy (fraction with |pred - meas| / meas <= 5 %, 10 %), bias (mean pred / meas), and
Kendall τ, since the search mostly needs the ranking right.
"""

import os
import random
from typing import Dict, List, Sequence

import numpy as np
from absl import logging

from latency import cost_model as cost_lib
from latency.calibration import config_from_header, measure_archs
from latency.table import LatencyTable
from tunas_tf import fileio
from tunas_tf.errors import UserError
from tunas_tf.space.architecture import Architecture
from tunas_tf.space.search_space import SearchSpace

VALIDATION_JSON = 'validation.json'
VALIDATION_PNG = 'validation.png'


def metrics(predicted: Sequence[float], measured: Sequence[float]) -> Dict[str, float]:
  """Agreement of `predicted` with `measured` (both in ms, same order)."""
  p = np.asarray(predicted, dtype=np.float64)
  m = np.asarray(measured, dtype=np.float64)
  if p.shape != m.shape or p.ndim != 1 or p.size == 0:
    raise UserError(f'metrics need two equal-length, non-empty lists; got {p.shape} and {m.shape}')
  if np.any(m <= 0):
    raise UserError('measured latencies must be positive')
  rel = (p - m) / m
  result = {
      'n': int(p.size),
      'mape': float(np.mean(np.abs(rel))),
      'rmse_ms': float(np.sqrt(np.mean((p - m) ** 2))),
      'bias': float(np.mean(p / m)),
      'mean_relative_error': float(np.mean(rel)),
      'within_5pct': float(np.mean(np.abs(rel) <= 0.05)),
      'within_10pct': float(np.mean(np.abs(rel) <= 0.10)),
      'kendall_tau': _kendall_tau(p, m),
  }
  return result


def _kendall_tau(p: np.ndarray, m: np.ndarray) -> float:
  if p.size < 2:
    return float('nan')
  from scipy import stats  # pylint: disable=g-import-not-at-top
  return float(stats.kendalltau(p, m).statistic)


def plot(predicted: Sequence[float], measured: Sequence[float], path: str, title: str) -> None:
  """Writes a predicted-vs-measured scatter with the y = x line and ±10 % band."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  p, m = np.asarray(predicted), np.asarray(measured)
  lo, hi = float(min(p.min(), m.min())) * 0.95, float(max(p.max(), m.max())) * 1.05
  fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
  line = np.linspace(lo, hi, 2)
  ax.fill_between(line, 0.9 * line, 1.1 * line, color='0.9', label='±10%')
  ax.plot(line, line, 'k--', lw=1, label='y = x')
  ax.scatter(m, p, s=14)
  ax.set_xlim(lo, hi)
  ax.set_ylim(lo, hi)
  ax.set_xlabel('measured (ms)')
  ax.set_ylabel('predicted (ms)')
  ax.set_title(title, fontsize=9)
  ax.legend(loc='upper left')
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = path + '.tmp.png'
  fig.savefig(tmp)
  plt.close(fig)
  os.replace(tmp, path)


def held_out_architectures(space: SearchSpace, num: int, seed: int,
                           exclude: Sequence[str]) -> List[Architecture]:
  """`num` distinct uniform samples (what the search sees) outside `exclude`."""
  rng = random.Random(seed)
  seen, archs = set(exclude), []
  for _ in range(1000 * num):
    arch = space.sample(rng)
    text = space.to_string(arch)
    if text not in seen:
      seen.add(text)
      archs.append(arch)
      if len(archs) == num:
        return archs
  raise UserError(f'Could not draw {num} distinct architectures of {space.name!r} outside the '
                  'calibration set; ask for fewer')


def validate_table(table_path: str, space_name: str, image_size: int, num_archs: int, seed: int,
                   output_dir: str, workers: int = 0, cpus: Sequence[int] = ()) -> dict:
  """Measures `num_archs` random architectures end to end and compares them with the table.

  The architectures are uniform samples, disjoint from the table's calibration set, measured
  with the table's own protocol on this machine.

  Args:
    table_path: a complete table built on this machine.
    space_name: its search space.
    image_size: its image size.
    num_archs: K held-out architectures (>= 2).
    seed: sampling seed.
    output_dir: where validation.json and validation.png go.
    workers: conversion processes (0: one per CPU).
    cpus: CPUs to pin the timing to (empty: none).

  Returns:
    The validation summary (also written to output_dir/validation.json).
  """
  if isinstance(num_archs, bool) or not isinstance(num_archs, int) or num_archs < 2:
    raise UserError(f'num_archs must be an integer >= 2, got {num_archs!r}')
  table = LatencyTable.read(table_path)
  model = cost_lib.table_cost_model(table, space_name, image_size, table_path)
  config = config_from_header(table.header, workers=workers, seed=seed, cpus=tuple(cpus))
  calibration_archs = [a['arch'] for a in (table.calibration or {}).get('archs', [])]
  archs = held_out_architectures(model.space, num_archs, seed, calibration_archs)
  entries = measure_archs(config, archs, 'Validation architectures', header=table.header)
  measured = [e.value(config.statistic) for e in entries]
  indices = np.asarray([a.indices for a in archs])
  predicted = model.predict_many(indices)
  raw = model.raw_many(indices)
  summary = {
      **metrics(predicted, measured),
      'uncalibrated': metrics(raw, measured),
      'calibration': {'a': model.scale, 'b': model.bias_ms, 'c': model.curve,
                      'num_archs': len(calibration_archs)},
      'table': os.path.abspath(table_path), 'search_space': space_name,
      'image_size': image_size, 'seed': seed, 'granularity': table.header['granularity'],
      'statistic': config.statistic, 'instances': config.instances,
      'archs': [{'arch': model.space.to_string(a), 'measured_ms': m, 'predicted_ms': float(p),
                 'sum_ms': float(r), 'measured_median_ms': e.median_ms}
                for a, m, p, r, e in zip(archs, measured, predicted, raw, entries)],
  }
  fileio.atomic_write_json(os.path.join(output_dir, VALIDATION_JSON), summary)
  plot(predicted, measured, os.path.join(output_dir, VALIDATION_PNG),
       f'{space_name}@{image_size}: MAPE {100 * summary["mape"]:.1f}%, '
       f'±10% {100 * summary["within_10pct"]:.0f}%, τ {summary["kendall_tau"]:.2f}')
  logging.info('Validation of %s on %d archs: MAPE %.1f%%, RMSE %.3f ms, bias %.3f, ±5%% %.0f%%, '
               '±10%% %.0f%%, Kendall tau %.3f', table_path, num_archs, 100 * summary['mape'],
               summary['rmse_ms'], summary['bias'], 100 * summary['within_5pct'],
               100 * summary['within_10pct'], summary['kendall_tau'])
  return summary
