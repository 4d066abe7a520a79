"""Builds latency tables on this machine: convert units in parallel, time them one by one.

Protocol (docs/anchors/latency.md §4.6, §6): each unit is its own .tflite with the unit's
exact input shape, run by the LiteRT interpreter with an explicit thread count; inputs are
written once, only `invoke()` is timed, after warm-up, for at least `min_runs` runs and
`min_seconds`; the entry keeps min, median, p10, p90 and n, and the header names the statistic
the table's latencies stand for (`statistic`, by default the minimum: see `latency.table`).
Units are measured in a random order, in rounds of fresh interpreters guarded against busy
spells of the host (`latency.timing`); the timing process can be pinned to CPUs, and a
reference unit is re-timed every `reference_every` entries to expose drift (in the header).

Speed: converting a unit (~0.2 s) costs more than timing it (~0.1 s), so conversion runs in
`workers` processes while the timer waits, and timing runs alone afterwards (timing while
converting on the same cores disturbs the measurements). The table is flushed atomically every
`flush_every` entries, so an interrupted build loses little and a rerun of the same command
measures only the missing keys.
"""

import contextlib
import dataclasses
import datetime
import logging as std_logging
import os
import random
import time
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from absl import logging

from latency import enumeration
from latency import keys as keys_lib
from latency.lattice import Lattice, as_space
from latency.table import (RUNTIME_LITERT, STATISTIC_MIN, Entry, LatencyTable, check_statistic,
                           cpu_model, library_versions, table_statistic)
from latency.timing import (QuietGuard, faster, probe_best_of,  # pylint: disable=unused-import
                            summarize, time_model, time_models, time_models_checked)
from tunas_tf.errors import UserError
from tunas_tf.export.interpreter import check_num_threads
from tunas_tf.models.macs import DEFAULT_NUM_CLASSES, check_num_classes

AUTO = 'auto'


@dataclasses.dataclass(frozen=True)
class ProfileConfig:
  """What table to build and how to measure it.

  Attributes:
    search_space: registered mobile space name.
    image_size: input height (= width).
    granularity: 'op', 'block', or 'auto' (whichever needs fewer keys; an existing table's).
    dtype: 'float32' or 'int8'.
    num_classes: classifier width.
    threads: LiteRT interpreter threads (explicit: tool defaults differ).
    warmup: untimed runs before timing (per interpreter instance).
    min_runs: at least this many timed runs per instance.
    min_seconds: and at least this long a timed loop per instance.
    instances: timing rounds per entry, a fresh interpreter each (see `timing.time_models`).
    use_xnnpack: keep the default XNNPACK delegate (as on phones).
    device: label of the machine (e.g. 'host', 'pixel4'); part of the table's identity.
    cpus: CPUs to pin the timing process to (empty: no pinning).
    workers: conversion processes; 0 = one per CPU, 1 = convert in this process.
    flush_every: write the table after this many new entries.
    reference_every: re-time the reference unit after this many entries.
    seed: seed of the measurement order and of the random inputs.
    statistic: what an entry's latency is: 'min' (fastest timed run) or 'median'.
  """
  search_space: str
  image_size: int
  granularity: str = AUTO
  dtype: str = 'float32'
  num_classes: int = DEFAULT_NUM_CLASSES
  threads: int = 1
  warmup: int = 5
  min_runs: int = 10
  min_seconds: float = 0.02
  instances: int = 5
  use_xnnpack: bool = True
  device: str = 'host'
  cpus: Tuple[int, ...] = ()
  workers: int = 0
  flush_every: int = 50
  reference_every: int = 200
  seed: int = 0
  statistic: str = STATISTIC_MIN

  def __post_init__(self):
    as_space(self.search_space)
    if self.granularity != AUTO:
      keys_lib.check_granularity(self.granularity)
    keys_lib.check_dtype(self.dtype)
    check_num_classes(self.num_classes)
    check_num_threads(self.threads)
    for name in ('warmup', 'workers'):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UserError(f'{name} must be an integer >= 0, got {value!r}')
    for name in ('min_runs', 'flush_every', 'reference_every', 'instances'):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f'{name} must be an integer >= 1, got {value!r}')
    if not isinstance(self.min_seconds, (int, float)) or not self.min_seconds >= 0:
      raise UserError(f'min_seconds must be a number >= 0, got {self.min_seconds!r}')
    if not isinstance(self.device, str) or not self.device.strip():
      raise UserError(f'device must be a non-empty label, got {self.device!r}')
    object.__setattr__(self, 'cpus', tuple(int(c) for c in self.cpus))
    if check_statistic(self.statistic) == 'mean':
      raise UserError("statistic 'mean' is only read from benchmark_model logs; measure with "
                      "'min' or 'median'")

  @property
  def protocol(self) -> dict:
    return {'warmup': self.warmup, 'min_runs': self.min_runs,
            'min_seconds': float(self.min_seconds), 'statistic': self.statistic,
            'instances': self.instances}


