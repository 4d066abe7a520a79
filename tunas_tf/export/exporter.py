"""One call that exports a trained classifier and reports how faithful and fast it is."""

import dataclasses
import os
from typing import Any, Optional, Sequence

from absl import logging

from tunas_tf.errors import UserError
from tunas_tf.export.interpreter import check_num_threads
from tunas_tf.export.latency import measure_latency
from tunas_tf.export.parity import float_parity_report, int8_agreement
from tunas_tf.export.saved_model import export_saved_model
from tunas_tf.export.tflite import (calibration_images, check_quantize, convert_to_tflite,
                                    model_input_shape, write_tflite)

TFLITE_NAME = 'model.tflite'
FLOAT_TFLITE_NAME = 'model_float.tflite'
SAVED_MODEL_NAME = 'saved_model'


@dataclasses.dataclass(frozen=True)
class ExportSummary:
  """What `export_model` wrote and measured (params/MACs are added by the caller).

  Attributes:
    tflite_path: `output_dir/model.tflite`, in the requested quantization.
    quantize: 'none' or 'int8'.
    tflite_bytes: size of `model.tflite`.
    tflite_max_abs_diff: max |Keras - float TFLite| on random inputs.
    tflite_max_rel_diff: the same divided by the largest |Keras logit|.
    int8_top1_agreement: top-1 agreement of int8 with float TFLite on real images, or
      None when not quantized.
    latency_ms: median latency of `model.tflite` in milliseconds.
    latency_p10_ms: 10th percentile latency.
    latency_p90_ms: 90th percentile latency.
    latency_runs: number of timed runs.
    latency_min_ms: the fastest run (what host latency tables hold by default).
    interpreter_backend: the TFLite interpreter backend used for all checks.
    num_threads: interpreter threads used for the latency.
    float_tflite_path: `output_dir/model_float.tflite` when int8, else None.
    saved_model_path: `output_dir/saved_model` when requested, else None.
  """
  tflite_path: str
  quantize: str
  tflite_bytes: int
  tflite_max_abs_diff: float
  tflite_max_rel_diff: float
  int8_top1_agreement: Optional[float]
  latency_ms: float
  latency_p10_ms: float
  latency_p90_ms: float
  latency_runs: int
  interpreter_backend: str
  num_threads: int
  float_tflite_path: Optional[str] = None
  saved_model_path: Optional[str] = None
  latency_min_ms: Optional[float] = None

  def to_dict(self) -> dict:
    """Returns the fields as a JSON-serializable dict."""
    return dataclasses.asdict(self)


# Float TFLite must match Keras within either bound: absolute, or relative to the largest logit
# (round-off grows with the logits' scale).
PARITY_TOLERANCE = 1e-4
PARITY_REL_TOLERANCE = 1e-5


def check_parity(parity: dict) -> None:
  """A UserError when a `float_parity_report` misses both bounds."""
  if parity['max_abs_diff'] <= PARITY_TOLERANCE or parity['max_rel_diff'] <= PARITY_REL_TOLERANCE:
    return
  raise UserError(
      f"float TFLite differs from Keras by up to {parity['max_abs_diff']:.3g} (relative to the "
      f"largest logit {parity['max_abs_logit']:.3g}: {parity['max_rel_diff']:.3g}), beyond "
      f'{PARITY_TOLERANCE:g} absolute and {PARITY_REL_TOLERANCE:g} relative; nothing was written. '
      'An untrained network needs fitted batch-norm statistics (--recalibrate_bn) or trained '
      '--weights; pass --accept_parity_error to write it anyway')


