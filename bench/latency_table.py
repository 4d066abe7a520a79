r"""Benchmark: latency-table build speed, projected full-build time, and validation figures.

  python -m bench.latency_table --search_space=proxylessnas --image_size=224 [--full]
  python -m bench.latency_table --search_space=mobilenet_v3_like --image_size=224 \
      --granularity=op --sample_entries=150 --workers=1

Without --full it measures --sample_entries random keys of each requested granularity (the
same protocol and code as a real build) and projects the full build from keys × measured
seconds per entry. With --full it builds the whole table in --output_dir, calibrates it on
--calibrate_archs architectures and validates it on --validate_archs held-out ones, printing
MAPE, RMSE, bias, ±5 % / ±10 % and Kendall τ (calibrated and raw Σ). Host timings are only as
quiet as the machine: the drift of the reference unit is printed with each row.
"""

import os
import tempfile

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import app  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags  # pylint: disable=wrong-import-position

FLAGS = flags.FLAGS
flags.DEFINE_string('search_space', 'proxylessnas', 'Registered mobile space.')
flags.DEFINE_integer('image_size', 224, 'Input size.')
flags.DEFINE_list('granularity', ['block', 'op'], 'Granularities to benchmark.')
flags.DEFINE_integer('sample_entries', 100, 'Keys measured per granularity without --full.')
flags.DEFINE_bool('full', False, 'Build the whole table, calibrate and validate it.')
flags.DEFINE_integer('workers', 1, 'Conversion processes (0: one per CPU).')
flags.DEFINE_integer('threads', 1, 'LiteRT threads.')
flags.DEFINE_integer('calibrate_archs', 20, 'Calibration architectures (--full).')
flags.DEFINE_integer('validate_archs', 30, 'Held-out validation architectures (--full).')
flags.DEFINE_integer('seed', 0, 'Seed of the validation architectures.')
flags.DEFINE_string('output_dir', '', 'Where tables go (default: a temporary directory).')


def _row(granularity: str, output_dir: str) -> None:
  from latency import calibration, enumeration, profiler, validation  # pylint: disable=g-import-not-at-top
  from latency.table import LatencyTable  # pylint: disable=g-import-not-at-top
  counts = enumeration.key_counts(FLAGS.search_space, FLAGS.image_size)
  path = os.path.join(output_dir, f'{FLAGS.search_space}_{FLAGS.image_size}_{granularity}.json')
  config = profiler.ProfileConfig(FLAGS.search_space, FLAGS.image_size, granularity=granularity,
                                  threads=FLAGS.threads, workers=FLAGS.workers)
  report = profiler.build_table(config, path,
                                max_new_entries=None if FLAGS.full else FLAGS.sample_entries)
  table = LatencyTable.read(path)
  drift = table.header['drift']['max_relative_change']
  per_entry = report.seconds / max(report.measured, 1)
  print(f'{FLAGS.search_space}@{FLAGS.image_size} {granularity:>5}: {counts[granularity]} keys; '
        f'measured {report.measured} in {report.seconds:.1f} s = '
        f'{report.entries_per_minute:.0f} entries/min (convert {report.convert_seconds:.1f} s, '
        f'time {report.time_seconds:.1f} s, workers={FLAGS.workers}); projected full build '
        f'{counts[granularity] * per_entry / 60:.1f} min; reference drift {100 * drift:.0f}%')
  if not FLAGS.full:
    return
  fit = calibration.calibrate_table(path, FLAGS.calibrate_archs, config=config)
  print(f'  calibration on {fit.num_archs} archs: {fit.formula()}')
  summary = validation.validate_table(path, FLAGS.search_space, FLAGS.image_size,
                                      FLAGS.validate_archs, FLAGS.seed,
                                      os.path.join(output_dir, f'validation_{granularity}'),
                                      workers=FLAGS.workers)
  for name, m in (('calibrated', summary), ('raw sum', summary['uncalibrated'])):
    print(f'  {name:>10}: n={m["n"]} MAPE {100 * m["mape"]:.1f}%  RMSE {m["rmse_ms"]:.3f} ms  '
          f'bias {m["bias"]:.3f}  ±5% {100 * m["within_5pct"]:.0f}%  '
          f'±10% {100 * m["within_10pct"]:.0f}%  Kendall τ {m["kendall_tau"]:.3f}')


def main(unused_argv):
  output_dir = FLAGS.output_dir or tempfile.mkdtemp(prefix='latency_bench_')
  for granularity in FLAGS.granularity:
    _row(granularity, output_dir)
  print(f'tables in {output_dir}')


if __name__ == '__main__':
  app.run(main)
