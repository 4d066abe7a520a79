"""Cost models T(α): the search's latency of an architecture, from a table or from MACs.

Both models are sums over the layer chain of `latency.lattice`: every (layer position, input
state, local choice) gets one precomputed cost, so `predict_many` is a few numpy gathers per
layer (vectorized over architectures) and `latency_range_ms` is an exact dynamic programme over
the states (the cost of a layer depends only on its input state and its own choices).

The table model predicts `a * Σ + c * Σ² + b` (Σ: the sum of the architecture's table entries);
(a, b, c) are fitted by least squares on end-to-end measurements stored in the table
(`latency.calibration`, which stores them beside the measurements: those stored coefficients are
what every prediction applies; a table with measurements only is fitted when it loads), and are
(1, 0, 0) without them. The Σ² term (c >= 0, kept only when it
predicts left-out calibration architectures better) follows whole models that run slower than
their units' sum the larger they are: at 32 px measured/Σ rose from 0.94 (Σ 0.1 ms) to 1.04
(Σ 1.5 ms) and 1.24 (Σ 2.9 ms), which a straight line missed by up to 20 % at the ends.
"""

import dataclasses
from typing import Any, Optional, Protocol, Sequence, Tuple, runtime_checkable

import numpy as np
from absl import logging

from latency import enumeration
from latency import keys as keys_lib
from latency.lattice import BlockStep, Lattice, as_space, check_indices_2d
from latency.table import LatencyTable, table_statistic
from tunas_tf.errors import UserError
from tunas_tf.models import macs as macs_lib
from tunas_tf.space.architecture import Architecture


def _calibrate(sums: Any, a: float, b: float, c: float) -> np.ndarray:
  """`a * sums + c * sums² + b`: milliseconds from raw sums of table entries."""
  sums = np.asarray(sums, dtype=np.float64)
  return a * sums + c * sums ** 2 + b

DEFAULT_MS_PER_MMAC = 0.25  # Pixel-1 ballpark: MobileNetV2 (300 MMACs) ~ 75 ms.


@runtime_checkable
class CostModel(Protocol):
  """What the search needs from a latency model (see notes/SEARCH_INTERFACES.md)."""
  space_name: str
  image_size: int

  def predict_ms(self, indices) -> float:
    ...

  def predict_many(self, indices_2d) -> np.ndarray:
    ...

  def latency_range_ms(self) -> Tuple[float, float]:
    ...


