"""What the NAS-Bench-201 / CIFAR-10 cell benchmarks share: flags of the reduced setup, the
search configuration they build, and the statement of how it differs from the reference.

The reference setup is AutoDL's NB201 search (shared/docs/anchors/cellsearch.md §1.3-1.4):
C = 16, N = 5 cells per stage, 32×32 CIFAR-10, batch 64, 250 epochs over the 25,000-image
search_train half, SETN T = 1000 candidates scored on 512 held-out images.
"""

import time
from typing import Any, Dict, List, Optional

from absl import flags

from bench import paths
from tunas_tf.search import cell_config
from tunas_tf.search.cell_config import CellSearchConfig

FLAGS = flags.FLAGS
REPO, DEFAULT_CIFAR = paths.REPO, paths.DEFAULT_CIFAR
REFERENCE = {'channels': 16, 'num_cells': 5, 'image_size': 32, 'batch_size': 64, 'epochs': 250,
             'num_candidates': 1000, 'eval_batch_size': 512, 'arch_learning_rate': 3e-4}
TIMING_FILE = 'bench_timing.json'
# Steps before the per-step time is measured: tracing, and the first steps' warm-up.
UNTIMED_STEPS = 3

flags.DEFINE_string('dataset', DEFAULT_CIFAR, 'CIFAR-10 image-folder tarball (or any dataset).')
flags.DEFINE_integer('channels', 8, 'C of the NB201 network (reference 16).')
flags.DEFINE_integer('num_cells', 1, 'Cells per stage N (reference 5).')
flags.DEFINE_integer('image_size', 32, 'Square input size (reference 32).')
flags.DEFINE_integer('batch_size', 64, 'Training and validation batch (reference 64).')
flags.DEFINE_integer('epochs', 1, 'Passes over search_train when the step budget is 0.')
flags.DEFINE_integer('eval_batch_size', 512, 'Held-out images scoring candidates (ref. 512).')
flags.DEFINE_float('arch_learning_rate', 3e-4,
                   'Adam rate of GDAS / SETN / DARTS architecture logits (reference 3e-4; a short '
                   'run moves them by at most about steps x rate).')
flags.DEFINE_integer('seed', 0, 'Seed of the searches.')
flags.DEFINE_integer('log_every', 20, 'Steps between progress lines.')


def search_config(algorithm: str, steps: int, num_candidates: int) -> CellSearchConfig:
  """The reduced NB201 search of `algorithm` from the flags (`steps` 0: --epochs)."""
  return CellSearchConfig(
      algorithm=algorithm, search_space='nas_bench_201', dataset=FLAGS.dataset,
      image_size=FLAGS.image_size, channels=FLAGS.channels, num_cells=FLAGS.num_cells,
      epochs=FLAGS.epochs, steps=steps, batch_size=FLAGS.batch_size,
      eval_batch_size=FLAGS.eval_batch_size, num_candidates=num_candidates,
      arch_learning_rate=FLAGS.arch_learning_rate, seed=FLAGS.seed,
      checkpoint_every=max(steps, 100), summary_every=FLAGS.log_every,
      log_every=FLAGS.log_every)


def reductions(config: CellSearchConfig, num_train: int) -> Dict[str, Any]:
  """{setting: {'used': ..., 'reference': ...}} of every setting that differs from REFERENCE
  (epochs: the step budget in passes over search_train)."""
  steps = cell_config.total_steps(config, num_train)
  used = {'channels': config.channels, 'num_cells': config.num_cells,
          'image_size': config.image_size, 'batch_size': config.batch_size,
          'epochs': round(steps * config.batch_size / num_train, 3),
          'eval_batch_size': config.eval_batch_size}
  if config.algorithm != 'random':
    used['arch_learning_rate'] = config.arch_learning_rate
  if config.algorithm in ('setn', 'random'):
    used['num_candidates'] = config.resolved_num_candidates
  return {k: {'used': v, 'reference': REFERENCE[k]} for k, v in used.items()
          if v != REFERENCE[k]}


def describe_reductions(reduced: Dict[str, Any]) -> str:
  if not reduced:
    return 'none (reference setup)'
  return ', '.join(f"{k} {v['used']} (reference {v['reference']})" for k, v in reduced.items())


class StepTimer:
  """A `loop.run` step callback recording when each chunk of steps finished."""

  def __init__(self):
    self.start = time.perf_counter()
    self.marks: List[tuple] = []  # (completed steps, seconds since start)

  def __call__(self, step: int, unused_metrics) -> None:
    self.marks.append((step, time.perf_counter() - self.start))

  def seconds_per_step(self) -> Optional[float]:
    """Mean time of the steps after the first UNTIMED_STEPS (None when too few ran)."""
    timed = [m for m in self.marks if m[0] >= UNTIMED_STEPS]
    if len(timed) < 2:
      return None
    (s0, t0), (s1, t1) = timed[0], timed[-1]
    return (t1 - t0) / (s1 - s0)

  def steps_run(self) -> int:
    """Steps run in this process (fewer than the run's when it resumed)."""
    return self.marks[-1][0] - self.marks[0][0] + 1 if self.marks else 0
