r"""Benchmark: one TuNAS search step (after warmup) against one training step of the largest child.

  python -m bench.search_step [--search_space=proxylessnas --image_size=32 --batch_size=32
                               --repeats=20 --rematerialize=true]

All timings are the median over `repeats` calls of a compiled step on the same real batch
(digits), after two untimed calls, in one process, interleaved (one call of each step per round,
so load from other jobs falls on all three alike; timed one after the other, a busy shared host
once made the search step read 1.9x the child step instead of 0.5-0.8x):

* child: `build_model(space, largest architecture)` stand-alone, one RMSProp step (TuNAS
  settings, label smoothing, weight decay);
* shared: the supernet's shared-weight step alone, one sampled architecture per call;
* search: the whole TuNAS step (shared-weight step, validation pass on a 4x batch, cost model,
  baseline, controller step), warmup over (op/filter warmup 0, RL delay 0).

Prints the three times and the ratios search/child and shared/child (the target is a search step
<= 1.5x the child step; the validation pass alone is a forward pass on 4x the examples).
"""

import os
import statistics
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_string('search_space', 'proxylessnas', 'Registered mobile search space.')
flags.DEFINE_integer('image_size', 32, 'Input size.')
flags.DEFINE_integer('batch_size', 32, 'Training batch (the validation batch is 4x).')
flags.DEFINE_integer('repeats', 20, 'Timed calls per measurement.')
flags.DEFINE_bool('rematerialize', True, 'Rematerialize the supernet switches.')


def _median_seconds(fns, repeats):
  """Median seconds per call of each of `fns`, called round-robin."""
  for fn in fns:
    for _ in range(2):  # Tracing and first-run allocation are not timed.
      fn()
  times = [[] for _ in fns]
  for _ in range(repeats):
    for fn, record in zip(fns, times):
      start = time.perf_counter()
      fn()
      record.append(time.perf_counter() - start)
  return [statistics.median(t) for t in times]


def _batches(config):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tunas_tf import data  # pylint: disable=g-import-not-at-top
  digits = data.load_dataset('digits')
  make = lambda split, batch: next(iter(data.make_pipeline(
      digits, split, data.PipelineConfig(image_size=config.image_size, batch_size=batch,
                                         drop_remainder=True, repeat=True), training=True)))
  train = make('search_train', config.batch_size)
  valid = make('search_valid', config.valid_batch_size)
  return tuple(tf.constant(t) for t in train), tuple(tf.constant(t) for t in valid)


def _child_step(config, space, train):
  import keras  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tunas_tf.models import build_model  # pylint: disable=g-import-not-at-top
  from tunas_tf.models.supernet import largest_architecture  # pylint: disable=g-import-not-at-top
  model = build_model(space, largest_architecture(space), num_classes=10,
                      image_size=config.image_size, weight_decay=config.weight_decay)
  optimizer = keras.optimizers.RMSprop(0.01, rho=0.9, momentum=0.9, epsilon=1.0)
  loss_fn = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)
  images, labels = train

  @tf.function
  def step():
    with tf.GradientTape() as tape:
      loss = loss_fn(tf.one_hot(labels, 10), model(images, training=True)) + tf.add_n(
          model.losses)
    optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables),
                                  model.trainable_variables))
    return loss

  return step


def _searcher(config):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from latency import cost_model as latency_cost_model  # pylint: disable=g-import-not-at-top
  from tunas_tf.search.searcher import SearchContext  # pylint: disable=g-import-not-at-top
  from tunas_tf.search.tunas import TunasSearcher  # pylint: disable=g-import-not-at-top
  cost = latency_cost_model.macs_cost_model(config.search_space, config.image_size,
                                            num_classes=10)
  searcher = TunasSearcher(config, cost, 10)
  strategy = tf.distribute.get_strategy()
  shape = lambda b: (b, config.image_size, config.image_size, 3)
  searcher.build(SearchContext(strategy, 1, config.steps, 0, shape(config.batch_size),
                               shape(config.valid_batch_size)))
  return searcher


def main(unused_argv):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tunas_tf import space as space_lib  # pylint: disable=g-import-not-at-top
  from tunas_tf.search.config import SearchConfig  # pylint: disable=g-import-not-at-top
  from tunas_tf.search.controller import step_seed  # pylint: disable=g-import-not-at-top
  config = SearchConfig(search_space=FLAGS.search_space, image_size=FLAGS.image_size,
                        batch_size=FLAGS.batch_size, cost_model='macs', steps=10_000,
                        target_latency_ms=1.0, rl_delay_fraction=0.0, op_warmup_fraction=0.0,
                        filter_warmup_fraction=0.0, rematerialize=FLAGS.rematerialize)
  space = space_lib.get_space(config.search_space)
  train, valid = _batches(config)
  child_step = _child_step(config, space, train)
  searcher = _searcher(config)
  counter = tf.Variable(0, dtype=tf.int64)

  @tf.function
  def search_step():
    counter.assign_add(1)
    return searcher.replica_step(train, valid, counter.read_value())['loss']

  @tf.function
  def shared_step():
    counter.assign_add(1)
    sample = searcher.controller.sample(step_seed(0, counter.read_value(), 0))
    return searcher._model_step(train, sample.masks)['loss']  # pylint: disable=protected-access

  child, shared, search = _median_seconds(
      [lambda: child_step().numpy(), lambda: shared_step().numpy(),
       lambda: search_step().numpy()], FLAGS.repeats)
  print(f'{space.name} {config.image_size}x{config.image_size}, batch {config.batch_size} '
        f'(validation {config.valid_batch_size}), rematerialize={config.rematerialize}, '
        f'median of {FLAGS.repeats}, interleaved')
  print(f'child step (largest, stand-alone): {1000 * child:8.1f} ms')
  print(f'shared-weight step (supernet):     {1000 * shared:8.1f} ms  '
        f'x{shared / child:.2f} of child')
  print(f'search step (TuNAS, after warmup): {1000 * search:8.1f} ms  '
        f'x{search / child:.2f} of child')


if __name__ == '__main__':
  app.run(main)
