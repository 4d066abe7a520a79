r"""Trains one architecture stand-alone; re-running the same command resumes.

  python -m launch.train --search_space=proxylessnas --arch=proxylessnas_mobile \
      --dataset=digits --image_size=32 --epochs=10 --output_dir=/tmp/train

Writes checkpoints (OUTPUT_DIR/backup), TensorBoard logs (OUTPUT_DIR/tensorboard), the final
weights and OUTPUT_DIR/summary.json with the final validation accuracy.
"""

from absl import flags

from launch import common

FLAGS = flags.FLAGS
flags.DEFINE_string('search_space', 'proxylessnas', 'Registered search space.')
flags.DEFINE_string('arch', 'proxylessnas_mobile',
                    'Reference name, architecture string, JSON path or random:SEED.')
flags.DEFINE_string('dataset', 'digits', 'Dataset name (embedded or tfds) or image-folder path.')
flags.DEFINE_string('data_dir', '', 'tfds data directory.')
flags.DEFINE_string('output_dir', None, 'Run directory (checkpoints, logs, summary).')
flags.DEFINE_integer('image_size', 32, 'Square input size.')
flags.DEFINE_integer('batch_size', 64, 'Training batch size.')
flags.DEFINE_integer('epochs', 10, 'Training epochs.')
flags.DEFINE_enum('optimizer', 'rmsprop', ['rmsprop', 'sgd'], 'Optimizer.')
flags.DEFINE_float('base_learning_rate', 0.165, 'Peak learning rate per 256 examples.')
flags.DEFINE_float('warmup_fraction', 0.025, 'Fraction of steps of linear warmup.')
flags.DEFINE_float('weight_decay', None, 'L2 weight decay (default: the space family\'s '
                   'reference value, TuNAS 4e-5, NB201/DARTS 5e-4).')
flags.DEFINE_float('label_smoothing', 0.1, 'Label smoothing.')
flags.DEFINE_float('dropout_rate', 0.0, 'Dropout before the classifier.')
flags.DEFINE_enum('train_split', 'train', ['train', 'search_train'], 'Training split.')
flags.DEFINE_enum('eval_split', 'test', ['test', 'search_valid'], 'Validation split.')
flags.DEFINE_integer('seed', 0, 'Random seed.')
flags.DEFINE_integer('max_steps_per_epoch', 0, 'Cap on steps per epoch (0: full epochs).')
flags.mark_flag_as_required('output_dir')


def main(unused_argv):
  from tunas_tf.training import config as config_lib  # pylint: disable=g-import-not-at-top
  from tunas_tf.training import standalone  # pylint: disable=g-import-not-at-top
  names = [f.name for f in config_lib.TrainConfig.__dataclass_fields__.values()]
  config = config_lib.TrainConfig(**{name: FLAGS[name].value for name in names})
  summary = standalone.train(config, FLAGS.output_dir)
  print(f"val_accuracy ({summary['eval_split']}): {summary['val_accuracy']:.4f}  "
        f"params: {summary['params']}  macs: {summary['macs']}  arch: {summary['arch']}")


if __name__ == '__main__':
  common.run(main)