class LatticeCostModel:
  """`scale * Σ + curve * Σ² + bias`, Σ = Σ step costs + final cost, over a `Lattice`.

  Args:
    lattice: the layer chain of (space, image size).
    layer_costs: per layer step (in `lattice.layer_steps` order), a [states, combos] array.
    final_costs: [final states] array (the classifier).
    scale: multiplies the sum (a).
    bias_ms: added after scaling (b).
    curve: multiplies the squared sum (c >= 0, so that the prediction grows with Σ and the
      exact range is that of Σ).
  """

  def __init__(self, lattice: Lattice, layer_costs: Sequence[np.ndarray],
               final_costs: np.ndarray, scale: float = 1.0, bias_ms: float = 0.0,
               curve: float = 0.0):
    self.lattice = lattice
    self.space = lattice.space
    self.space_name = lattice.space.name
    self.image_size = lattice.image_size
    self.scale = float(scale)
    self.bias_ms = float(bias_ms)
    self.curve = float(curve)
    self._layer_costs = [np.asarray(c, dtype=np.float64) for c in layer_costs]
    self._final_costs = np.asarray(final_costs, dtype=np.float64)
    if len(self._layer_costs) != len(lattice.layer_steps):
      raise ValueError('one cost array per layer step is needed')

  def raw_many(self, indices_2d: Any) -> np.ndarray:
    """Σ of the (uncalibrated) costs of each row of `indices_2d` ([n, num_decisions])."""
    indices = check_indices_2d(self.space, indices_2d)
    total = np.zeros(indices.shape[0], dtype=np.float64)
    costs = iter(self._layer_costs)
    for step, state, choice in self.lattice.walk(indices):
      if step is None:
        total += self._final_costs[state]
      elif not isinstance(step, BlockStep):
        total += next(costs)[state, choice]
    return total

  def predict_many(self, indices_2d: Any) -> np.ndarray:
    """Predicted milliseconds of each architecture (rows of indices) as float64 [n]."""
    return self.calibrated(self.raw_many(indices_2d))

  def calibrated(self, sums: Any) -> np.ndarray:
    """`scale * sums + curve * sums² + bias` (milliseconds from raw sums)."""
    return _calibrate(sums, self.scale, self.bias_ms, self.curve)

  def predict_ms(self, indices: Any) -> float:
    """Predicted milliseconds of one architecture (indices or an `Architecture`)."""
    if isinstance(indices, Architecture):
      self.space.validate(indices)
      indices = indices.indices
    return float(self.predict_many(np.asarray(indices, dtype=np.int64)[None])[0])

  def raw_range(self) -> Tuple[float, float]:
    """Exact (min, max) of the uncalibrated sum: a DP over the lattice states."""
    lo = hi = np.zeros(1)
    costs = iter(self._layer_costs)
    for k, step in enumerate(self.lattice.steps):
      num_out = len(self.lattice.states[k + 1])
      cost = np.zeros(step.next_state.shape) if isinstance(step, BlockStep) else next(costs)
      new_lo = np.full(num_out, np.inf)
      new_hi = np.full(num_out, -np.inf)
      np.minimum.at(new_lo, step.next_state, lo[:, None] + cost)
      np.maximum.at(new_hi, step.next_state, hi[:, None] + cost)
      lo, hi = new_lo, new_hi
    return float(np.min(lo + self._final_costs)), float(np.max(hi + self._final_costs))

  def latency_range_ms(self) -> Tuple[float, float]:
    """Exact (min, max) predicted latency over every architecture of the space.

    Exact because the calibration is monotone in Σ over Σ >= 0 (a curve only with a, c > 0).
    """
    lo, hi = (float(v) for v in self.calibrated(self.raw_range()))
    return (lo, hi) if lo <= hi else (hi, lo)


def _shape_costs(lattice: Lattice, layer_cost, final_cost):
  layer = [np.asarray([[layer_cost(shape) for shape in row] for row in step.shapes])
           for step in lattice.layer_steps]
  final = np.asarray([final_cost(state) for state in lattice.final_states()])
  return layer, final


def macs_cost_model(space_name: Any, image_size: int, ms_per_mmac: float = DEFAULT_MS_PER_MMAC,
                    bias_ms: float = 0.0,
                    num_classes: int = macs_lib.DEFAULT_NUM_CLASSES) -> LatticeCostModel:
  """predicted ms = ms_per_mmac * MACs / 1e6 + bias_ms (with `tunas_tf.models.layer_macs`).

  Args:
    space_name: a registered mobile space name (or a `SearchSpace`).
    image_size: input height (= width).
    ms_per_mmac: milliseconds per million multiply-accumulates (> 0).
    bias_ms: constant added to every prediction.
    num_classes: classifier width (its MACs are included, as in `count_macs`).
  """
  if not isinstance(ms_per_mmac, (int, float)) or not ms_per_mmac > 0:
    raise UserError(f'ms_per_mmac must be a positive number, got {ms_per_mmac!r}')
  macs_lib.check_num_classes(num_classes)
  lattice = Lattice(space_name, image_size)
  layer, final = _shape_costs(lattice, lambda s: macs_lib.layer_macs(s) / 1e6,
                              lambda st: st.size ** 2 * st.filters * num_classes / 1e6)
  return LatticeCostModel(lattice, layer, final, scale=ms_per_mmac, bias_ms=bias_ms)


@dataclasses.dataclass(frozen=True)
class Calibration:
  """measured ≈ a * Σ + c * Σ² + b, fitted on `num_archs` end-to-end measurements."""
  a: float
  b: float
  num_archs: int
  rmse_ms: float
  mape: float
  c: float = 0.0

  def predict(self, sums: Any) -> np.ndarray:
    return _calibrate(sums, self.a, self.b, self.c)

  def formula(self) -> str:
    """'measured = 1.0400 * sum + 0.0120 * sum^2 - 0.0150 ms' (the Σ² term only when c > 0)."""
    curve = f' + {self.c:.4f} * sum^2' if self.c else ''
    return f'measured = {self.a:.4f} * sum{curve} {"-" if self.b < 0 else "+"} {abs(self.b):.4f} ms'


