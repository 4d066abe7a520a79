"""Choosing and creating a TFLite interpreter (LiteRT first).

`ai_edge_litert` is the maintained LiteRT package; `tflite_runtime` is its frozen
predecessor (2.14, 2023); `tf.lite.Interpreter` is deprecated in favour of LiteRT but still
ships with TensorFlow 2.21. The backends are tried in a caller-given order so that the
choice is explicit, testable, and reported with every measurement.

This module imports TensorFlow only when the 'tensorflow' backend is actually used, so a
latency profiler can run on a machine that only has `ai-edge-litert`.
"""

import dataclasses
import importlib
from typing import Any, Sequence

from absl import logging

from tunas_tf.errors import UserError, unknown_name

# Backend name -> module that holds `Interpreter` and `OpResolverType`.
_BACKEND_MODULES = {
    'ai_edge_litert': 'ai_edge_litert.interpreter',
    'tflite_runtime': 'tflite_runtime.interpreter',
    # The same class as `tf.lite.Interpreter`; this module also defines OpResolverType.
    'tensorflow': 'tensorflow.lite.python.interpreter',
}
DEFAULT_BACKENDS = ('ai_edge_litert', 'tflite_runtime', 'tensorflow')


def list_backends() -> list[str]:
  """Returns the names of all known interpreter backends, in default preference order."""
  return list(DEFAULT_BACKENDS)


@dataclasses.dataclass(frozen=True)
class LoadedInterpreter:
  """An allocated interpreter together with how it was made.

  Attributes:
    interpreter: the backend's `Interpreter`, with tensors allocated.
    backend: the backend name that provided it (one of `list_backends()`).
    num_threads: the thread count it was created with.
    use_xnnpack: whether the default XNNPACK delegate was left enabled.
  """
  interpreter: Any
  backend: str
  num_threads: int
  use_xnnpack: bool


def check_num_threads(num_threads: int) -> int:
  """Returns `num_threads` if it is a positive int, else raises UserError."""
  if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
    raise UserError(f'num_threads must be a positive integer (1 for single-threaded '
                    f'latency); got {num_threads!r}')
  return num_threads


def _import_backend(names: Sequence[str]) -> tuple[str, Any]:
  """Returns (name, module) of the first importable backend in `names`."""
  if isinstance(names, str):
    names = (names,)
  if not names:
    raise UserError(f'backends must name at least one of {list_backends()}; got {names!r}')
  for name in names:
    if name not in _BACKEND_MODULES:
      raise unknown_name('interpreter backend', name, _BACKEND_MODULES)
  for name in names:
    try:
      return name, importlib.import_module(_BACKEND_MODULES[name])
    except ImportError as e:
      logging.info('TFLite interpreter backend %s unavailable (%s); trying the next one',
                   name, e)
  raise UserError(f'No TFLite interpreter backend could be imported; tried {list(names)}. '
                  'Install ai-edge-litert (pip install ai-edge-litert).')


def make_interpreter(model_content: bytes,
                     num_threads: int = 1,
                     backends: Sequence[str] = DEFAULT_BACKENDS,
                     use_xnnpack: bool = True) -> LoadedInterpreter:
  """Creates an interpreter for a .tflite flatbuffer and allocates its tensors.

  Args:
    model_content: the .tflite model bytes.
    num_threads: CPU threads for the interpreter; explicit because tool defaults differ
      (LiteRT Python: 1, C++ benchmark_model: -1 = platform default).
    backends: backend names to try, in order; the first importable one is used.
    use_xnnpack: keep the default XNNPACK delegate (True, as on phones); False selects
      the builtin kernels without default delegates.

  Returns:
    A LoadedInterpreter; `.backend` names the backend that was used.

  Raises:
    UserError: for a non-positive `num_threads`, an unknown backend name, empty model
      bytes, or when none of `backends` can be imported.
  """
  check_num_threads(num_threads)
  if not model_content:
    raise UserError(f'model_content must be non-empty .tflite bytes; got {model_content!r}')
  name, module = _import_backend(backends)
  kwargs = {}
  if not use_xnnpack:
    kwargs['experimental_op_resolver_type'] = (
        module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
  interpreter = module.Interpreter(
      model_content=bytes(model_content), num_threads=num_threads, **kwargs)
  interpreter.allocate_tensors()
  logging.info('TFLite interpreter: backend=%s num_threads=%d xnnpack=%s', name, num_threads,
               use_xnnpack)
  return LoadedInterpreter(interpreter=interpreter, backend=name, num_threads=num_threads,
                           use_xnnpack=use_xnnpack)
