"""Timing .tflite models with LiteRT: rounds of fresh interpreters, held back while the host
is busy.

Every latency of a table (its units and the whole architectures that calibrate and validate it)
is measured here with the same protocol (`ProfileConfig`: threads, warm-up, timed runs,
instances): `config.instances` rounds, each round one fresh interpreter per model with the
models in a new random order, and the fastest run kept (`summarize`).

Why the minimum over rounds: on the shared x86 host other tenants slow everything down, and
some interpreter instances ran the same model 1.5-1.8x slower for their whole life (XNNPACK's
7x7 depthwise kernels most). Why the guard: slowdowns came in spells of 10-20 s (one batch of
8 calibration models all measured 1.85x slow, in all 5 rounds), longer than a round, so a
`QuietGuard` times a probe before and after every round, waits while it is slower than its
fastest, and repeats a round after which it is slow. The probe is ~1 ms of numpy matrix
products, not a small unit: the fastest of ten 6-us stem runs found an idle moment even while
the host was busy and 1.6-ms models ran 10-20 % slower; a 1-ms probe read 0.94 ms quiet and
1.2-1.4 ms in the same spells.
"""

import dataclasses
import random
import time
from typing import List, Sequence, Tuple

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


_PROBE = np.random.default_rng(0).standard_normal((256, 256)).astype(np.float32)


def probe_ms(repeats: int = 3) -> float:
  """Fastest of `repeats` timings of 5 float32 256x256 matrix products (~1 ms on a quiet core)."""
  best = float('inf')
  for _ in range(repeats):
    start = time.perf_counter()
    for _ in range(5):
      _PROBE @ _PROBE  # pylint: disable=pointless-statement
    best = min(best, (time.perf_counter() - start) * 1e3)
  return best


@dataclasses.dataclass
class QuietGuard:
  """Holds timing back while the host runs `probe_ms` slower than its fastest so far.

  Attributes:
    tolerance: the host counts as busy while the probe is this much slower than its best.
    max_wait_s: give up waiting after this long (log it, and take the current speed as the
      new best).
    best_ms: the fastest probe so far; start it at the probe of the table's build
      (`probe_best_of`) to time architectures only when the host is as quiet as when the
      table was built (timing pinned alike).
    floor_ms: the fastest probe this guard has seen (not raised when it adopts a slower speed):
      `clean` judges against it.
    last_ms, waited_s, repeated_rounds, busy_rounds: what the guard saw and did.
  """
  tolerance: float = 0.1
  max_wait_s: float = 30.0
  best_ms: float = float('inf')
  floor_ms: float = float('inf')
  last_ms: float = float('inf')
  waited_s: float = 0.0
  repeated_rounds: int = 0
  busy_rounds: int = 0

  def quiet(self) -> bool:
    """Probes the host once; whether the probe ran within `tolerance` of its fastest."""
    self.last_ms = probe_ms()
    self.best_ms = min(self.best_ms, self.last_ms)
    self.floor_ms = min(self.floor_ms, self.last_ms)
    return self.last_ms <= self.best_ms * (1.0 + self.tolerance)

  def clean(self) -> bool:
    """Whether the last probe ran within `tolerance` of the fastest this guard has seen (a
    round can pass `quiet` at an adopted, busy speed and still not be clean)."""
    return self.last_ms <= self.floor_ms * (1.0 + self.tolerance)

  def wait(self) -> None:
    """Returns once the probe runs at its usual speed (or after `max_wait_s`)."""
    start = time.monotonic()
    while not self.quiet():
      if time.monotonic() - start > self.max_wait_s:
        self.busy_rounds += 1
        logging.warning('The host stayed busy for %.0f s (probe > %.0f%% slower than its '
                        'fastest, %.4f ms): timing anyway, and taking its speed now (%.4f ms) '
                        'as the new normal', self.max_wait_s, 100 * self.tolerance,
                        self.best_ms, self.last_ms)
        self.best_ms = self.last_ms  # A lasting change (another host?) must not stall us.
        break
      time.sleep(0.5)
    self.waited_s += time.monotonic() - start

  def summary(self) -> dict:
    return {'probe_best_ms': self.best_ms, 'waited_s': round(self.waited_s, 1),
            'repeated_rounds': self.repeated_rounds, 'busy_rounds': self.busy_rounds,
            'tolerance': self.tolerance}


def _round(contents: Sequence[bytes], config, seed: int, rng: random.Random) -> List[np.ndarray]:
  runs: List[np.ndarray] = [np.empty(0)] * len(contents)
  order = list(range(len(contents)))
  rng.shuffle(order)
  for i in order:
    runs[i] = _time_once(contents[i], config, seed)
  return runs


def time_models_checked(contents: Sequence[bytes], config, seed: int = 0,
                        guard: QuietGuard = None) -> Tuple[List[Entry], bool]:
  """Times .tflite models with the protocol of `config` (see the module docstring).

  Args:
    contents: the models.
    config: a `ProfileConfig` (threads, warm-up, runs, instances = rounds).
    seed: seed of the inputs and of the order within rounds.
    guard: when given, every round waits for a quiet host and is repeated (up to 3 times) when
      the host turned busy during it.

  Returns:
    One entry per model, and whether some round ended with the host clean (`QuietGuard.clean`;
    always True without a guard). False: every round ran at a busy speed the guard adopted
    after waiting in vain, so the entries are likely slow.
  """
  runs: List[List[np.ndarray]] = [[] for _ in contents]
  rng = random.Random(seed)
  quiet = guard is None  # A quiet check after a round also clears the next one to start.
  clean = guard is None
  for round_index in range(config.instances):
    for attempt in range(_ROUND_ATTEMPTS):
      if not quiet:
        guard.wait()
      result = _round(contents, config, seed + round_index, rng)
      quiet = guard is None or guard.quiet()
      if quiet or attempt == _ROUND_ATTEMPTS - 1:
        break
      guard.repeated_rounds += 1
    clean = clean or guard.clean()
    for i, r in enumerate(result):
      runs[i].append(r)
  return [summarize(r) for r in runs], clean


def time_models(contents: Sequence[bytes], config, seed: int = 0,
                guard: QuietGuard = None) -> List[Entry]:
  """The entries of `time_models_checked`."""
  return time_models_checked(contents, config, seed, guard)[0]


def faster(old: Entry, new: Entry, statistic: str) -> Entry:
  """The entry with the lower latency under `statistic`."""
  return new if new.value(statistic) < old.value(statistic) else old


def time_model(content: bytes, config, seed: int = 0, guard: QuietGuard = None) -> Entry:
  """Times one .tflite model with the protocol of `config` (see `time_models`)."""
  return time_models([content], config, seed, guard)[0]


def probe_best_of(header: dict) -> float:
  """The fastest probe a table's build recorded (`header.quiet_guard`); inf when none."""
  return float((header.get('quiet_guard') or {}).get('probe_best_ms', float('inf')))
