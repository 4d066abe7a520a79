r"""Runs a cell-space architecture search (GDAS, SETN, DARTS, random, PGNAS); re-running the same
command resumes it.

  python -m launch.search_cell --algorithm=gdas --search_space=nas_bench_201 --dataset=digits \
      --channels=4 --num_cells=1 --steps=20 --batch_size=16 --output_dir=/tmp/gdas

  python -m launch.search_cell --algorithm=setn --search_space=nas_bench_201 \
      --dataset=/path/cifar10-jpg.tar.gz --epochs=250 --output_dir=/tmp/setn

Writes OUTPUT_DIR/arch.json, summary.json (genotype; nb201_string for nas_bench_201),
report.png (per-edge op probabilities over the steps), metrics.jsonl, TensorBoard logs and
checkpoints; SETN / random / PGNAS also candidates.jsonl, PGNAS pruned_model.keras.
"""

from absl import flags
from absl import logging

from launch import common

FLAGS = flags.FLAGS
flags.DEFINE_string('preset', '',
                    'Budget preset: quick (<= 15 min on 2 CPU cores), cpu (<= 60 min) or paper '
                    '(the reference settings); flags given explicitly override it.')
flags.DEFINE_enum('algorithm', 'gdas', ['gdas', 'setn', 'darts', 'random', 'pgnas'],
                  'Search algorithm.')
flags.DEFINE_string('search_space', 'nas_bench_201',
                    'nas_bench_201, darts, darts_frc, setn or pgnas_resnet.')
flags.DEFINE_string('dataset', 'digits', 'Dataset name (embedded or tfds) or image-folder path.')
flags.DEFINE_string('data_dir', '', 'tfds data directory.')
flags.DEFINE_string('output_dir', None, 'Run directory.')
flags.DEFINE_integer('epochs', 250, 'Passes over the search_train split.')
flags.DEFINE_integer('steps', 0, 'Total steps (overrides --epochs when > 0).')
flags.DEFINE_integer('batch_size', 64, 'Global training (and validation) batch.')
flags.DEFINE_integer('valid_batch_size', 0, 'Validation batch of architecture steps (0: batch).')
flags.DEFINE_integer('channels', 0, 'C of the network (0: the space default).')
flags.DEFINE_integer('num_cells', 0, 'Cells per stage N (0: the space default).')
flags.DEFINE_integer('image_size', 32, 'Square input size.')
flags.DEFINE_integer('seed', 0, 'Random seed.')
flags.DEFINE_integer('num_candidates', 0,
                     'Candidates scored at the end (SETN/random T, PGNAS C; 0: 1000/1000/1500).')
flags.DEFINE_integer('eval_batch_size', 512, 'Held-out images that score the candidates.')
flags.DEFINE_enum('template_sampling', 'uniform', ['uniform', 'fair', 'mixture'],
                  'What the random / SETN template trains: uniform paths (reference), fair '
                  'paths (FairNAS strict fairness) or the uniform mixture of every op.')
flags.DEFINE_enum('candidate_score', 'accuracy', ['accuracy', 'loss'],
                  'What picks the best SETN / random candidate: held-out accuracy (reference) '
                  'or loss.')
flags.DEFINE_string('candidate_filter', '',
                    'Training-free proxy that pre-filters the SETN / random candidates (params, '
                    'flops, synflow, naswot, jacob_cov; empty: none, the reference).')
flags.DEFINE_float('candidate_filter_keep', 0.1, 'Share of the candidates the filter keeps.')
flags.DEFINE_string('template_from', '',
                    'A finished random / SETN run of the same settings: start from its final '
                    'template and only pick (candidate_filter, candidate_filter_keep, '
                    'candidate_score, num_candidates and eval_batch_size may differ).')
flags.DEFINE_enum('setn_variant', 'setn', ['setn', 'rand', 'non'],
                  'SETN, SETN-RAND (uniform candidates) or SETN-NON (mixture template).')
