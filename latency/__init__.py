"""Latency modeling: unit keys, LiteRT profiler, tables and cost models.

The cost models, keys and tables are pure Python + numpy (a search can cost architectures
without TensorFlow); the profiler, calibration, validation and bundle modules need TensorFlow
and are imported on first use.

  model = latency.load_cost_model('tables/proxylessnas_224.json', 'proxylessnas', 224)
  model.predict_many(indices_2d)   # [n] milliseconds
  model.latency_range_ms()         # exact (min, max) over the space
"""

from latency.cost_model import (Calibration, CostModel, LatticeCostModel, fit_calibration,
                                load_cost_model, macs_cost_model, table_cost_model)
from latency.enumeration import arch_units, enumerate_units, key_counts
from latency.keys import GRANULARITIES, Unit, classifier_unit, layer_units, parse_key
from latency.lattice import Lattice
from latency.table import Entry, LatencyTable

# name -> module, imported on first use (they import TensorFlow).
_LAZY = {
    'ProfileConfig': 'latency.profiler', 'BuildReport': 'latency.profiler',
    'build_table': 'latency.profiler',
    'calibrate_table': 'latency.calibration', 'measure_archs': 'latency.calibration',
    'validate_table': 'latency.validation', 'metrics': 'latency.validation',
    'export_bundle': 'latency.bundle', 'import_logs': 'latency.bundle',
    'parse_benchmark_log': 'latency.bundle',
}


def __getattr__(name):
  if name in _LAZY:
    import importlib  # pylint: disable=g-import-not-at-top
    return getattr(importlib.import_module(_LAZY[name]), name)
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