_BUILD_MAX_WAIT_S = 5.0


def resolve_granularity(config: ProfileConfig, existing: Optional[LatencyTable] = None) -> str:
  """'op' or 'block': the request, else an existing table's, else whichever has fewer keys."""
  if config.granularity != AUTO:
    return config.granularity
  if existing is not None:
    return existing.header['granularity']
  counts = enumeration.key_counts(config.search_space, config.image_size)
  return min(keys_lib.GRANULARITIES, key=lambda g: (counts[g], g))


def make_header(config: ProfileConfig, granularity: str) -> dict:
  """The identity and protocol of a table measured on this machine with `config`."""
  return {
      'search_space': config.search_space, 'image_size': config.image_size,
      'num_classes': config.num_classes, 'granularity': granularity, 'dtype': config.dtype,
      'threads': config.threads, 'device': config.device, 'runtime': RUNTIME_LITERT,
      'xnnpack': config.use_xnnpack, 'cpu_model': cpu_model(), 'libraries': library_versions(),
      'protocol': config.protocol, 'affinity': list(config.cpus) or None,
      'converter': 'keras -> frozen concrete function -> TFLiteConverter (latency.convert)',
      'created': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
  }


# Conversion jobs: ('unit', key) or ('arch', space, indices, image_size, num_classes, dtype).
def convert_job(job: tuple) -> bytes:
  """Converts one job to .tflite bytes (runs in a worker process or in this one)."""
  # No keras.backend.clear_session() here: it costs ~0.27 s, more than a conversion.
  from latency import convert  # pylint: disable=g-import-not-at-top
  if job[0] == 'unit':
    return convert.convert_unit(keys_lib.parse_key(job[1]))
  _, space, indices, image_size, num_classes, dtype = job
  from tunas_tf.space.architecture import Architecture  # pylint: disable=g-import-not-at-top
  return convert.convert_arch(space, Architecture(space, tuple(indices)), image_size,
                              num_classes, dtype)


def _worker_init() -> None:
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  for name in _QUIET_LOGGERS:  # A worker lives for one build: no need to remove it.
    std_logging.getLogger(name).addFilter(_QuietFilter())


class ConversionPool:
  """Converts jobs in `workers` spawned processes (or in this process when workers <= 1)."""

  def __init__(self, workers: int):
    self.workers = max(1, workers or (os.cpu_count() or 1))
    self._executor = None

  def __enter__(self) -> 'ConversionPool':
    if self.workers > 1:
      import concurrent.futures  # pylint: disable=g-import-not-at-top
      import multiprocessing  # pylint: disable=g-import-not-at-top
      # 'spawn': TensorFlow is not fork-safe once imported.
      self._executor = concurrent.futures.ProcessPoolExecutor(
          self.workers, mp_context=multiprocessing.get_context('spawn'),
          initializer=_worker_init)
    return self

  def __exit__(self, *unused_exc) -> None:
    if self._executor is not None:
      self._executor.shutdown(cancel_futures=True)
      self._executor = None

  def map(self, jobs: Sequence[tuple]) -> List[bytes]:
    if self._executor is None:
      return [convert_job(j) for j in jobs]
    return list(self._executor.map(convert_job, jobs))


_QUIET_PREFIXES = ('TFLite interpreter:', 'Using new converter',
                   'Please consider providing the trackable_obj')
_QUIET_LOGGERS = ('absl', 'tensorflow')


class _QuietFilter(std_logging.Filter):
  """Drops the one-line-per-model logs of make_interpreter and the TFLite converter.

  The frozen-function path warns that it is "the deprecated conversion path" without a
  trackable object: that path (a frozen graph) is exactly the one we want, see `convert`.
  """

  def filter(self, record: std_logging.LogRecord) -> bool:
    return not str(record.msg).startswith(_QUIET_PREFIXES)


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
  """Silences thousands of identical per-model log lines during a build; restores them."""
  log_filter = _QuietFilter()
  loggers = [std_logging.getLogger(name) for name in _QUIET_LOGGERS]
  for logger in loggers:
    logger.addFilter(log_filter)
  try:
    yield
  finally:
    for logger in loggers:
      logger.removeFilter(log_filter)


