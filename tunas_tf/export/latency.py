"""Wall-clock latency of a .tflite model on the host CPU.

Only `invoke()` is timed: inputs are written once before the loop, because copying inputs
and reading outputs are not part of the on-device cost a latency table should model
(§4.6 of docs/anchors/latency.md: Python overhead around invoke() is ~0.5 µs). Warm-up runs
come first so that XNNPACK weight packing and cold caches stay out of the statistics.
The function is generic (any number of inputs, any shape/dtype) so the latency-table
profiler measures single blocks with exactly the same loop as whole models.
"""

import dataclasses
import time
from typing import Optional, Sequence

import numpy as np
from absl import logging

from tunas_tf.errors import UserError
from tunas_tf.export.interpreter import DEFAULT_BACKENDS, make_interpreter


@dataclasses.dataclass(frozen=True)
class LatencyStats:
  """Summary of timed `invoke()` calls.

  Attributes:
    median_ms: median latency in milliseconds (the number to report).
    p10_ms: 10th percentile in milliseconds.
    p90_ms: 90th percentile in milliseconds.
    n: number of timed runs.
    backend: interpreter backend that ran the model.
    num_threads: interpreter thread count.
    min_ms: the fastest run in milliseconds (what host latency tables hold by default).
  """
  median_ms: float
  p10_ms: float
  p90_ms: float
  n: int
  backend: str = ''
  num_threads: int = 1
  min_ms: Optional[float] = None

  def to_dict(self) -> dict:
    """Returns the fields as a JSON-serializable dict."""
    return dataclasses.asdict(self)


def random_input(shape: Sequence[int], dtype: np.dtype, rng: np.random.Generator) -> np.ndarray:
  """Returns random data of `shape` and `dtype` for timing (values do not affect speed).

  Floats are standard normal; 8/16-bit integers (quantized tensors) span their full range;
  wider integers (indices, sizes) are drawn from [0, 2) so that they stay valid; bools are
  random.
  """
  dtype = np.dtype(dtype)
  shape = tuple(int(d) for d in shape)
  if np.issubdtype(dtype, np.floating):
    return rng.standard_normal(shape).astype(dtype)
  if dtype == np.bool_:
    return rng.integers(0, 2, size=shape).astype(np.bool_)
  if np.issubdtype(dtype, np.integer):
    info = np.iinfo(dtype)
    if info.bits <= 16:
      return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
    return rng.integers(0, 2, size=shape).astype(dtype)
  raise UserError(f'Cannot make random input of dtype {dtype!r}; supported: floating, '
                  'integer and bool tensors')


def _check_timing_args(warmup: int, min_runs: int, min_seconds: float) -> None:
  if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
    raise UserError(f'warmup must be an integer >= 0; got {warmup!r}')
  if isinstance(min_runs, bool) or not isinstance(min_runs, int) or min_runs < 1:
    raise UserError(f'min_runs must be an integer >= 1; got {min_runs!r}')
  if not isinstance(min_seconds, (int, float)) or not min_seconds >= 0:
    raise UserError(f'min_seconds must be a number >= 0; got {min_seconds!r}')


def time_invocations(interpreter, warmup: int, min_runs: int, min_seconds: float) -> np.ndarray:
  """Times `interpreter.invoke()`; inputs must already be set.

  Args:
    interpreter: an allocated TFLite interpreter with its inputs written.
    warmup: untimed runs first.
    min_runs: at least this many timed runs.
    min_seconds: and keep running until this much time has been spent in the timed loop.

  Returns:
    Per-run latencies in nanoseconds (int64), in run order.
  """
  _check_timing_args(warmup, min_runs, min_seconds)
  for _ in range(warmup):
    interpreter.invoke()
  min_ns = int(min_seconds * 1e9)
  times = []
  loop_start = time.perf_counter_ns()
  while len(times) < min_runs or time.perf_counter_ns() - loop_start < min_ns:
    start = time.perf_counter_ns()
    interpreter.invoke()
    times.append(time.perf_counter_ns() - start)
  return np.asarray(times, dtype=np.int64)


def measure_latency(model_content: bytes,
                    num_threads: int = 1,
                    warmup: int = 10,
                    min_runs: int = 50,
                    min_seconds: float = 0.3,
                    seed: int = 0,
                    backends: Sequence[str] = DEFAULT_BACKENDS,
                    use_xnnpack: bool = True) -> LatencyStats:
  """Measures the latency of one inference of a .tflite model.

  Args:
    model_content: the .tflite model bytes (any inputs; random data of the right shape
      and dtype is written to each input once, outside the timed loop).
    num_threads: interpreter threads (explicit; 1 matches single-big-core phone tables).
    warmup: untimed runs before timing.
    min_runs: minimum number of timed runs.
    min_seconds: minimum total time of the timed loop, in seconds.
    seed: seed of the random input data.
    backends: interpreter backends to try, in order (see `make_interpreter`).
    use_xnnpack: whether to keep the default XNNPACK delegate.

  Returns:
    LatencyStats with median/p10/p90 in milliseconds and the number of timed runs.

  Raises:
    UserError: for invalid thread counts or timing arguments.
  """
  _check_timing_args(warmup, min_runs, min_seconds)
  loaded = make_interpreter(model_content, num_threads=num_threads, backends=backends,
                            use_xnnpack=use_xnnpack)
  interpreter = loaded.interpreter
  rng = np.random.default_rng(seed)
  for detail in interpreter.get_input_details():
    interpreter.set_tensor(detail['index'], random_input(detail['shape'], detail['dtype'], rng))
  times_ms = time_invocations(interpreter, warmup, min_runs, min_seconds) / 1e6
  p10, median, p90 = np.percentile(times_ms, [10, 50, 90])
  stats = LatencyStats(median_ms=float(median), p10_ms=float(p10), p90_ms=float(p90),
                       n=int(times_ms.size), backend=loaded.backend, num_threads=num_threads,
                       min_ms=float(np.min(times_ms)))
  logging.info('Latency: median %.4f ms (p10 %.4f, p90 %.4f, n=%d, threads=%d, %s)',
               stats.median_ms, stats.p10_ms, stats.p90_ms, stats.n, num_threads,
               loaded.backend)
  return stats
