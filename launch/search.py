r"""Runs a TuNAS architecture search; re-running the same command resumes it.

  python -m launch.search --search_space=proxylessnas --dataset=digits --image_size=32 \
      --target_latency_ms=1.6 --cost_model=macs --steps=200 --batch_size=16 \
      --output_dir=/tmp/search

  python -m launch.search --search_space=proxylessnas --dataset=cifar10-jpg.tar.gz \
      --image_size=224 --target_latency_ms=84 --latency_table=pixel1.json \
      --strategy=mirrored --output_dir=/tmp/search

Writes OUTPUT_DIR/arch.json (the most likely architecture), summary.json, report.png,
metrics.jsonl, TensorBoard logs and checkpoints. `launch.train --arch=OUTPUT_DIR/arch.json`
then trains the result stand-alone.
"""

import dataclasses

from absl import flags

from launch import common

FLAGS = flags.FLAGS
flags.DEFINE_string('search_space', 'proxylessnas', 'Registered mobile search space.')
flags.DEFINE_string('dataset', 'digits', 'Dataset name (embedded or tfds) or image-folder path.')
flags.DEFINE_string('data_dir', '', 'tfds data directory.')
flags.DEFINE_integer('image_size', 32, 'Square input size.')
flags.DEFINE_float('target_latency_ms', None, 'Latency target T0 of the reward (ms).')
flags.DEFINE_enum('cost_model', 'table', ['table', 'macs'],
                  'Latency model: a measured table (--latency_table) or a MACs estimate.')
flags.DEFINE_string('latency_table', '', 'Latency table JSON (--cost_model=table).')
flags.DEFINE_string('output_dir', None, 'Run directory.')
flags.DEFINE_integer('steps', 1000, 'Search steps.')
flags.DEFINE_integer('batch_size', 64, 'Global training batch; the RL batch is 4x larger.')
flags.DEFINE_float('valid_batch_multiplier', 4.0, 'RL validation batch / training batch.')
flags.DEFINE_string('reward', 'abs', 'Reward: abs, mnas or mnas_hard.')
flags.DEFINE_float('cost_exponent', -0.10, 'Exponent beta of the latency term of the reward.')
flags.DEFINE_float('rl_learning_rate', 3e-4, 'Controller Adam rate per 256 examples.')
flags.DEFINE_float('rl_delay_fraction', 0.25, 'Fraction of steps before the controller learns.')
flags.DEFINE_float('op_warmup_fraction', 0.25, 'Fraction of steps of op warmup.')
flags.DEFINE_float('filter_warmup_fraction', 0.25, 'Fraction of steps of filter warmup.')
flags.DEFINE_float('baseline_momentum', 0.95, 'EMA momentum of the reward baseline.')
flags.DEFINE_float('entropy_regularization', 0.0, 'Weight of an entropy bonus for the controller.')
flags.DEFINE_float('temperature', 1.0, 'Softmax temperature of the controller.')
flags.DEFINE_float('model_learning_rate', 0.165, 'Peak RMSProp rate per 256 examples.')
flags.DEFINE_float('model_warmup_fraction', 0.025, 'Linear warmup before the cosine decay.')
flags.DEFINE_float('weight_decay', 4e-5, 'L2 weight decay of the shared weights.')
flags.DEFINE_float('label_smoothing', 0.1, 'Label smoothing of the shared-weight loss.')
flags.DEFINE_float('dropout_rate', 0.0, 'Dropout before the supernet classifier.')
flags.DEFINE_bool('rematerialize', True, 'Recompute op switches in the backward pass.')
flags.DEFINE_float('search_valid_fraction', 0.5, 'Share of the training set held out for RL.')
flags.DEFINE_string('strategy', 'default', 'default, mirrored, multi_worker or tpu.')
flags.DEFINE_string('tpu', '', 'TPU name or address (--strategy=tpu).')
flags.DEFINE_integer('seed', 0, 'Random seed.')
flags.DEFINE_integer('checkpoint_every', 100, 'Steps between checkpoints.')
flags.DEFINE_integer('summary_every', 10, 'Steps between TensorBoard rows.')
flags.DEFINE_integer('log_every', 10, 'Steps between progress lines.')
flags.DEFINE_integer('steps_per_loop', 1, 'Steps per compiled call.')
flags.mark_flags_as_required(['output_dir', 'target_latency_ms'])



def main(unused_argv):
  from tunas_tf.search import config as config_lib  # pylint: disable=g-import-not-at-top
  from tunas_tf.search import tunas  # pylint: disable=g-import-not-at-top
  # Every SearchConfig field has a flag of the same name.
  names = [f.name for f in dataclasses.fields(config_lib.SearchConfig)]
  config = config_lib.SearchConfig(**{name: FLAGS[name].value for name in names})
  summary = tunas.search(config, FLAGS.output_dir)
  print(f"arch: {summary['arch']}")
  print(f"predicted_latency_ms: {summary['predicted_latency_ms']:.4f}  "
        f"target_latency_ms: {summary['target_latency_ms']:.4f}  steps: {summary['steps']}  "
        f"final_entropy: {summary['final_entropy']:.4f}")


if __name__ == '__main__':
  common.run(main)