_MIN_ARCHS_FOR_CURVE = 8  # Fewer architectures: a straight line only.


def _relative_lstsq(columns: Sequence[np.ndarray], y: np.ndarray) -> np.ndarray:
  """argmin_w Σ((Σ_k w_k columns_k − y) / y)²."""
  design = np.stack([c / y for c in columns], axis=1)
  return np.linalg.lstsq(design, np.ones_like(y), rcond=None)[0]


def _line(x: np.ndarray, y: np.ndarray) -> Tuple[float, float, float]:
  """(a, b, 0) of the relative least-squares line; a pure scale when a line is not meaningful."""
  scale_only = float(np.sum(x / y) / np.sum((x / y) ** 2))  # argmin Σ((a·x − y) / y)².
  if x.size < 3 or np.std(x) <= 1e-6 * np.mean(x):
    return scale_only, 0.0, 0.0
  a, b = _relative_lstsq([x, np.ones_like(x)], y)
  if a <= 0:
    logging.warning('Calibration slope %.3g <= 0 (sums do not track measurements); falling '
                    'back to a pure scale', a)
    return scale_only, 0.0, 0.0
  return float(a), float(b), 0.0


def _curve(x: np.ndarray, y: np.ndarray) -> Optional[Tuple[float, float, float]]:
  """(a, b, c) of the relative least-squares parabola, or None unless a > 0 and c > 0."""
  a, c, b = _relative_lstsq([x, x ** 2, np.ones_like(x)], y)
  return (float(a), float(b), float(c)) if a > 0 and c > 0 else None


def _leave_one_out_mape(fit, x: np.ndarray, y: np.ndarray) -> float:
  """Mean relative error of `fit` (a, b, c or None) on each point left out of its own fit."""
  errors = []
  for i in range(x.size):
    keep = np.arange(x.size) != i
    coefficients = fit(x[keep], y[keep])
    if coefficients is None:
      return np.inf
    errors.append(abs(_calibrate(x[i], *coefficients) - y[i]) / y[i])
  return float(np.mean(errors))


def fit_calibration(sums: Sequence[float], measured: Sequence[float]) -> Calibration:
  """Least-squares fit of measured ≈ a * sums + b (+ c * sums²), in relative terms.

  The residuals are divided by the measurement (weighted least squares), so the fit minimises
  relative errors, what ±5 % / ±10 % accuracy and MAPE judge, instead of letting the slowest
  architectures dominate. With fewer than 3 architectures (or a degenerate spread of sums) only
  the scale is fitted (b = 0): two points fit any line exactly, which says nothing about new
  architectures. From 8 architectures on, the parabola (a, c > 0, so monotone for sums >= 0)
  replaces the line when it predicts each architecture left out of the fit better on average
  (leave-one-out MAPE), so a curve is kept only where the measurements bend.
  """
  x = np.asarray(sums, dtype=np.float64)
  y = np.asarray(measured, dtype=np.float64)
  if x.size == 0 or x.shape != y.shape:
    raise UserError(f'Calibration needs equal, non-empty lists of sums and measurements, got '
                    f'{x.size} and {y.size}')
  if np.any(x <= 0) or np.any(y <= 0):
    raise UserError('Calibration sums and measurements must be positive')
  a, b, c = _line(x, y)
  curve = _curve(x, y) if x.size >= _MIN_ARCHS_FOR_CURVE else None
  if curve is not None and _leave_one_out_mape(_curve, x, y) < _leave_one_out_mape(_line, x, y):
    a, b, c = curve
  pred = _calibrate(x, a, b, c)
  return Calibration(a, b, int(x.size), float(np.sqrt(np.mean((pred - y) ** 2))),
                     float(np.mean(np.abs(pred - y) / y)), c)


