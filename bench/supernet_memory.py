r"""Benchmark: supernet memory with and without rematerialization, and step time vs stand-alone.

  python -m bench.supernet_memory [--space=proxylessnas --image_size=128 --batch_size=32]

Prints three figures, each measured side by side:

1. Peak memory of one training step under op warmup (every op mask all 1/n, filters at their
   largest), with rematerialization and without. Each variant runs in its own subprocess; the
   figure is the peak of TensorFlow's CPU allocator during the step minus its level before the
   step (`tf.config.experimental.get_memory_info('CPU:0')`), i.e. the step's activations,
   gradients and temporaries; the weights are excluded. Each process's maximum resident set
   size (weights, graphs and compilation included) is printed beside it.
2. The largest difference between the gradients of the two variants (same weights, same
   masks, same batch), over every trainable variable and every mask.
3. The time of one compiled training step (forward, cross-entropy + weight decay, gradients,
   SGD with momentum) of the supernet with one-hot masks of the largest child (with and
   without rematerialization), and of the stand-alone model of that child (batch norm in
   training mode), in one process, after warm-up steps, interleaved: medians of --timed_steps.
"""

import json
import os
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
# TensorFlow's default CPU allocator keeps no statistics ("Allocator stats not available for
# device 'CPU:0'"); its BFC allocator does. Set before TensorFlow is imported (here and in the
# per-variant subprocesses, which run this module).
os.environ.setdefault('TF_CPU_ALLOCATOR_USE_BFC', 'true')

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_string('space', 'proxylessnas', 'Registered mobile search space.')
flags.DEFINE_integer('image_size', 128, 'Input size.')
flags.DEFINE_integer('batch_size', 32, 'Batch size.')
flags.DEFINE_integer('num_classes', 1000, 'Logits.')
flags.DEFINE_integer('warmup_steps', 2, 'Untimed steps before timing.')
flags.DEFINE_integer('timed_steps', 5, 'Timed steps (the median is printed).')
flags.DEFINE_enum('only', 'all', ['all', 'memory', 'gradients', 'time'], 'Which figures.')
flags.DEFINE_enum('variant', '', ['', 'remat', 'plain'],
                  'Internal: measure the memory of one variant in this process, print JSON.')


def _imports():
  import keras  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tunas_tf import models, space  # pylint: disable=g-import-not-at-top
  from tunas_tf.models import supernet  # pylint: disable=g-import-not-at-top
  return keras, np, tf, models, space, supernet


def _batch(np, tf):
  rng = np.random.default_rng(0)
  size = FLAGS.image_size
  images = rng.uniform(-1, 1, (FLAGS.batch_size, size, size, 3)).astype(np.float32)
  labels = rng.integers(0, FLAGS.num_classes, FLAGS.batch_size)
  return tf.constant(images), tf.constant(labels, tf.int32)


def _warmup_masks(tf, s):
  """Op warmup: every op mask all 1/n; filters at their largest choice."""
  return tuple(tf.fill([d.num_choices], 1.0 / d.num_choices) if d.tag == 'op' else
               tf.one_hot(d.num_choices - 1, d.num_choices) for d in s.decisions)


def _one_hot_masks(tf, s, arch):
  return tuple(tf.one_hot(i, d.num_choices) for i, d in zip(arch.indices, s.decisions))


def _loss_and_grads(tf, model, images, labels, masks=None, mask_grads=False):
  with tf.GradientTape() as tape:
    if mask_grads:
      tape.watch(masks)
    logits = model((images, masks), training=True) if masks is not None else model(
        images, training=True)
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
    if model.losses:
      loss += tf.add_n(model.losses)
  sources = list(model.trainable_variables) + (list(masks) if mask_grads else [])
  return loss, tape.gradient(loss, sources)


