"""End-to-end measurements of whole architectures, and the calibration a·Σ + c·Σ² + b.

A sum of isolated unit latencies is biased (on the x86 host Σ/measured was 0.84-0.92, mostly a
common scale: docs/anchors/latency.md §4.6), so the table cost model is calibrated on K whole
architectures measured with the table's own protocol. The K architectures are spread over the
range of Σ (evenly in Σ, from a large pool of uniform, tilted and pushed samples): uniform
samples alone cluster around the mean (a sum of many independent choices), which leaves the
intercept poorly determined and the ends of the range, where targets may lie, extrapolated.
The measurements are stored in the table, so a rerun only measures what is missing and (a, b)
is always refitted against the current entries.
"""

import os
import random
from typing import Callable, List, Optional, Sequence

import numpy as np
from absl import logging

from latency import cost_model as cost_lib
from latency.profiler import ConversionPool, Progress, ProfileConfig, pinned, quiet_logs
from latency.table import RUNTIME_LITERT, Entry, LatencyTable, table_statistic
from latency.timing import QuietGuard, probe_best_of, time_models
from tunas_tf.errors import UserError
from tunas_tf.space.architecture import Architecture
from tunas_tf.space.search_space import SearchSpace

_POOL_FACTOR = 20


def config_from_header(header: dict, **overrides) -> ProfileConfig:
  """The measuring protocol of a table, to measure architectures exactly as its entries."""
  if header.get('runtime') != RUNTIME_LITERT:
    raise UserError(f'This table was measured with runtime {header.get("runtime")!r} (e.g. on a '
                    f'phone); end-to-end measurements here use {RUNTIME_LITERT!r} on this '
                    'machine and would not be comparable. Measure the architectures on the '
                    'device instead')
  protocol = header['protocol']
  kwargs = dict(search_space=header['search_space'], image_size=header['image_size'],
                granularity=header['granularity'], dtype=header['dtype'],
                num_classes=header['num_classes'], threads=header['threads'],
                warmup=protocol['warmup'], min_runs=protocol['min_runs'],
                min_seconds=protocol['min_seconds'], instances=protocol.get('instances', 1),
                use_xnnpack=header['xnnpack'],
                device=header['device'], statistic=table_statistic(header))
  kwargs.update(overrides)
  return ProfileConfig(**kwargs)


