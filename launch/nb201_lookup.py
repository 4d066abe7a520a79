r"""Looks up the NAS-Bench-201 ground truth of a cell (benchmarking only, never for searching).

  python -m launch.nb201_lookup \
      --genotype='|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|'
  python -m launch.nb201_lookup --arch=c3-c3c3-skipc3c3 --csv=/data/nats_bench.csv

Prints the 200-epoch test accuracy on CIFAR-10, CIFAR-100 and ImageNet16-120 with the cell's
rank among the 15,625 cells, and the space's mean / median / top-10% threshold.
"""

from absl import flags

from launch import common

FLAGS = flags.FLAGS
flags.DEFINE_string('genotype', '', "NB201 genotype string '|op~0|+|op~0|op~1|+|op~0|op~1|op~2|'.")
flags.DEFINE_string('arch', '', 'Instead of --genotype: a nas_bench_201 architecture string, '
                    'JSON file or colon-separated indices.')
flags.DEFINE_string('csv', '', 'NAS-Bench-201 accuracy CSV (default: $TUNAS_NB201_CSV or '
                    '../shared/data/nb201_accuracies.csv).')


def main(unused_argv):
  from tunas_tf import space  # pylint: disable=g-import-not-at-top
  from tunas_tf.space import cell  # pylint: disable=g-import-not-at-top
  from tunas_tf.benchmarks import nb201  # pylint: disable=g-import-not-at-top
  from tunas_tf.errors import UserError  # pylint: disable=g-import-not-at-top
  if bool(FLAGS.genotype) == bool(FLAGS.arch):
    raise UserError('Pass exactly one of --genotype and --arch')
  if FLAGS.genotype:
    arch = cell.from_nb201_string(FLAGS.genotype)
  else:
    arch = space.parse_architecture(FLAGS.arch, cell.NB201_SPACE)
  bench = nb201.NB201Benchmark.load(FLAGS.csv or None)
  record = bench.query(arch)
  print(f'genotype: {record.genotype}')
  print(f'arch:     {space.get_space(arch.space).to_string(arch)}  (NB201 index {record.index})')
  for dataset in nb201.DATASETS:
    stats = bench.stats(dataset)
    print(f'{dataset:>15}: test accuracy {record.accuracies[dataset]:6.2f}  rank '
          f'{bench.rank(arch, dataset):5d}/{stats.count}  (space mean {stats.mean:.2f}, median '
          f'{stats.median:.2f}, top-10% >= {stats.top_fraction_threshold:.2f}, best '
          f'{stats.best:.2f})')


if __name__ == '__main__':
  common.run(main, resumable=False)
