r"""GDAS step vs full-mixture (first-order DARTS) step on the same NB201 supernet, side by side.

A step of each is one weight update on a training batch plus one architecture update on a
validation batch, compiled with tf.function, in one process; the two are timed alternately
(median over rounds) so that machine load affects both alike. GDAS computes one op per edge
(forward and backward), DARTS all of them, so the target is a time ratio <= 0.35.

  python -m bench.gdas_step                      # NB201 C=16 N=5, batch 64, 32x32
  python -m bench.gdas_step --channels=8 --num_cells=1 --rounds=5   # quick
"""

import statistics
import time

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

from tunas_tf import space as space_lib
from tunas_tf.search import cell_config
from tunas_tf.search.darts import DartsSearcher
from tunas_tf.search.gdas import GdasSearcher
from tunas_tf.search.searcher import SearchContext

FLAGS = flags.FLAGS
flags.DEFINE_integer('channels', 16, 'C of the NB201 network.')
flags.DEFINE_integer('num_cells', 5, 'Cells per stage N.')
flags.DEFINE_integer('batch_size', 64, 'Training and validation batch.')
flags.DEFINE_integer('image_size', 32, 'Input size.')
flags.DEFINE_integer('rounds', 10, 'Timed rounds (one step of each per round).')
flags.DEFINE_integer('warmup', 2, 'Untimed steps of each after tracing.')
flags.DEFINE_string('search_space', 'nas_bench_201', 'nas_bench_201, darts or darts_frc.')

TARGET_RATIO = 0.35


def _make(cls, space, steps):
  config = cell_config.CellSearchConfig(algorithm=cls.algorithm, search_space=space.name,
                                        image_size=FLAGS.image_size, batch_size=FLAGS.batch_size)
  searcher = cls(config, space, num_classes=10)
  shape = (FLAGS.batch_size, FLAGS.image_size, FLAGS.image_size, 3)
  searcher.build(SearchContext(tf.distribute.get_strategy(), 1, steps, 0, shape, shape))
  step_var = tf.Variable(0, dtype=tf.int64)

  @tf.function
  def step(train, valid):
    metrics = searcher.replica_step(train, valid, step_var.read_value())
    step_var.assign_add(1)
    return metrics['loss']

  return step


def _time(step, batch) -> float:
  start = time.perf_counter()
  step(*batch).numpy()
  return time.perf_counter() - start


def main(unused_argv):
  space = space_lib.cell.with_macro(space_lib.get_space(FLAGS.search_space),
                                    channels=FLAGS.channels, cells_per_stage=FLAGS.num_cells)
  rng = np.random.default_rng(0)
  shape = (FLAGS.batch_size, FLAGS.image_size, FLAGS.image_size, 3)
  batch = tuple((tf.constant(rng.uniform(0, 1, shape), tf.float32),
                 tf.constant(rng.integers(0, 10, FLAGS.batch_size), tf.int32)) for _ in range(2))
  steps = FLAGS.rounds + FLAGS.warmup + 1
  timings = {}
  for name, cls in (('gdas', GdasSearcher), ('darts', DartsSearcher)):
    start = time.perf_counter()
    step = _make(cls, space, steps)
    step(*batch).numpy()  # Trace + first step.
    for _ in range(FLAGS.warmup):
      step(*batch).numpy()
    timings[name] = (step, [], time.perf_counter() - start)
  for _ in range(FLAGS.rounds):
    for name in ('gdas', 'darts'):
      timings[name][1].append(_time(timings[name][0], batch))
  print(f'space={space.name} channels={FLAGS.channels} num_cells={FLAGS.num_cells} '
        f'batch_size={FLAGS.batch_size} image_size={FLAGS.image_size} rounds={FLAGS.rounds} '
        f'threads={tf.config.threading.get_intra_op_parallelism_threads() or "auto"}')
  medians = {}
  for name in ('gdas', 'darts'):
    _, times, setup = timings[name]
    medians[name] = statistics.median(times)
    print(f'{name:6s} step (weights + arch): median {1000 * medians[name]:8.1f} ms  '
          f'min {1000 * min(times):8.1f} ms  (build + trace + warmup {setup:.1f} s)')
  ratio = medians['gdas'] / medians['darts']
  verdict = 'meets' if ratio <= TARGET_RATIO else 'MISSES'
  print(f'GDAS / DARTS step time ratio: {ratio:.3f} ({verdict} the target <= {TARGET_RATIO})')


if __name__ == '__main__':
  app.run(main)