@contextlib.contextmanager
def pinned(cpus: Sequence[int]) -> Iterator[None]:
  """Pins this process to `cpus` (no-op when empty) and restores its affinity afterwards."""
  if not cpus:
    yield
    return
  available = os.sched_getaffinity(0)
  if not set(cpus) <= available:
    raise UserError(f'cpus {list(cpus)} are not all available to this process; available '
                    f'CPUs: {sorted(available)}')
  os.sched_setaffinity(0, set(cpus))
  try:
    yield
  finally:
    os.sched_setaffinity(0, available)


class Progress:
  """Logs 'done/total, rate, ETA' at most every `every_s` seconds."""

  def __init__(self, total: int, what: str, every_s: float = 5.0):
    self.total, self.what, self.every_s = total, what, every_s
    self.start = self._last = time.monotonic()

  def update(self, done: int, force: bool = False) -> None:
    now = time.monotonic()
    if not force and now - self._last < self.every_s:
      return
    self._last = now
    rate = done / max(now - self.start, 1e-9)
    eta = (self.total - done) / rate if rate > 0 else float('inf')
    logging.info('%s: %d/%d (%.0f%%), %.1f per minute, ETA %s', self.what, done, self.total,
                 100.0 * done / max(self.total, 1), 60 * rate, _format_seconds(eta))


def _format_seconds(seconds: float) -> str:
  if not np.isfinite(seconds):
    return '?'
  minutes, secs = divmod(int(round(seconds)), 60)
  return f'{minutes}m{secs:02d}s'


@dataclasses.dataclass(frozen=True)
class BuildReport:
  """What one `build_table` call did."""
  path: str
  granularity: str
  needed: int
  already_present: int
  measured: int
  seconds: float
  convert_seconds: float
  time_seconds: float

  @property
  def complete(self) -> bool:
    return self.already_present + self.measured >= self.needed

  @property
  def entries_per_minute(self) -> float:
    return 60.0 * self.measured / self.seconds if self.seconds > 0 else 0.0


def open_table(config: ProfileConfig, path: str) -> Tuple[LatencyTable, str]:
  """Reads the table at `path` (checking it matches `config`) or starts a new one."""
  existing = LatencyTable.read(path) if os.path.exists(path) else None
  granularity = resolve_granularity(config, existing)
  header = make_header(config, granularity)
  if existing is None:
    return LatencyTable(header), granularity
  request = {k: v for k, v in header.items() if k not in ('created', 'affinity', 'converter')}
  existing.check_matches(request, path)
  return existing, granularity


def _record_drift(table: LatencyTable, reference: keys_lib.Unit, entry: Entry,
                  done: int) -> None:
  statistic = table_statistic(table.header)
  drift = table.header.setdefault('drift', {'reference_key': reference.key, 'statistic': statistic,
                                            'after_entries': []})
  drift.setdefault('latency_ms', drift.pop('median_ms', []))  # Older tables: 'median_ms'.
  drift['latency_ms'].append(entry.value(statistic))
  drift['after_entries'].append(len(table.entries))
  values = np.asarray(drift['latency_ms'])
  drift['max_relative_change'] = float((values.max() - values.min()) / values.min())
  if drift['max_relative_change'] > 0.1:
    logging.warning('Reference unit drifted by %.0f%% during the build (after %d new '
                    'entries); the machine may be busy or throttling',
                    100 * drift['max_relative_change'], done)


def _retime_busy(table: LatencyTable, busy: Sequence[Tuple[keys_lib.Unit, bytes]],
                 config: ProfileConfig, floor_ms: float, batch_size: int) -> int:
  """Times again, once, the units of batches during which the host never ran clean.

  The build's guard gives up after a few seconds and adopts a busy speed, so a long spell can
  cover all the rounds of a batch. At the end of the build the spell has likely passed; this
  pass waits longer for the host to be as fast as the fastest probe of the build and keeps
  each unit's faster entry. Returns how many units it re-timed.
  """
  if not busy:
    return 0
  logging.info('Re-timing %d entries measured only while the host was busy', len(busy))
  guard = QuietGuard(best_ms=floor_ms)
  progress = Progress(len(busy), 'Re-timing busy entries')
  for offset in range(0, len(busy), batch_size):
    units, contents = zip(*busy[offset:offset + batch_size])
    entries = time_models(contents, config, config.seed + offset, guard)
    for unit, entry in zip(units, entries):
      table.entries[unit.key] = faster(table.entries[unit.key], entry, config.statistic)
    progress.update(offset + len(units), force=True)
  return len(busy)


