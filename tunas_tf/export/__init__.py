"""tunas_tf.export: SavedModel and TFLite export, parity checks and latency measurement.

Typical use:

  summary = export_model(model, 'out/', quantize='int8', representative_data=images)
  print(summary.to_dict())
"""

from tunas_tf.export.exporter import ExportSummary, export_model
from tunas_tf.export.inference import predict, run_tflite
from tunas_tf.export.interpreter import (DEFAULT_BACKENDS, LoadedInterpreter, list_backends,
                                         make_interpreter)
from tunas_tf.export.latency import LatencyStats, measure_latency
from tunas_tf.export.parity import float_parity, float_parity_report, int8_agreement
from tunas_tf.export.saved_model import export_saved_model
from tunas_tf.export.tflite import (QUANTIZATIONS, calibration_images, convert_to_tflite,
                                    list_quantizations, model_input_shape, write_tflite)

__all__ = [
    'DEFAULT_BACKENDS', 'ExportSummary', 'LatencyStats', 'LoadedInterpreter', 'QUANTIZATIONS',
    'calibration_images', 'convert_to_tflite', 'export_model', 'export_saved_model',
    'float_parity', 'float_parity_report', 'int8_agreement', 'list_backends',
    'list_quantizations',
    'make_interpreter', 'measure_latency', 'model_input_shape', 'predict', 'run_tflite',
    'write_tflite',
]
