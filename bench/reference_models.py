r"""Benchmark: parameters, MACs, TFLite parity and LiteRT latency of the reference models.

  python -m bench.reference_models [--image_size=224 --num_threads=1 --models=a,b]

Builds each reference model at IMAGE_SIZE with 1000 classes, converts it to float32 TFLite,
checks parity against Keras on random inputs and times `invoke()` (median of repeated runs after
warm-up), all in one process so the figures are comparable. Prints one row per model.
"""

import os
import time

import numpy as np

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_integer('image_size', 224, 'Input size.')
flags.DEFINE_integer('num_threads', 1, 'LiteRT threads.')
flags.DEFINE_list('models', ['mobilenet_v2', 'mnasnet_b1', 'proxylessnas_mobile',
                             'mobilenet_v3_large'], 'Reference models.')

PUBLISHED = {'mobilenet_v2': (3.50e6, 300e6), 'mnasnet_b1': (4.38e6, None),
             'proxylessnas_mobile': (4.08e6, None), 'mobilenet_v3_large': (5.48e6, 219e6)}


def _row(name, images):
  from tunas_tf import export, space  # pylint: disable=g-import-not-at-top
  from tunas_tf.models import count_macs, build_model  # pylint: disable=g-import-not-at-top
  from tunas_tf.models.batch_norm import recalibrate_batch_norm  # pylint: disable=g-import-not-at-top
  arch = space.get_reference(name)
  model = build_model(arch.space, arch, num_classes=1000, image_size=FLAGS.image_size)
  # Untrained: fit the batch norms to the distribution parity is checked on (uniform pixels,
  # another seed), as a trained model's are fitted to its inputs. Fitting them to 32 digits
  # images instead left near-constant channels whose tiny variances blew logits up to ~1e2,
  # where float32 round-off alone exceeds the 1e-4 parity bound.
  recalibrate_batch_norm(model, images)
  start = time.time()
  content = export.convert_to_tflite(model)
  convert_s = time.time() - start
  diff = export.float_parity(model, content, num_samples=4)
  stats = export.measure_latency(content, num_threads=FLAGS.num_threads)
  params, macs = model.count_params(), count_macs(arch.space, arch, FLAGS.image_size, 1000)
  ref_params, ref_macs = PUBLISHED.get(name, (None, None))
  rel = lambda x, ref: f'{100 * (x / ref - 1):+.1f}%' if ref else '-'
  return (f'{name:20s} {params / 1e6:7.3f}M ({rel(params, ref_params):>6s}) '
          f'{macs / 1e6:7.1f}M ({rel(macs, ref_macs):>6s}) {diff:9.2e} '
          f'{stats.median_ms:8.2f} {stats.p10_ms:7.2f} {stats.p90_ms:7.2f} {stats.n:5d} '
          f'{convert_s:6.1f}s')


def main(unused_argv):
  print(f'image {FLAGS.image_size}x{FLAGS.image_size}, 1000 classes, LiteRT float32, '
        f'{FLAGS.num_threads} thread(s)')
  print(f'{"model":20s} {"params (vs paper)":>19s} {"MACs (vs paper)":>17s} {"max|diff|":>9s} '
        f'{"med ms":>8s} {"p10":>7s} {"p90":>7s} {"runs":>5s} {"convert":>7s}')
  size = FLAGS.image_size
  images = np.random.default_rng(1234).uniform(size=(32, size, size, 3)).astype(np.float32)
  for name in FLAGS.models:
    print(_row(name, images), flush=True)


if __name__ == '__main__':
  app.run(main)