def export_model(model: Any,
                 output_dir: str,
                 quantize: str = 'none',
                 representative_data: Any = None,
                 num_threads: int = 1,
                 saved_model: bool = False,
                 agreement_images: Any = None,
                 parity_samples: int = 8,
                 seed: int = 0,
                 warmup: int = 10,
                 min_runs: int = 50,
                 min_seconds: float = 0.3,
                 input_shape: Optional[Sequence[int]] = None,
                 accept_parity_error: bool = False) -> ExportSummary:
  """Exports `model` to `output_dir` and checks parity and latency.

  Writes `output_dir/model.tflite` in the requested quantization; for 'int8' also keeps
  the float conversion as `output_dir/model_float.tflite`, against which int8 top-1
  agreement is measured; optionally writes a SavedModel to `output_dir/saved_model`.
  Existing files of the same names are replaced (atomically); a `model_float.tflite` left
  by an earlier int8 export is removed when exporting float.

  Args:
    model: a keras.Model mapping float32 [N, H, W, C] images to logits.
    output_dir: destination directory (created if missing).
    quantize: 'none' or 'int8'.
    representative_data: real preprocessed images for int8 calibration (required for
      'int8'); see `calibration_images` for accepted forms.
    num_threads: interpreter threads for the latency measurement (positive).
    saved_model: also write a SavedModel.
    agreement_images: images for the int8 top-1 agreement; defaults to the calibration
      images (pass held-out images for an unbiased figure).
    parity_samples: random inputs for the float parity check.
    seed: seed of the random parity and latency inputs.
    warmup: untimed latency runs.
    min_runs: minimum timed latency runs.
    min_seconds: minimum time of the timed latency loop.
    input_shape: optional (H, W, C), inferred from the model when omitted.
    accept_parity_error: write the export even when the float TFLite misses Keras by more
      than PARITY_TOLERANCE (absolute) and PARITY_REL_TOLERANCE (relative to the largest logit).

  Returns:
    An ExportSummary.

  Raises:
    UserError: for invalid arguments (unknown quantization, missing calibration data,
      non-positive num_threads, ...), or a float TFLite that misses Keras (unless
      `accept_parity_error`), before anything is written.
  """
  check_quantize(quantize)
  check_num_threads(num_threads)
  shape = model_input_shape(model, input_shape)
  calibration = None
  if quantize == 'int8':
    calibration = calibration_images(representative_data, shape)
    agreement_images = (calibration if agreement_images is None else
                        calibration_images(agreement_images, shape))
  float_bytes = convert_to_tflite(model, 'none', input_shape=shape)
  parity = float_parity_report(model, float_bytes, num_samples=parity_samples, seed=seed,
                               input_shape=shape)
  if not accept_parity_error:
    check_parity(parity)
  os.makedirs(output_dir, exist_ok=True)
  tflite_path = os.path.join(output_dir, TFLITE_NAME)
  float_path, agreement = None, None
  if quantize == 'int8':
    content = convert_to_tflite(model, 'int8', calibration, input_shape=shape)
    float_path = write_tflite(float_bytes, os.path.join(output_dir, FLOAT_TFLITE_NAME))
    agreement = int8_agreement(float_bytes, content, agreement_images)
  else:
    content = float_bytes
    # A float model_float.tflite left by an earlier int8 export would contradict this one.
    stale = os.path.join(output_dir, FLOAT_TFLITE_NAME)
    if os.path.exists(stale):
      os.remove(stale)
  write_tflite(content, tflite_path)
  stats = measure_latency(content, num_threads=num_threads, warmup=warmup, min_runs=min_runs,
                          min_seconds=min_seconds, seed=seed)
  saved_model_path = None
  if saved_model:
    saved_model_path = export_saved_model(model, os.path.join(output_dir, SAVED_MODEL_NAME),
                                          input_shape=shape, overwrite=True)
  summary = ExportSummary(
      tflite_path=tflite_path, quantize=quantize, tflite_bytes=len(content),
      tflite_max_abs_diff=parity['max_abs_diff'],
      tflite_max_rel_diff=parity['max_rel_diff'], int8_top1_agreement=agreement,
      latency_ms=stats.median_ms, latency_p10_ms=stats.p10_ms, latency_p90_ms=stats.p90_ms,
      latency_runs=stats.n, interpreter_backend=stats.backend, num_threads=num_threads,
      float_tflite_path=float_path, saved_model_path=saved_model_path,
      latency_min_ms=stats.min_ms)
  logging.info('Export summary: %s', summary.to_dict())
  return summary
