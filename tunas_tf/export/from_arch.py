"""Export an architecture (reference, string, JSON or random) to TFLite with its figures."""

import dataclasses
import os
from typing import Optional

import numpy as np

from absl import logging

from tunas_tf import fileio
from tunas_tf import space as space_lib
from tunas_tf.errors import UserError
from tunas_tf.export.exporter import export_model
from tunas_tf.export.tflite import check_quantize


@dataclasses.dataclass(frozen=True)
class ExportConfig:
  """What `export_architecture` exports.

  Attributes:
    arch: a reference name, architecture string, JSON path or 'random:SEED'.
    search_space: the space of `arch` ('' when `arch` names a reference or a JSON file).
    image_size: square input size.
    num_classes: classifier width.
    quantize: 'none' (float32) or 'int8' (full-integer post-training quantization).
    dataset: real images for int8 calibration and agreement (a dataset name or path).
    data_dir: tfds data directory.
    weights: optional Keras weights file (e.g. `model.weights.h5` from launch.train).
    num_threads: LiteRT threads for the latency measurement.
    saved_model: also write a SavedModel.
    calibration_images: number of real images for int8 calibration.
    recalibrate_bn: without `weights`, fit the batch-norm statistics of the freshly built
      model on real images first (see `recalibrate_batch_norm`).
    seed: seed of random inputs.
    latency_table: optional latency table (latency/); adds its calibrated prediction
      `predicted_latency_ms` to the summary.
  """
  arch: str
  search_space: str = ''
  image_size: int = 224
  num_classes: int = 1000
  quantize: str = 'none'
  dataset: str = 'digits'
  data_dir: str = ''
  weights: str = ''
  num_threads: int = 1
  saved_model: bool = True
  calibration_images: int = 100
  recalibrate_bn: bool = True
  seed: int = 0
  latency_table: str = ''
  accept_parity_error: bool = False

  def __post_init__(self):
    check_quantize(self.quantize)
    if self.weights and not os.path.isfile(self.weights):
      raise UserError(f'Weights file {self.weights!r} does not exist')
    if self.calibration_images < 1:
      raise UserError(f'calibration_images must be >= 1; got {self.calibration_images!r}')


def _real_images(config: ExportConfig, split: str, num: int):
  from tunas_tf import data as data_lib  # Local: float export needs no dataset.
  dataset = data_lib.load_dataset(config.dataset, config.data_dir or None)
  return list(data_lib.representative_images(dataset, config.image_size, num, split=split))


def _predicted_latency(config: ExportConfig, arch) -> Optional[float]:
  """The latency table's prediction for `arch`, or None without --latency_table."""
  if not config.latency_table:
    return None
  import latency  # pylint: disable=g-import-not-at-top
  table = latency.LatencyTable.read(config.latency_table)
  table_classes = table.header['num_classes']
  if table_classes != config.num_classes:
    raise UserError(f'Latency table {config.latency_table!r} was built for num_classes='
                    f'{table_classes}, but the export has num_classes={config.num_classes}; '
                    f'pass --num_classes={table_classes} or a table built with '
                    f'--num_classes={config.num_classes}')
  model = latency.table_cost_model(table, arch.space, config.image_size, config.latency_table)
  return model.predict_ms(arch)


def _fit_untrained_batch_norm(model, config: ExportConfig) -> None:
  """Fits an untrained network's batch-norm statistics on 32 real images and 32 uniform-noise
  images (a seed apart from the parity inputs). Real images alone (digits: mostly black) left
  near-constant channels whose tiny variances blew the logits of the parity check's uniform
  inputs up to ~1e2-1e3 at 224 px; the noise keeps every input in pixel range well-scaled."""
  from tunas_tf.models.batch_norm import recalibrate_batch_norm  # pylint: disable=g-import-not-at-top
  real = np.concatenate(_real_images(config, 'train', 32))
  noise = np.random.default_rng(config.seed + 1).uniform(size=real.shape).astype(np.float32)
  recalibrate_batch_norm(model, np.concatenate([real, noise]))


def export_architecture(config: ExportConfig, output_dir: str) -> dict:
  """Builds, exports and measures `config.arch`; writes arch.json and summary.json."""
  from tunas_tf.models.factory import build_network, network_macs  # pylint: disable=g-import-not-at-top
  arch = space_lib.parse_architecture(config.arch, config.search_space or None)
  space = space_lib.get_space(arch.space)
  predicted = _predicted_latency(config, arch)  # Before the slow export: fail fast.
  model = build_network(space, arch, num_classes=config.num_classes,
                        image_size=config.image_size)
  if config.weights:
    fileio.load_weights(model, config.weights, 'pass the model.weights.h5 that launch.train '
                        'wrote for this same --arch, --image_size and --num_classes')
  elif config.recalibrate_bn:
    _fit_untrained_batch_norm(model, config)
  calibration = agreement = None
  if config.quantize == 'int8':
    calibration = _real_images(config, 'train', config.calibration_images)
    agreement = _real_images(config, 'test', config.calibration_images)
  logging.info('Exporting %s %s at %d px (%s)', arch.space, space.to_string(arch),
               config.image_size, config.quantize)
  result = export_model(model, output_dir, quantize=config.quantize,
                        representative_data=calibration, agreement_images=agreement,
                        num_threads=config.num_threads, saved_model=config.saved_model,
                        seed=config.seed, accept_parity_error=config.accept_parity_error)
  summary = {
      'search_space': arch.space, 'arch': space.to_string(arch), 'image_size': config.image_size,
      'num_classes': config.num_classes, 'quantize': config.quantize,
      'params': int(model.count_params()),
      'macs': network_macs(space, arch, config.image_size, config.num_classes),
      **result.to_dict(),
  }
  if predicted is not None:
    summary['predicted_latency_ms'] = predicted
  fileio.atomic_write_text(os.path.join(output_dir, 'arch.json'), space.to_json(arch))
  fileio.atomic_write_json(os.path.join(output_dir, 'summary.json'), summary)
  return summary


def format_summary(summary: dict, keys: Optional[tuple] = None) -> str:
  keys = keys or tuple(summary)
  return '\n'.join(f'{k:>22}: {summary[k]}' for k in keys if k in summary)