flags.DEFINE_float('learning_rate', 0.025, 'Initial SGD rate of the weights.')
flags.DEFINE_float('weight_decay', 5e-4, 'Weight decay of the weights (not PGNAS).')
flags.DEFINE_float('arch_learning_rate', 3e-4, 'Adam rate of the architecture parameters.')
flags.DEFINE_float('arch_warmup_fraction', 0.0,
                   'Share of the steps that train only the weights before GDAS / SETN / DARTS '
                   'update alpha (0: the reference).')
flags.DEFINE_enum('arch_warmup_sampling', 'sampler', ['sampler', 'mixture'],
                  'What GDAS trains the weights on during --arch_warmup_fraction: its own '
                  'samples (reference) or the uniform mixture of every op.')
flags.DEFINE_integer('arch_lr_reference_steps', 0,
                     'Scale the architecture rate by this / total steps (0: no scaling, the '
                     'reference; AutoDL NB201 runs take 97500 steps).')
flags.DEFINE_float('tau_max', 10.0, 'GDAS initial temperature.')
flags.DEFINE_float('tau_min', 0.1, 'GDAS final temperature.')
flags.DEFINE_float('pgnas_length_scale_sq', 50.0, 'PGNAS prior l^2.')
flags.DEFINE_float('search_valid_fraction', 0.5, 'Share of the training set held out.')
flags.DEFINE_string('strategy', 'default', 'default, mirrored, multi_worker or tpu.')
flags.DEFINE_string('tpu', '', 'TPU name or address (--strategy=tpu).')
flags.DEFINE_integer('checkpoint_every', 100, 'Steps between checkpoints.')
flags.DEFINE_integer('keep_checkpoints', 3, 'Checkpoints kept on disk (the newest).')
flags.DEFINE_integer('summary_every', 10, 'Steps between TensorBoard / report rows.')
flags.DEFINE_integer('log_every', 10, 'Steps between progress lines.')
flags.DEFINE_integer('steps_per_loop', 1, 'Steps per compiled call.')
flags.mark_flags_as_required(['output_dir'])

_CONFIG_FLAGS = ('algorithm', 'search_space', 'dataset', 'data_dir', 'epochs', 'steps',
                 'batch_size', 'valid_batch_size', 'channels', 'num_cells', 'image_size', 'seed',
                 'num_candidates', 'eval_batch_size', 'template_sampling', 'candidate_score',
                 'candidate_filter',
                 'candidate_filter_keep', 'setn_variant',
                 'learning_rate',
                 'weight_decay', 'arch_learning_rate', 'arch_warmup_fraction', 'arch_warmup_sampling',
                 'arch_lr_reference_steps', 'tau_max', 'tau_min',
                 'pgnas_length_scale_sq', 'search_valid_fraction', 'strategy', 'tpu',
                 'checkpoint_every', 'keep_checkpoints', 'summary_every', 'log_every', 'steps_per_loop')


def config_fields() -> dict:
  """The config fields from the flags: defaults, then --preset's settings, then the flags given
  on the command line (each one that overrides the preset is logged)."""
  from tunas_tf.search import cell_presets  # pylint: disable=g-import-not-at-top
  defaults = {name: FLAGS[name].value for name in _CONFIG_FLAGS}
  explicit = {name: FLAGS[name].value for name in _CONFIG_FLAGS if FLAGS[name].present}
  fields, notes = cell_presets.resolve(FLAGS.preset, FLAGS.algorithm, defaults, explicit)
  for note in notes:
    logging.warning('%s', note)
  return fields


def main(unused_argv):
  from tunas_tf.search import cell_config  # pylint: disable=g-import-not-at-top
  # The config is validated before TensorFlow loads, so bad flags fail in a second.
  config = cell_config.CellSearchConfig(**config_fields())
  from tunas_tf.search import cell_search  # pylint: disable=g-import-not-at-top
  summary = cell_search.search_cell(config, FLAGS.output_dir,
                                    template_from=FLAGS.template_from)
  print(f"arch: {summary['arch']}")
  genotype = summary.get('nb201_string') or summary.get('genotype')
  print(f'genotype: {genotype}')
  print(f"algorithm: {config.algorithm}  space: {config.search_space}  steps: {summary['steps']}"
        f"  final loss: {summary['final_metrics'].get('loss', float('nan')):.4f}")


if __name__ == '__main__':
  common.run(main)