def measure_archs(config: ProfileConfig, archs: Sequence[Architecture],
                  what: str = 'Measuring architectures',
                  on_entry: Optional[Callable[[int, Entry], None]] = None,
                  header: Optional[dict] = None) -> List[Entry]:
  """Converts `archs` in parallel, then times them with `config`'s protocol.

  Each architecture is timed like a table entry (`latency.timing.time_models`:
  `config.instances` rounds over a batch, a fresh interpreter each, the fastest run kept, each
  round guarded against busy spells by a probe), so whole models and their units are
  measured alike.

  Args:
    config: protocol (threads, warm-up, runs, instances...) and conversion settings.
    archs: architectures of `config.search_space`.
    what: progress label.
    on_entry: called with (index, entry) after each architecture is done (e.g. to save it).
    header: the table's header: the guard then waits for the host to be as quiet as during
      the table's build (the probe speed it recorded).

  Returns:
    One `Entry` per architecture, in order.
  """
  jobs = [('arch', config.search_space, list(a.indices), config.image_size, config.num_classes,
           config.dtype) for a in archs]
  results: List[Entry] = []
  workers = min(config.workers or (os.cpu_count() or 1), max(1, len(jobs) // 4))
  with quiet_logs(), ConversionPool(workers) as pool:
    guard = QuietGuard(best_ms=probe_best_of(header or {}))
    batch_size = max(8, 4 * pool.workers)
    progress = Progress(len(jobs), what)
    for offset in range(0, len(jobs), batch_size):
      contents = pool.map(jobs[offset:offset + batch_size])
      with pinned(config.cpus):
        entries = time_models(contents, config, config.seed + offset, guard)
      for entry in entries:
        results.append(entry)
        if on_entry is not None:
          on_entry(len(results) - 1, entry)
      progress.update(len(results))
  logging.info('%s: quiet guard %s', what, guard.summary())
  return results


def spread_architectures(space: SearchSpace, raw_model: cost_lib.LatticeCostModel, num: int,
                         seed: int, exclude: Sequence[str] = ()) -> List[Architecture]:
  """`num` distinct architectures spread evenly over the range of the raw sum Σ.

  Args:
    space: the search space.
    raw_model: an uncalibrated cost model (its Σ orders the candidates).
    num: how many to return.
    seed: seed of the candidate pool.
    exclude: architecture strings that may not be returned.
  """
  rng = random.Random(seed)
  candidates, seen = [], set(exclude)
  pool = [space.sample(rng) if i % 2 == 0 else _tilted_sample(space, rng)
          for i in range(_POOL_FACTOR * num)]
  # The first two go all the way (toward the two ends); the rest part of the way.
  pool += [_pushed_sample(space, raw_model, rng, (-1) ** i, 1.0 if i < 2 else rng.uniform(0.3, 1))
           for i in range(num)]
  for arch in pool:
    text = space.to_string(arch)
    if text not in seen:
      seen.add(text)
      candidates.append(arch)
  if len(candidates) < num:
    raise UserError(f'Space {space.name!r} has fewer than {num} distinct architectures outside '
                    'the excluded ones; ask for fewer')
  sums = raw_model.raw_many([a.indices for a in candidates])
  # Evenly spaced in Σ (not in rank: ranks crowd the middle and leave the extremes, where a
  # latency target may lie, to extrapolation); each pick is the nearest unused candidate.
  free = np.ones(len(candidates), dtype=bool)
  picks = []
  for target in np.linspace(sums.min(), sums.max(), num):
    distance = np.where(free, np.abs(sums - target), np.inf)
    best = int(np.argmin(distance))
    free[best] = False
    picks.append(best)
  return [candidates[p] for p in sorted(picks, key=lambda p: sums[p])]


def _pushed_sample(space: SearchSpace, raw_model: cost_lib.LatticeCostModel,
                   rng: random.Random, direction: int, share: float) -> Architecture:
  """A random architecture pushed toward the costliest (direction +1) or cheapest (-1) end.

  Uniform and tilted samples miss the ends of the range (in proxylessnas the last choice is
  'skip', so a tilt toward high indices is cheap, not costly), and search targets in the
  middle of the range (latency_range_ms) lay above every calibration architecture at 32 px.
  `share` of the decisions, in random order, take their costliest / cheapest choice given the
  others (with share 1, in two passes: a choice can change what is costliest later on).
  """
  indices = list(space.sample(rng).indices)
  order = [d for d in range(len(indices)) if rng.random() < share]
  rng.shuffle(order)
  for d in order * (2 if share >= 1 else 1):
    variants = np.tile(indices, (space.decisions[d].num_choices, 1))
    variants[:, d] = np.arange(space.decisions[d].num_choices)
    indices[d] = int(np.argmax(direction * raw_model.raw_many(variants)))
  return space.canonical(Architecture(space.name, tuple(indices)))


def _tilted_sample(space: SearchSpace, rng: random.Random) -> Architecture:
  tilt = rng.uniform(-3.0, 3.0)
  indices = []
  for d in space.decisions:
    weights = np.exp(tilt * np.linspace(-1.0, 1.0, d.num_choices)) if d.num_choices > 1 else [1]
    indices.append(rng.choices(range(d.num_choices), weights=list(weights))[0])
  return space.canonical(Architecture(space.name, tuple(indices)))


def calibrate_table(path: str, num_archs: int, seed: int = 1,
                    config: Optional[ProfileConfig] = None) -> cost_lib.Calibration:
  """Measures up to `num_archs` spread architectures end to end and fits (a, b) into `path`.

  Architectures already stored in the table count towards `num_archs`; only the rest are
  measured (so an interrupted calibration resumes).

  Args:
    path: a complete table measured on this machine.
    num_archs: K, the number of calibration architectures (>= 1).
    seed: seed of the candidate pool.
    config: measuring settings (default: the table's own protocol).

  Returns:
    The fitted `Calibration` (also written into the table).
  """
  if isinstance(num_archs, bool) or not isinstance(num_archs, int) or num_archs < 1:
    raise UserError(f'num_archs must be an integer >= 1, got {num_archs!r}')
  table = LatencyTable.read(path)
  config = config or config_from_header(table.header)
  raw = cost_lib.table_cost_model(table, table.header['search_space'],
                                  table.header['image_size'], path, calibrate=False)
  space = raw.space
  data = table.calibration or {'archs': []}
  table.calibration = data
  stored = data['archs']
  todo = num_archs - len(stored)
  if todo > 0:
    archs = spread_architectures(space, raw, todo, seed + len(stored),
                                 exclude=[a['arch'] for a in stored])

    def save(i: int, entry: Entry) -> None:
      stored.append({'arch': space.to_string(archs[i]), 'indices': list(archs[i].indices),
                     'measured_ms': entry.value(config.statistic), 'median_ms': entry.median_ms,
                     'min_ms': entry.min_ms, 'p10_ms': entry.p10_ms,
                     'p90_ms': entry.p90_ms, 'n': entry.n})
      table.write(path)  # Each measurement is kept, so an interrupted calibration resumes.

    measure_archs(config, archs, 'Calibration architectures', on_entry=save,
                  header=table.header)
  sums = raw.raw_many([a['indices'] for a in stored])
  fit = cost_lib.fit_calibration(sums, [a['measured_ms'] for a in stored])
  for arch, total in zip(stored, sums):
    arch['sum_ms'] = float(total)
  if fit.mape > 0.1:
    logging.warning('The calibration line misses its own %d architectures by %.0f%% on average: '
                    'the measurements are noisy (a busy machine?) or Σ does not track them; '
                    'check the drift in the header and validate the table before using it',
                    fit.num_archs, 100 * fit.mape)
  data.update({'a': fit.a, 'b': fit.b, 'c': fit.c, 'num_archs': fit.num_archs,
               'fit_rmse_ms': fit.rmse_ms, 'fit_mape': fit.mape, 'seed': seed,
               'mean_sum_over_measured': float(np.mean(sums / np.asarray(
                   [a['measured_ms'] for a in stored])))})
  table.write(path)
  logging.info('Calibrated %s on %d architectures: %s (fit RMSE %.3f ms, MAPE %.1f%%)', path,
               fit.num_archs, fit.formula(), fit.rmse_ms, 100 * fit.mape)
  return fit
