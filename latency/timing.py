"""Timing .tflite models with LiteRT: rounds of fresh interpreters, held back while the host is busy.

Every latency of a table (its units and the whole architectures that calibrate and validate it)
is measured here with the same protocol (`ProfileConfig`: threads, warm-up, timed runs,
instances): `config.instances` rounds, each round one fresh interpreter per model with the
models in a new random order, and the fastest run kept (`summarize`).

Why the minimum over rounds: on the shared x86 host other tenants slow everything down, and
some interpreter instances ran the same model 1.5-1.8x slower for their whole life (XNNPACK's
7x7 depthwise kernels most). Why the guard: slowdowns came in spells of 10-20 s (one batch of
8 calibration models all measured 1.85x slow, in all 5 rounds), longer than a round, so a
`QuietGuard` times a reference model before and after every round, waits while it is slower
than its fastest, and repeats a round after which it is slow.
"""

import dataclasses
import random
import time
from typing import List, Sequence

import numpy as np
from absl import logging

from latency.table import Entry
from tunas_tf.export.interpreter import make_interpreter
from tunas_tf.export.latency import random_input, time_invocations

_ROUND_ATTEMPTS = 3  # A round is measured at most this often before its result is kept.


def prepared_interpreter(content: bytes, config, seed: int = 0):
  """An allocated interpreter for `content` with random inputs written (outside the timing)."""
  loaded = make_interpreter(content, num_threads=config.threads, use_xnnpack=config.use_xnnpack)
  interpreter = loaded.interpreter
  rng = np.random.default_rng(seed)
  for detail in interpreter.get_input_details():
    interpreter.set_tensor(detail['index'], random_input(detail['shape'], detail['dtype'], rng))
  return interpreter


def _time_once(content: bytes, config, seed: int) -> np.ndarray:
  """Timed runs (ms) of one fresh interpreter."""
  interpreter = prepared_interpreter(content, config, seed)
  runs = time_invocations(interpreter, config.warmup, config.min_runs, config.min_seconds) / 1e6
  del interpreter
  return runs


def summarize(runs_ms: Sequence[np.ndarray]) -> Entry:
  """One entry from the timed runs of each interpreter instance (ms).

  `min_ms` is the fastest run of any instance; median/p10/p90 pool every run.
  """
  pooled = np.concatenate([np.asarray(r, dtype=np.float64) for r in runs_ms])
  p10, median, p90 = np.percentile(pooled, [10, 50, 90])
  return Entry(float(median), float(p10), float(p90), int(pooled.size), min_ms=float(pooled.min()))


@dataclasses.dataclass
class QuietGuard:
  """Holds timing back while a reference model runs slower than its fastest so far.

  Attributes:
    content: the reference .tflite (a small unit: timing it costs milliseconds).
    config: the timing protocol (`ProfileConfig`).
    tolerance: the host counts as busy while the reference is this much slower than its best.
    max_wait_s: give up waiting after this long (log it, and take the current speed as the
      new best).
    best_ms: the fastest reference latency so far; start it at the table's own reference
      latency (`reference_ms_of`) to time architectures only when the host is as quiet as
      when the table was built.
    last_ms, waited_s, repeated_rounds, busy_rounds: what the guard saw and did.
  """
  content: bytes
  config: object
  tolerance: float = 0.1
  max_wait_s: float = 30.0
  best_ms: float = float('inf')
  last_ms: float = float('inf')
  waited_s: float = 0.0
  repeated_rounds: int = 0
  busy_rounds: int = 0

  def quiet(self) -> bool:
    """Times the reference once; whether it ran within `tolerance` of its fastest."""
    self.last_ms = float(np.min(_time_once(self.content, self.config, 0)))
    self.best_ms = min(self.best_ms, self.last_ms)
    return self.last_ms <= self.best_ms * (1.0 + self.tolerance)

  def wait(self) -> None:
    """Returns once the reference runs at its usual speed (or after `max_wait_s`)."""
    start = time.monotonic()
    while not self.quiet():
      if time.monotonic() - start > self.max_wait_s:
        self.busy_rounds += 1
        logging.warning('The host stayed busy for %.0f s (reference unit > %.0f%% slower than '
                        'its fastest, %.4f ms): timing anyway, and taking its speed now (%.4f '
                        'ms) as the new normal', self.max_wait_s, 100 * self.tolerance,
                        self.best_ms, self.last_ms)
        self.best_ms = self.last_ms  # A lasting change (another host?) must not stall us.
        break
      time.sleep(0.5)
    self.waited_s += time.monotonic() - start

  def summary(self) -> dict:
    return {'reference_best_ms': self.best_ms, 'waited_s': round(self.waited_s, 1),
            'repeated_rounds': self.repeated_rounds, 'busy_rounds': self.busy_rounds,
            'tolerance': self.tolerance}


def _round(contents: Sequence[bytes], config, seed: int, rng: random.Random) -> List[np.ndarray]:
  runs: List[np.ndarray] = [np.empty(0)] * len(contents)
  order = list(range(len(contents)))
  rng.shuffle(order)
  for i in order:
    runs[i] = _time_once(contents[i], config, seed)
  return runs


def time_models(contents: Sequence[bytes], config, seed: int = 0,
                guard: QuietGuard = None) -> List[Entry]:
  """Times .tflite models with the protocol of `config` (see the module docstring).

  Args:
    contents: the models.
    config: a `ProfileConfig` (threads, warm-up, runs, instances = rounds).
    seed: seed of the inputs and of the order within rounds.
    guard: when given, every round waits for a quiet host and is repeated (up to 3 times) when
      the host turned busy during it.
  """
  runs: List[List[np.ndarray]] = [[] for _ in contents]
  rng = random.Random(seed)
  for round_index in range(config.instances):
    for attempt in range(_ROUND_ATTEMPTS):
      if guard is not None:
        guard.wait()
      result = _round(contents, config, seed + round_index, rng)
      if guard is None or guard.quiet() or attempt == _ROUND_ATTEMPTS - 1:
        break
      guard.repeated_rounds += 1
    for i, r in enumerate(result):
      runs[i].append(r)
  return [summarize(r) for r in runs]


def time_model(content: bytes, config, seed: int = 0, guard: QuietGuard = None) -> Entry:
  """Times one .tflite model with the protocol of `config` (see `time_models`)."""
  return time_models([content], config, seed, guard)[0]


def reference_ms_of(header: dict, reference_key: str, statistic: str) -> float:
  """The fastest latency of `reference_key` a table's build recorded (its drift re-timings);
  inf when the table re-timed another unit or another statistic."""
  drift = header.get('drift') or {}
  values = drift.get('latency_ms') or []
  if drift.get('reference_key') != reference_key or drift.get('statistic') != statistic:
    return float('inf')
  return float(min(values)) if values else float('inf')
