r"""The random-search baseline: N uniform architectures within T0 +- tolerance of the latency.

  python -m launch.random_search --search_space=proxylessnas --image_size=224 \
      --target_latency_ms=84 --tolerance_ms=1 --num_samples=20 \
      --latency_table=pixel1.json --output_dir=/tmp/random

Writes OUTPUT_DIR/architectures.jsonl (one architecture per line with its predicted latency)
and summary.json; each line's indices can be trained with `launch.train`.
"""

from absl import flags

from launch import common

FLAGS = flags.FLAGS
flags.DEFINE_string('search_space', 'proxylessnas', 'Registered mobile search space.')
flags.DEFINE_integer('image_size', 224, 'Input size the latencies are predicted for.')
flags.DEFINE_float('target_latency_ms', None, 'Latency target T0 (ms).')
flags.DEFINE_float('tolerance_ms', 1.0, 'Keep architectures with |T - T0| <= tolerance.')
flags.DEFINE_integer('num_samples', 20, 'Number of distinct architectures (N).')
flags.DEFINE_enum('cost_model', 'table', ['table', 'macs'], 'Latency model.')
flags.DEFINE_string('latency_table', '', 'Latency table JSON (--cost_model=table).')
flags.DEFINE_integer('num_classes', 1000, 'Classifier width (MACs cost model).')
flags.DEFINE_integer('max_attempts', 200_000, 'Uniform draws per architecture before giving up.')
flags.DEFINE_integer('seed', 0, 'Random seed.')
flags.DEFINE_string('output_dir', None, 'Output directory.')
flags.mark_flags_as_required(['output_dir', 'target_latency_ms'])

_CONFIG_FLAGS = ('search_space', 'image_size', 'target_latency_ms', 'tolerance_ms',
                 'num_samples', 'cost_model', 'latency_table', 'num_classes', 'max_attempts',
                 'seed')


def main(unused_argv):
  from tunas_tf.search import random_search  # pylint: disable=g-import-not-at-top
  config = random_search.RandomSearchConfig(
      **{name: FLAGS[name].value for name in _CONFIG_FLAGS})
  summary = random_search.random_search(config, FLAGS.output_dir)
  latency = summary['predicted_latency_ms']
  print(f"num_samples: {summary['num_samples']}  predicted_latency_ms: min {latency['min']:.4f} "
        f"mean {latency['mean']:.4f} max {latency['max']:.4f}  "
        f"file: {FLAGS.output_dir}/{summary['architectures_file']}")


if __name__ == '__main__':
  common.run(main)
