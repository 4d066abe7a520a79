"""The one search loop every searcher runs in (TuNAS now; GDAS, SETN, DARTS, PGNAS later).

`run(searcher, strategy, dataset_fn, config, output_dir)` owns what searchers share:

* distributed (train batch, valid batch) pairs from `dataset_fn(start_step)`;
* the global step and a `tf.train.Checkpoint` + `CheckpointManager` in OUT/checkpoints,
  saved every `checkpoint_every` steps and at the end; re-running the same command restores
  the newest readable checkpoint (`recovery`: damaged ones are set aside) and continues from
  its step, and the data streams continue at that step's batch (the batches an uninterrupted
  run would have drawn);
* TensorBoard scalars in OUT/tensorboard and the same scalars as JSON lines in
  OUT/metrics.jsonl (rows after the restored step are dropped on resume);
* a progress line with ETA through absl.logging;
* NaN detection: a non-finite metric stops the run *without saving*, so the last checkpoint
  on disk is the last good state, and raises `SearchDiverged`;
* the final files OUT/arch.json, OUT/summary.json and OUT/report.png (chief only).

The searcher interface is in `tunas_tf/search/searcher.py`.
"""

import dataclasses
import datetime
import json
import math
import os
import shutil
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf
from absl import logging

from tunas_tf import fileio
from tunas_tf.errors import UserError
from tunas_tf.search import recovery
from tunas_tf.search import strategy as strategy_lib
from tunas_tf.search.searcher import SearchContext, Searcher

CHECKPOINT_DIR = 'checkpoints'
TENSORBOARD_DIR = 'tensorboard'
METRICS_FILE = 'metrics.jsonl'
ARCH_FILE = 'arch.json'
SUMMARY_FILE = 'summary.json'
CONFIG_FILE = 'config.json'
REPORT_FILE = 'report.png'

DatasetFn = Callable[[int], Tuple[tf.data.Dataset, tf.data.Dataset]]
StepCallback = Callable[[int, Dict[str, float]], None]


def _field_defaults(config) -> Dict[str, Any]:
  """{field: default} of a config dataclass: what a config written before a field existed
  implicitly had."""
  return {f.name: f.default for f in dataclasses.fields(config)
          if f.default is not dataclasses.MISSING}


def config_changes(previous: dict, config, resumable: Tuple[str, ...]) -> str:
  """'field: old -> new, ...' for each field of the config dataclass `config` (not in
  `resumable`) that differs from the dict `previous`; a field `previous` lacks (written before
  the field existed) counts as its default."""
  current, defaults = config.to_dict(), _field_defaults(config)
  old = lambda k: previous[k] if k in previous else defaults.get(k)
  differ = sorted(k for k in set(previous) | set(current)
                  if k not in resumable and old(k) != current.get(k))
  return ', '.join(f'{k}: {old(k)!r} -> {current.get(k)!r}' for k in differ)


def completed_summary(output_dir: str, config, resumable: Tuple[str, ...]
                      ) -> Optional[Dict[str, Any]]:
  """The summary of a finished run of the config dataclass `config` in OUT, or None if it has
  not finished.

  Raises a UserError if OUT holds a run of another configuration (fields in `resumable` may
  differ: they do not change the search; see `config_changes` for fields added since).
  """
  config_path = os.path.join(output_dir, CONFIG_FILE)
  if not os.path.exists(config_path):
    return None
  changes = config_changes(fileio.read_json(config_path), config, resumable)
  if changes:
    raise UserError(f'{output_dir!r} holds a run with another configuration ({changes}); '
                    'use a new --output_dir or repeat the original flags to resume')
  summary_path = os.path.join(output_dir, SUMMARY_FILE)
  return fileio.read_json(summary_path) if os.path.exists(summary_path) else None


class SearchDiverged(UserError):
  """A metric became NaN or infinite; the run stopped and kept its last good checkpoint."""


@dataclasses.dataclass(frozen=True)
class LoopConfig:
  """How the loop runs (not what it searches).

  Attributes:
    steps: total steps of the search.
    checkpoint_every: save a checkpoint every this many steps (and always at the end).
    summary_every: write TensorBoard scalars and a metrics.jsonl row every this many steps.
    log_every: log a progress line every this many steps.
    steps_per_loop: steps run inside one `tf.function` call (fewer host round trips, e.g.
      on TPUs); chunks also stop at summary, log and checkpoint boundaries.
    max_checkpoints: checkpoints kept on disk.
  """
  steps: int
  checkpoint_every: int = 100
  summary_every: int = 10
  log_every: int = 10
  steps_per_loop: int = 1
  max_checkpoints: int = 3

  def __post_init__(self):
    for name in ('steps', 'checkpoint_every', 'summary_every', 'log_every', 'steps_per_loop',
                 'max_checkpoints'):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f'{name} must be an integer >= 1, got {value!r}')