def build_table(config: ProfileConfig, path: str, units: Optional[Sequence[keys_lib.Unit]] = None,
                max_new_entries: Optional[int] = None,
                on_entry: Optional[Callable[[str, Entry], None]] = None) -> BuildReport:
  """Builds or completes the table at `path`: measures exactly the missing keys.

  Args:
    config: what to measure and how.
    path: the table file (created, or resumed when it exists and matches `config`).
    units: restrict the build to these units (default: every unit the space needs).
    max_new_entries: stop after measuring this many entries (a partial table; rerun to
      complete it).
    on_entry: called with (key, entry) after each new entry.

  Returns:
    A `BuildReport`.
  """
  start = time.monotonic()
  table, granularity = open_table(config, path)
  lattice = Lattice(config.search_space, config.image_size)
  needed = list(units) if units is not None else list(enumeration.enumerate_units(
      config.search_space, config.image_size, granularity, config.dtype, config.num_classes,
      lattice=lattice))
  missing = [u for u in needed if u.key not in table.entries]
  random.Random(config.seed).shuffle(missing)
  if max_new_entries is not None:
    missing = missing[:max(0, max_new_entries)]
  present = len(needed) - len([u for u in needed if u.key not in table.entries])
  logging.info('Latency table %s: %d keys needed (%s granularity), %d present, measuring %d',
               path, len(needed), granularity, present, len(missing))
  convert_s = time_s = 0.0
  done = 0
  busy = []  # (unit, content) of batches timed only at a busy speed.
  if missing:
    # Spawning workers costs seconds (each imports TensorFlow): not worth it for a few keys.
    workers = min(config.workers or (os.cpu_count() or 1), max(1, len(missing) // 20))
    with quiet_logs(), ConversionPool(workers) as pool:
      reference = needed[0]
      reference_content = pool.map([('unit', reference.key)])[0]
      # Short waits only: a build has thousands of rounds, and the fastest run of a unit is
      # less sensitive to a busy host than that of a whole model (calibration waits longer).
      guard = QuietGuard(max_wait_s=_BUILD_MAX_WAIT_S, best_ms=probe_best_of(table.header))
      with pinned(config.cpus):
        progress = Progress(len(missing), f'Profiling {config.search_space}@{config.image_size}')
        # Large enough batches that each unit's instances lie seconds apart (time_models).
        batch_size = max(32, 16 * pool.workers)
        for offset in range(0, len(missing), batch_size):
          batch = missing[offset:offset + batch_size]
          t0 = time.monotonic()
          contents = pool.map([('unit', u.key) for u in batch])
          t1 = time.monotonic()
          if offset == 0:  # Only now are all workers past importing TensorFlow (idle).
            _record_drift(table, reference, time_model(reference_content, config, config.seed), 0)
          entries, clean = time_models_checked(contents, config, config.seed + offset, guard)
          if not clean:
            busy.extend(zip(batch, contents))
          for unit, entry in zip(batch, entries):
            table.entries[unit.key] = entry
            done += 1
            if done % config.reference_every == 0:
              _record_drift(table, reference, time_model(reference_content, config), done)
            if done % config.flush_every == 0:
              table.write(path)
            if on_entry is not None:
              on_entry(unit.key, entry)
          progress.update(done)
          convert_s, time_s = convert_s + t1 - t0, time_s + time.monotonic() - t1
        _record_drift(table, reference, time_model(reference_content, config), done)
        retimed = _retime_busy(table, busy, config, guard.floor_ms, batch_size)
        table.header['quiet_guard'] = {**guard.summary(), 'retimed': retimed}
  seconds = time.monotonic() - start
  if done or not os.path.exists(path):
    table.header['last_build'] = {'measured': done, 'seconds': round(seconds, 2),
                                  'entries_per_minute': round(60 * done / max(seconds, 1e-9), 1)}
    table.write(path)
  report = BuildReport(path, granularity, len(needed), present, done, seconds, convert_s, time_s)
  logging.info('Latency table %s: measured %d entries in %.1f s (%.0f per minute; convert '
               '%.1f s, time %.1f s), %d/%d present', path, done, seconds,
               report.entries_per_minute, convert_s, time_s, present + done, len(needed))
  return report