def _measure_variant(variant: str) -> dict:
  """Peak step memory of one variant in this process."""
  keras, np, tf, _, space, supernet = _imports()
  keras.utils.set_random_seed(0)
  s = space.get_space(FLAGS.space)
  model = supernet.MobileSupernet(s, FLAGS.num_classes, FLAGS.image_size,
                                  rematerialize=variant == 'remat')
  images, labels = _batch(np, tf)
  masks = _warmup_masks(tf, s)
  step = tf.function(lambda x, y, m: _loss_and_grads(tf, model, x, y, m)[1])
  start = time.time()
  step(images, labels, masks)  # Traces, optimizes and runs once.
  compile_s = time.time() - start
  result = {'compile_s': compile_s, 'allocator_bytes': 0}
  for _ in range(2):
    before = tf.config.experimental.get_memory_info('CPU:0')['current']
    tf.config.experimental.reset_memory_stats('CPU:0')
    grads = step(images, labels, masks)
    _ = grads[0].numpy()
    peak = tf.config.experimental.get_memory_info('CPU:0')['peak']
    del grads
    result['allocator_bytes'] = max(result['allocator_bytes'], peak - before)
  result['max_rss_bytes'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
  return result


def _memory_figures():
  results = {}
  for variant in ('remat', 'plain'):
    argv = [sys.executable, '-m', 'bench.supernet_memory', f'--variant={variant}',
            f'--space={FLAGS.space}', f'--image_size={FLAGS.image_size}',
            f'--batch_size={FLAGS.batch_size}', f'--num_classes={FLAGS.num_classes}']
    out = subprocess.run(argv, capture_output=True, text=True, check=False)
    if out.returncode != 0:
      raise RuntimeError(f'{variant} subprocess failed:\n{out.stderr[-3000:]}')
    results[variant] = json.loads(out.stdout.strip().splitlines()[-1])
  mib = lambda b: b / 2 ** 20
  r, p = results['remat'], results['plain']
  print('1. peak memory of one training step under op warmup (all op masks 1/n, largest '
        'filters), one subprocess per variant:')
  print(f'   {"":16s} {"step peak (allocator)":>22s} {"process max RSS":>16s} {"compile":>8s}')
  for name, x in (('rematerialized', r), ('plain', p)):
    print(f'   {name:16s} {mib(x["allocator_bytes"]):20.1f}Mi {mib(x["max_rss_bytes"]):14.1f}Mi '
          f'{x["compile_s"]:7.1f}s')
  print(f'   ratio remat / plain: {r["allocator_bytes"] / p["allocator_bytes"]:.3f} '
        '(target <= 0.5)', flush=True)


def _gradient_figure():
  keras, np, tf, _, space, supernet = _imports()
  keras.utils.set_random_seed(0)
  s = space.get_space(FLAGS.space)
  remat = supernet.MobileSupernet(s, FLAGS.num_classes, FLAGS.image_size, rematerialize=True)
  plain = supernet.MobileSupernet(s, FLAGS.num_classes, FLAGS.image_size, rematerialize=False)
  plain.set_weights(remat.get_weights())
  images, labels = _batch(np, tf)
  masks = _warmup_masks(tf, s)
  loss_r, grads_r = _loss_and_grads(tf, remat, images, labels, masks, mask_grads=True)
  loss_p, grads_p = _loss_and_grads(tf, plain, images, labels, masks, mask_grads=True)
  # Filter masks are read through their argmax and one-choice masks are constant: both have
  # None gradients by design. They must be None in both variants alike.
  none = sum(a is None for a in grads_r)
  mismatched = sum((a is None) != (b is None) for a, b in zip(grads_r, grads_p))
  pairs = [(a, b) for a, b in zip(grads_r, grads_p) if a is not None and b is not None]
  diff = max(float(tf.reduce_max(tf.abs(a - b))) for a, b in pairs)
  scale = max(float(tf.reduce_max(tf.abs(b))) for _, b in pairs)
  print(f'2. gradients, op warmup, eager ({len(grads_r)} tensors: every trainable variable and '
        f'mask): max |remat - plain| = {diff:.2e} (largest |gradient| {scale:.2e}); '
        f'None gradients: {none} in each variant (filter and one-choice masks), '
        f'{mismatched} None in one variant only; loss {float(loss_r):.6f} vs '
        f'{float(loss_p):.6f}', flush=True)


def _time_steps(steps, args):
  """Median seconds per step of each step function, interleaved so load affects all alike."""
  for step in steps:
    for _ in range(FLAGS.warmup_steps):
      step(*args)
  times = [[] for _ in steps]
  for _ in range(FLAGS.timed_steps):
    for step, record in zip(steps, times):
      start = time.perf_counter()
      float(step(*args))
      record.append(time.perf_counter() - start)
  return [statistics.median(t) for t in times]


def _step_fn(tf, keras, model, masks=None):
  optimizer = keras.optimizers.SGD(0.01, momentum=0.9)

  @tf.function
  def step(images, labels):
    loss, grads = _loss_and_grads(tf, model, images, labels, masks)
    optimizer.apply(grads[:len(model.trainable_variables)], model.trainable_variables)
    return loss

  return step


def _time_figure():
  keras, np, tf, models, space, supernet = _imports()
  keras.utils.set_random_seed(0)
  s = space.get_space(FLAGS.space)
  arch = supernet.largest_architecture(s)
  images, labels = _batch(np, tf)
  masks = _one_hot_masks(tf, s, arch)
  steps = [_step_fn(tf, keras, supernet.MobileSupernet(s, FLAGS.num_classes, FLAGS.image_size,
                                                       rematerialize=remat), masks)
           for remat in (True, False)]
  steps.append(_step_fn(tf, keras, models.build_model(s, arch, FLAGS.num_classes,
                                                      FLAGS.image_size)))
  t_remat, t_plain, t_child = _time_steps(steps, (images, labels))
  print(f'3. one compiled training step, batch {FLAGS.batch_size} at {FLAGS.image_size}px, '
        f'median of {FLAGS.timed_steps} (interleaved), one-hot masks of the largest child:')
  print(f'   supernet (rematerialized) {t_remat * 1e3:7.0f} ms   ratio to stand-alone '
        f'{t_remat / t_child:.2f} (target <= 1.5)')
  print(f'   supernet (plain)          {t_plain * 1e3:7.0f} ms   ratio to stand-alone '
        f'{t_plain / t_child:.2f}')
  print(f'   largest child stand-alone {t_child * 1e3:7.0f} ms')
  print('   (the supernet normalizes with the fused batch norm kernel, the stand-alone Keras '
        'model with the unfused formula; remat / plain compares like with like)')
  print(f'   largest child: {s.to_string(arch)}', flush=True)


def main(unused_argv):
  if FLAGS.variant:
    print(json.dumps(_measure_variant(FLAGS.variant)))
    return
  print(f'space {FLAGS.space}, batch {FLAGS.batch_size}, {FLAGS.image_size}x{FLAGS.image_size}, '
        f'{FLAGS.num_classes} classes, CPU', flush=True)
  if FLAGS.only in ('all', 'memory'):
    _memory_figures()
  if FLAGS.only in ('all', 'gradients'):
    _gradient_figure()
  if FLAGS.only in ('all', 'time'):
    _time_figure()


if __name__ == '__main__':
  app.run(main)
