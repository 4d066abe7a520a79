r"""Exports an architecture to SavedModel + TFLite and reports params, MACs, parity and latency.

  python -m launch.export_tflite --arch=mobilenet_v2 --output_dir=/tmp/mbv2
  python -m launch.export_tflite --search_space=proxylessnas --arch=random:3 \
      --image_size=32 --num_classes=10 --quantize=int8 --dataset=digits --output_dir=/tmp/r3

Writes OUTPUT_DIR/model.tflite, arch.json and summary.json, and prints the summary.
"""

from absl import flags

from launch import common

FLAGS = flags.FLAGS
flags.DEFINE_string('arch', None, 'Reference name, architecture string, JSON path or random:SEED.')
flags.DEFINE_string('search_space', '', 'Space of --arch (not needed for references and JSON).')
flags.DEFINE_string('output_dir', None, 'Where to write model.tflite, arch.json, summary.json.')
flags.DEFINE_integer('image_size', 224, 'Square input size.')
flags.DEFINE_integer('num_classes', 1000, 'Number of classes.')
flags.DEFINE_enum('quantize', 'none', ['none', 'int8'], 'Float32 or full-integer int8.')
flags.DEFINE_string('dataset', 'digits', 'Real images for int8 calibration (name or path).')
flags.DEFINE_string('data_dir', '', 'tfds data directory.')
flags.DEFINE_string('weights', '', 'Optional Keras weights file, e.g. from launch.train.')
flags.DEFINE_integer('num_threads', 1, 'LiteRT interpreter threads for the latency.')
flags.DEFINE_bool('saved_model', True, 'Also write OUTPUT_DIR/saved_model.')
flags.DEFINE_bool('recalibrate_bn', True, 'Without --weights, fit batch-norm statistics on '
                  '32 real images of --dataset and 32 uniform-noise images before export.')
flags.DEFINE_bool('accept_parity_error', False, 'Write the export even when the float TFLite '
                  'misses Keras by more than 1e-4 absolute and 1e-5 relative.')
flags.DEFINE_integer('seed', 0, 'Seed of the random parity and latency inputs.')
flags.DEFINE_string('latency_table', '', 'Optional latency table: adds its prediction '
                    '(predicted_latency_ms) to summary.json.')
flags.mark_flags_as_required(['arch', 'output_dir'])

_PRINTED = ('search_space', 'arch', 'image_size', 'quantize', 'params', 'macs', 'latency_ms',
            'latency_p10_ms', 'latency_p90_ms', 'predicted_latency_ms', 'tflite_max_abs_diff',
            'tflite_max_rel_diff', 'int8_top1_agreement',
            'tflite_bytes', 'interpreter_backend', 'num_threads', 'tflite_path')


def main(unused_argv):
  from tunas_tf.export import from_arch  # pylint: disable=g-import-not-at-top
  config = from_arch.ExportConfig(
      arch=FLAGS.arch, search_space=FLAGS.search_space, image_size=FLAGS.image_size,
      num_classes=FLAGS.num_classes, quantize=FLAGS.quantize, dataset=FLAGS.dataset,
      data_dir=FLAGS.data_dir, weights=FLAGS.weights, num_threads=FLAGS.num_threads,
      saved_model=FLAGS.saved_model, recalibrate_bn=FLAGS.recalibrate_bn,
      seed=FLAGS.seed, latency_table=FLAGS.latency_table,
      accept_parity_error=FLAGS.accept_parity_error)
  summary = from_arch.export_architecture(config, FLAGS.output_dir)
  print(from_arch.format_summary(summary, _PRINTED))


if __name__ == '__main__':
  common.run(main, resumable=False)