def distribute(strategy: tf.distribute.Strategy, train: tf.data.Dataset,
               valid: tf.data.Dataset):
  """Zips global-batch datasets into (train, valid) pairs split over the replicas."""
  pairs = tf.data.Dataset.zip((train, valid))
  options = tf.data.Options()
  # Each worker reads the whole (cheap, record-level) stream and keeps its own share.
  options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
  return strategy.experimental_distribute_dataset(pairs.with_options(options))


def _batch_shape(dataset: tf.data.Dataset) -> Tuple[int, ...]:
  images_spec = dataset.element_spec[0]
  shape = tuple(images_spec.shape.as_list())
  if shape[0] is None:
    raise ValueError('search datasets must have a static batch size (drop_remainder=True)')
  return shape


def check_batch_divisible(batch_size: int, num_replicas: int, what: str) -> None:
  if batch_size % num_replicas:
    raise UserError(f'{what} {batch_size} is not divisible by the {num_replicas} replicas; '
                    f'use a multiple of {num_replicas}')


def _all_finite(metrics: Dict[str, tf.Tensor]) -> tf.Tensor:
  return tf.reduce_all(tf.stack([tf.reduce_all(tf.math.is_finite(v)) for v in metrics.values()]))


def _make_chunk_fn(searcher: Searcher, strategy: tf.distribute.Strategy, step: tf.Variable,
                   steps_per_loop: int):
  """A function running `num_steps` steps; returns (last metrics, all finite).

  The step is traced once, as a tf.function of one step; with `steps_per_loop` > 1 a
  tf.while_loop calls it, its loop variables initialized from the one-step signature.
  """

  def one_step(iterator):
    train_batch, valid_batch = next(iterator)
    per_replica = strategy.run(searcher.replica_step,
                               args=(train_batch, valid_batch, step.read_value()))
    metrics = {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
               for k, v in per_replica.items()}
    step.assign_add(1)
    return metrics, _all_finite(metrics)

  single = tf.function(one_step)
  if steps_per_loop == 1:
    return lambda iterator, unused_num_steps: single(iterator)

  @tf.function
  def chunk(iterator, num_steps):
    signature = single.get_concrete_function(iterator).structured_outputs[0]
    metrics = {k: tf.zeros(v.shape, v.dtype) for k, v in signature.items()}
    finite = tf.constant(True)
    for _ in tf.range(num_steps):
      if not finite:
        break
      # A call of the traced one-step function, not a second trace of the step.
      metrics, finite = single(iterator)
    return metrics, finite

  return chunk


