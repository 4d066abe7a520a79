r"""Builds, calibrates, validates and imports latency tables.

Build or complete a table on this machine (a rerun measures only the missing keys), then fit
measured ≈ a·Σ + c·Σ² + b on K architectures:
  python -m launch.profile_latency --search_space=proxylessnas --image_size=224 \
      --output=tables/proxylessnas_224.json [--threads=1 --dtype=float32 --calibrate_archs=30]

Validate it on K held-out architectures (writes D/validation.json and D/validation.png):
  python -m launch.profile_latency --validate --search_space=proxylessnas --image_size=224 \
      --table=tables/proxylessnas_224.json --num_archs=30 --seed=7 --output_dir=/tmp/val

Phones: export a benchmark_model bundle, run its script, import the logs:
  python -m launch.profile_latency --export_bundle=/tmp/bundle --search_space=proxylessnas \
      --image_size=224 [--bundle_calibration_archs=30]
  /tmp/bundle/run_benchmarks.sh
  python -m launch.profile_latency --import_logs=/tmp/bundle --output=pixel4.json --device=pixel4

Print the number of keys per granularity:
  python -m launch.profile_latency --count_keys --search_space=mobilenet_v3_like --image_size=224
"""

from absl import flags

from launch import common

FLAGS = flags.FLAGS
flags.DEFINE_string('search_space', None, 'Registered mobile search space.')
flags.DEFINE_integer('image_size', 224, 'Square input size.')
flags.DEFINE_string('output', None, 'Table file to build, complete or import into.')
flags.DEFINE_enum('granularity', 'auto', ['auto', 'op', 'block'],
                  'Units: whole layers (block), post-conversion ops (op), or whichever needs '
                  'fewer keys (auto).')
flags.DEFINE_enum('dtype', 'float32', ['float32', 'int8'], 'Kernels of the timed models.')
flags.DEFINE_integer('num_classes', 1000, 'Classifier width.')
flags.DEFINE_integer('threads', 1, 'LiteRT / benchmark_model threads.')
flags.DEFINE_integer('warmup', 5, 'Untimed runs per interpreter instance.')
flags.DEFINE_integer('min_runs', 10, 'Minimum timed runs per interpreter instance.')
flags.DEFINE_float('min_seconds', 0.02, 'Minimum timed seconds per interpreter instance.')
flags.DEFINE_integer('instances', 5, 'Timing rounds per entry, a fresh interpreter each (the '
                     'fastest run of all is kept).')
flags.DEFINE_bool('xnnpack', True, 'Keep the default XNNPACK delegate.')
flags.DEFINE_enum('statistic', 'min', ['min', 'median'],
                  'What an entry is: the fastest timed run (stable on a shared machine) or the '
                  'median.')
flags.DEFINE_string('device', 'host', 'Label of the measured machine (table identity).')
flags.DEFINE_list('cpus', [], 'CPUs to pin the timing process to, e.g. 1 (default: none).')
flags.DEFINE_integer('workers', 0, 'Conversion processes (0: one per CPU, 1: in process).')
flags.DEFINE_integer('flush_every', 50, 'Write the table after this many new entries.')
flags.DEFINE_integer('max_new_entries', None, 'Stop after this many new entries.')
flags.DEFINE_integer('calibrate_archs', 0,
                     'Fit a·Σ + c·Σ² + b on this many measured architectures.')
flags.DEFINE_integer('calibration_seed', 1, 'Seed of the calibration architectures.')
flags.DEFINE_bool('validate', False, 'Validate --table on --num_archs held-out architectures.')
flags.DEFINE_string('table', None, 'Table to validate.')
flags.DEFINE_integer('num_archs', 30, 'Held-out architectures for --validate.')
flags.DEFINE_integer('seed', 0, 'Seed of the measurement order / validation architectures.')
flags.DEFINE_string('output_dir', None, 'Where --validate writes validation.json/.png.')
flags.DEFINE_string('export_bundle', None, 'Write a benchmark_model bundle to this directory.')
flags.DEFINE_integer('num_runs', 50, 'benchmark_model --num_runs for --export_bundle.')
flags.DEFINE_integer('bundle_calibration_archs', 0,
                     'Whole architectures to add to the bundle for calibration.')
flags.DEFINE_string('import_logs', None, 'Bundle directory whose logs/ to import into --output.')
flags.DEFINE_string('cpu', '', 'CPU description of the phone for --import_logs.')
flags.DEFINE_bool('allow_missing', False, 'Import a partial table when logs are missing.')
flags.DEFINE_bool('count_keys', False, 'Print the number of keys per granularity and exit.')


def _require(**values) -> None:
  from tunas_tf.errors import UserError  # pylint: disable=g-import-not-at-top
  missing = [f'--{name}' for name, value in values.items() if value in (None, '')]
  if missing:
    raise UserError(f'{", ".join(missing)} required for this mode')


def _require_table_path() -> None:
  """--output names a table file: given, not a directory, and not under a file."""
  import os  # pylint: disable=g-import-not-at-top
  from tunas_tf.errors import UserError  # pylint: disable=g-import-not-at-top
  _require(output=FLAGS.output)
  if os.path.isdir(FLAGS.output):
    raise UserError(f'--output={FLAGS.output!r} is a directory; pass the table file to write, '
                    f'e.g. {os.path.join(FLAGS.output, "table.json")!r}')
  parent = common.existing_ancestor(os.path.dirname(os.path.abspath(FLAGS.output)))
  if not os.path.isdir(parent):
    raise UserError(f'--output={FLAGS.output!r} cannot be created: {parent!r} is a file; pass '
                    'a table path in a directory')