def table_cost_model(table: LatencyTable, space: Any, image_size: int, path: str = '',
                     calibrate: bool = True) -> LatticeCostModel:
  """A cost model summing `table`'s entries; checks the table matches and has every key."""
  space = as_space(space)
  header = table.header
  table.check_matches({'search_space': space.name, 'image_size': image_size}, path)
  lattice = Lattice(space, image_size)
  granularity, dtype = header['granularity'], header['dtype']
  needed = enumeration.enumerate_units(space, image_size, granularity, dtype,
                                       header['num_classes'], lattice=lattice)
  table.require([u.key for u in needed], path)
  statistic = table_statistic(header)
  latencies = {k: e.value(statistic) for k, e in table.entries.items()}

  def layer_cost(shape):
    return sum(latencies[u.key] for u in keys_lib.layer_units(shape, granularity, dtype))

  def final_cost(state):
    return latencies[keys_lib.classifier_unit(state.size, state.filters, header['num_classes'],
                                            dtype).key]

  layer, final = _shape_costs(lattice, layer_cost, final_cost)
  model = LatticeCostModel(lattice, layer, final)
  if calibrate:
    fit = calibration_of(table, model, path)
    if fit is None:
      logging.warning('Latency table %s has no calibration: predictions are raw sums of '
                      'entries (build with --calibrate_archs=K to fit a·Σ + c·Σ² + b)',
                      path or '(in memory)')
    else:
      model.scale, model.bias_ms, model.curve = fit.a, fit.b, fit.c
  return model


def calibration_of(table: LatencyTable, model: LatticeCostModel,
                   path: str = '') -> Optional[Calibration]:
  """The calibration the table's predictions apply: the coefficients stored by
  `latency.calibration.calibrate_table` (what the table's validation used) when it has them,
  else a fit of its stored end-to-end measurements against its sums (a table imported from
  benchmark_model logs stores measurements only); None when it has neither."""
  data = table.calibration or {}
  name = path or '(in memory)'
  if 'a' in data or 'b' in data:
    coefficients = {k: data.get(k, 0.0 if k == 'c' else None) for k in ('a', 'b', 'c')}
    if not all(_is_finite_number(v) for v in coefficients.values()) or coefficients['a'] <= 0:
      raise UserError(f'Latency table {name!r}: calibration coefficients {coefficients} must be '
                      'finite numbers with a > 0; recalibrate with --calibrate_archs=K')
    return Calibration(float(coefficients['a']), float(coefficients['b']),
                       int(data.get('num_archs', 0)), float(data.get('fit_rmse_ms', np.nan)),
                       float(data.get('fit_mape', np.nan)), float(coefficients['c']))
  archs = data.get('archs') or []
  if not archs:
    return None
  _check_calibration_archs(archs, model.space, name)
  indices = np.asarray([a['indices'] for a in archs], dtype=np.int64)
  measured = [float(a['measured_ms']) for a in archs]
  return fit_calibration(model.raw_many(indices), measured)


def _is_finite_number(value: Any) -> bool:
  return (isinstance(value, (int, float)) and not isinstance(value, bool)
          and bool(np.isfinite(value)))


def _check_calibration_archs(archs: Sequence[Any], space: Any, name: str) -> None:
  """Each stored calibration architecture has valid indices and a positive, finite time."""
  for i, arch in enumerate(archs):
    where = f'Latency table {name!r}: calibration architecture {i}'
    if not isinstance(arch, dict) or 'indices' not in arch or 'measured_ms' not in arch:
      raise UserError(f'{where} needs "indices" and "measured_ms"; got {arch!r:.120}')
    if not _is_finite_number(arch['measured_ms']) or arch['measured_ms'] <= 0:
      raise UserError(f'{where} has measured_ms {arch["measured_ms"]!r}; it must be a positive '
                      'number of milliseconds (re-import or recalibrate the table)')
    indices = arch['indices']
    if not isinstance(indices, list) or not all(isinstance(j, int) for j in indices):
      raise UserError(f'{where}: "indices" must be a list of integers; got {indices!r:.120}')
    try:
      space.check_indices(indices)
    except UserError as e:
      raise UserError(f'{where}: {e}') from None


def load_cost_model(table_path: str, space_name: str, image_size: int) -> LatticeCostModel:
  """The calibrated table cost model of `table_path` for (space_name, image_size).

  Raises:
    UserError: for a missing/corrupt table, a table of another space or image size, or
      missing entries (the message names the command that completes the table).
  """
  table = LatencyTable.read(table_path)
  return table_cost_model(table, space_name, image_size, table_path)