def _next_boundary(current: int, config: LoopConfig) -> int:
  """The step at which the chunk starting at `current` ends."""
  end = min(config.steps, current + config.steps_per_loop)
  for every in (config.summary_every, config.log_every, config.checkpoint_every):
    end = min(end, (current // every + 1) * every)
  return end


class _MetricsLog:
  """OUT/metrics.jsonl: one JSON row per summary step, consistent with the checkpoints."""

  def __init__(self, path: Optional[str], start_step: int):
    self.path = path
    if path is None or not os.path.exists(path):
      return
    # Rows after the restored step were written by an interrupted run: drop them.
    kept = [row for row in self.read() if row['step'] <= start_step]
    fileio.atomic_write_text(path, ''.join(json.dumps(row) + '\n' for row in kept))

  def read(self) -> List[Dict[str, float]]:
    if self.path is None or not os.path.exists(self.path):
      return []
    with open(self.path) as f:
      return [json.loads(line) for line in f if line.strip()]

  def append(self, step: int, metrics: Dict[str, float]) -> None:
    if self.path is None:
      return
    with open(self.path, 'a') as f:
      f.write(json.dumps({'step': step, **metrics}) + '\n')


def _format_duration(seconds: float) -> str:
  return str(datetime.timedelta(seconds=int(round(max(seconds, 0.0)))))


class _Progress:
  """Progress lines with a rate measured after the first (tracing) chunk."""

  def __init__(self, start_step: int, total: int, keys: Tuple[str, ...]):
    self.total = total
    self.keys = keys
    self.start = time.time()
    self.mark: Optional[Tuple[float, int]] = None  # (time, step) after the first chunk.
    self.start_step = start_step

  def log(self, current: int, metrics: Dict[str, float]) -> None:
    now = time.time()
    if self.mark is None:
      self.mark = (now, current)
      rate = (now - self.start) / max(current - self.start_step, 1)
    else:
      rate = (now - self.mark[0]) / max(current - self.mark[1], 1)
    shown = '  '.join(f'{k} {metrics[k]:.4g}' for k in self.keys if k in metrics)
    logging.info('step %d/%d (%.1f%%)  %s  |  %.3f s/step  ETA %s', current, self.total,
                 100.0 * current / self.total, shown, rate,
                 _format_duration(rate * (self.total - current)))


def _output_paths(output_dir: str, strategy: tf.distribute.Strategy) -> Tuple[bool, str, str]:
  """(is chief, this process's checkpoint dir, the chief's checkpoint dir)."""
  chief = strategy_lib.is_chief(strategy)
  chief_dir = os.path.join(output_dir, CHECKPOINT_DIR)
  if chief:
    return True, chief_dir, chief_dir
  task_type, task_id = strategy_lib.task(strategy)
  # Every worker takes part in saving (it is collective), but only the chief's copy is kept.
  return False, os.path.join(output_dir, '.workers', f'{task_type}_{task_id}'), chief_dir


def run(searcher: Searcher, strategy: tf.distribute.Strategy, dataset_fn: DatasetFn,
        config: LoopConfig, output_dir: str, seed: int = 0,
        step_callback: Optional[StepCallback] = None) -> Dict[str, Any]:
  """Runs (or resumes) a search and writes its final files.

  Args:
    searcher: the searcher (see `tunas_tf.search.searcher`).
    strategy: the distribution strategy.
    dataset_fn: start_step -> (train, valid) datasets of global batches with static shapes,
      repeated forever, starting at batch start_step of the run's streams.
    config: the LoopConfig.
    output_dir: the run directory.
    seed: the run seed, handed to the searcher.
    step_callback: called on the host after every chunk with (completed steps, metrics).

  Returns:
    The summary written to OUT/summary.json (the chief's; other workers get the same dict
    without writing it).

  Raises:
    SearchDiverged: a metric became non-finite.
  """
  chief, ckpt_dir, chief_ckpt_dir = _output_paths(output_dir, strategy)
  os.makedirs(ckpt_dir, exist_ok=True)
  train_ds, valid_ds = dataset_fn(0)
  num_replicas = strategy.num_replicas_in_sync
  train_shape, valid_shape = _batch_shape(train_ds), _batch_shape(valid_ds)
  check_batch_divisible(train_shape[0], num_replicas, 'batch size')
  check_batch_divisible(valid_shape[0], num_replicas, 'validation batch size')
  context = SearchContext(strategy, num_replicas, config.steps, seed, train_shape, valid_shape)
  with strategy.scope():
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name='global_step',
                       aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    searcher.build(context)
  checkpoint = tf.train.Checkpoint(step=step, **searcher.trackables())
  # Before the manager reads the index: a damaged newest checkpoint is set aside first.
  latest = recovery.restore_newest_good(checkpoint, chief_ckpt_dir, set_aside=chief)
  if latest:
    logging.info('Resuming from %s', latest)
  manager = tf.train.CheckpointManager(checkpoint, ckpt_dir, config.max_checkpoints,
                                       step_counter=step)
  start_step = int(step.numpy())
  if start_step > config.steps:
    raise UserError(f'{output_dir!r} holds a checkpoint at step {start_step}, beyond the '
                    f'{config.steps} steps requested; use a new output directory')
  metrics_log = _MetricsLog(os.path.join(output_dir, METRICS_FILE) if chief else None, start_step)
  writer = (tf.summary.create_file_writer(os.path.join(output_dir, TENSORBOARD_DIR)) if chief
            else tf.summary.create_noop_writer())
  metrics = _train(searcher, strategy, dataset_fn, config, step, start_step, manager, writer,
                   metrics_log, step_callback, latest)
  summary = _finish(searcher, config, output_dir, chief, start_step, metrics, metrics_log,
                    num_replicas)
  if not chief:
    shutil.rmtree(ckpt_dir, ignore_errors=True)
  return summary


def _train(searcher, strategy, dataset_fn, config, step, start_step, manager, writer,
           metrics_log, step_callback, restored) -> Dict[str, float]:
  """The step loop; returns the metrics of the last step run (empty if none ran)."""
  current = start_step
  if current >= config.steps:
    return {}
  train_ds, valid_ds = dataset_fn(start_step)
  iterator = iter(distribute(strategy, train_ds, valid_ds))
  chunk = _make_chunk_fn(searcher, strategy, step, config.steps_per_loop)
  progress = _Progress(start_step, config.steps, searcher.progress_keys)
  last_saved = restored
  metrics: Dict[str, float] = {}
  logging.info('Searching steps %d..%d on %d replica(s)', start_step, config.steps,
               strategy.num_replicas_in_sync)
  while current < config.steps:
    end = _next_boundary(current, config)
    out, finite = chunk(iterator, tf.constant(end - current, tf.int64))
    metrics = {k: float(v.numpy()) for k, v in out.items()}
    if not bool(finite.numpy()):
      _diverged(metrics, current, end, last_saved)
    current = end
    if current % config.summary_every == 0 or current == config.steps:
      _write_summaries(writer, current, metrics, searcher.host_summaries())
      metrics_log.append(current, metrics)
    if current % config.log_every == 0 or current == config.steps:
      progress.log(current, metrics)
    if current % config.checkpoint_every == 0 or current == config.steps:
      last_saved = manager.save(checkpoint_number=current)
    if step_callback is not None:
      step_callback(current, metrics)
  writer.flush()
  return metrics


def _diverged(metrics: Dict[str, float], begin: int, end: int, last_saved: Optional[str]):
  bad = {k: v for k, v in metrics.items() if not math.isfinite(v)}
  where = f'step {end}' if end - begin == 1 else f'steps {begin + 1}..{end}'
  kept = (f'the last good checkpoint {last_saved!r} is kept' if last_saved else
          'no checkpoint had been saved yet')
  raise SearchDiverged(f'Search diverged at {where}: {bad} (loss {metrics.get("loss")}); '
                       f'stopped without saving, {kept}. Lower the learning rates and re-run '
                       f'with a new output directory')


def _write_summaries(writer, step: int, metrics: Dict[str, float],
                     extra: Dict[str, float]) -> None:
  with writer.as_default(step=step):
    for key, value in {**metrics, **extra}.items():
      tf.summary.scalar(key, value)


def _finish(searcher: Searcher, config: LoopConfig, output_dir: str, chief: bool,
            start_step: int, metrics: Dict[str, float], metrics_log: _MetricsLog,
            num_replicas: int) -> Dict[str, Any]:
  arch = searcher.final_architecture()
  space = searcher.space
  history = metrics_log.read()
  if not metrics and history:
    metrics = {k: v for k, v in history[-1].items() if k != 'step'}
  summary = {'arch': space.to_string(arch), 'search_space': arch.space,
             'indices': list(arch.indices), 'steps': config.steps,
             'resumed_from_step': start_step, 'num_replicas': num_replicas,
             'final_metrics': metrics, **searcher.summary_extra(arch)}
  if chief:
    fileio.atomic_write_text(os.path.join(output_dir, ARCH_FILE), space.to_json(arch))
    write_report(os.path.join(output_dir, REPORT_FILE), history, searcher.report_panels)
    fileio.atomic_write_json(os.path.join(output_dir, SUMMARY_FILE), summary)
  logging.info('Search done: %s', summary['arch'])
  return summary


def write_report(path: str, history: List[Dict[str, float]], panels) -> None:
  """Plots the metrics.jsonl rows: one panel per (title, keys) entry of `panels`."""
  # The object-oriented Agg API sets no global matplotlib state (unlike pyplot).
  from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=g-import-not-at-top
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  figure = Figure(figsize=(5 * len(panels), 3.6), tight_layout=True)
  FigureCanvasAgg(figure)
  steps = np.array([row['step'] for row in history])
  for i, (title, keys) in enumerate(panels):
    axes = figure.add_subplot(1, len(panels), i + 1)
    for key in keys:
      values = np.array([row.get(key, np.nan) for row in history], dtype=float)
      if len(values):
        axes.plot(steps, values, label=key, marker='.' if len(values) < 30 else None)
    axes.set_title(title)
    axes.ticklabel_format(axis='y', useOffset=False)  # Entropy moves in small steps.
    axes.set_xlabel('step')
    axes.grid(alpha=0.3)
    if len(keys) > 1:
      axes.legend(fontsize='small')
  tmp = f'{path}.tmp.png'
  figure.savefig(tmp, dpi=80)
  os.replace(tmp, path)