def _build() -> None:
  import os  # pylint: disable=g-import-not-at-top
  from latency import table as table_lib  # pylint: disable=g-import-not-at-top
  _require(search_space=FLAGS.search_space)
  _require_table_path()
  if os.path.exists(FLAGS.output):
    table_lib.LatencyTable.read(FLAGS.output)  # A corrupt file fails before TF loads.
  from latency import calibration, profiler  # pylint: disable=g-import-not-at-top
  config = profiler.ProfileConfig(
      search_space=FLAGS.search_space, image_size=FLAGS.image_size,
      granularity=FLAGS.granularity, dtype=FLAGS.dtype, num_classes=FLAGS.num_classes,
      threads=FLAGS.threads, warmup=FLAGS.warmup, min_runs=FLAGS.min_runs,
      min_seconds=FLAGS.min_seconds, instances=FLAGS.instances, use_xnnpack=FLAGS.xnnpack,
      device=FLAGS.device,
      cpus=tuple(int(c) for c in FLAGS.cpus), workers=FLAGS.workers,
      flush_every=FLAGS.flush_every, seed=FLAGS.seed, statistic=FLAGS.statistic)
  report = profiler.build_table(config, FLAGS.output, max_new_entries=FLAGS.max_new_entries)
  print(f'{report.path}: {report.already_present + report.measured}/{report.needed} entries '
        f'({report.granularity}), measured {report.measured} in {report.seconds:.1f} s '
        f'({report.entries_per_minute:.0f} per minute)')
  if FLAGS.calibrate_archs and report.complete:
    fit = calibration.calibrate_table(FLAGS.output, FLAGS.calibrate_archs,
                                      FLAGS.calibration_seed, config)
    print(f'calibration: {fit.formula()} on {fit.num_archs} '
          f'architectures (fit RMSE {fit.rmse_ms:.3f} ms, MAPE {100 * fit.mape:.1f}%)')
  elif FLAGS.calibrate_archs:
    print('calibration skipped: the table is incomplete (rerun to finish it)')


def _validate() -> None:
  _require(search_space=FLAGS.search_space, table=FLAGS.table, output_dir=FLAGS.output_dir)
  from latency import validation  # pylint: disable=g-import-not-at-top
  summary = validation.validate_table(FLAGS.table, FLAGS.search_space, FLAGS.image_size,
                                      FLAGS.num_archs, FLAGS.seed, FLAGS.output_dir,
                                      workers=FLAGS.workers,
                                      cpus=[int(c) for c in FLAGS.cpus])
  keys = ('n', 'mape', 'rmse_ms', 'bias', 'within_5pct', 'within_10pct', 'kendall_tau')
  print(' '.join(f'{k}={summary[k]:.4g}' for k in keys))


def _export_bundle() -> None:
  from latency import bundle, profiler  # pylint: disable=g-import-not-at-top
  _require(search_space=FLAGS.search_space)
  config = profiler.ProfileConfig(FLAGS.search_space, FLAGS.image_size, FLAGS.granularity,
                                  FLAGS.dtype, FLAGS.num_classes, FLAGS.threads)
  manifest = bundle.export_bundle(
      FLAGS.export_bundle, FLAGS.search_space, FLAGS.image_size,
      profiler.resolve_granularity(config), FLAGS.dtype, FLAGS.num_classes, FLAGS.threads,
      FLAGS.num_runs, FLAGS.warmup, FLAGS.xnnpack, FLAGS.bundle_calibration_archs, FLAGS.seed,
      workers=FLAGS.workers)
  print(f'{FLAGS.export_bundle}: {len(manifest["units"])} units, {len(manifest["archs"])} '
        f'architectures; run {FLAGS.export_bundle}/{bundle.SCRIPT}')


def _import_logs() -> None:
  from latency import bundle  # pylint: disable=g-import-not-at-top
  _require_table_path()
  table = bundle.import_logs(FLAGS.import_logs, FLAGS.output, FLAGS.device, FLAGS.cpu,
                             FLAGS.allow_missing)
  print(f'{FLAGS.output}: {len(table.entries)} entries')


def _count_keys() -> None:
  from latency import enumeration  # pylint: disable=g-import-not-at-top
  _require(search_space=FLAGS.search_space)
  counts = enumeration.key_counts(FLAGS.search_space, FLAGS.image_size)
  print(' '.join(f'{g}={n}' for g, n in counts.items()))


def main(unused_argv):
  modes = [m for m in ('validate', 'export_bundle', 'import_logs', 'count_keys')
           if getattr(FLAGS, m)]
  from tunas_tf.errors import UserError  # pylint: disable=g-import-not-at-top
  if len(modes) > 1:
    raise UserError(f'Choose one mode; got {", ".join("--" + m for m in modes)}')
  if FLAGS.threads < 1:
    raise UserError(f'--threads={FLAGS.threads} is not a thread count; pass 1 (single-threaded '
                    'latency, the default) or more')
  {'validate': _validate, 'export_bundle': _export_bundle, 'import_logs': _import_logs,
   'count_keys': _count_keys}.get(modes[0] if modes else '', _build)()


if __name__ == '__main__':
  common.run(main)
