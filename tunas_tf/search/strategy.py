"""Distribution strategies by name: one place that turns `--strategy` into a tf.distribute object.

* `default`: TensorFlow's default strategy (one device, no replication).
* `mirrored`: synchronous replicas on every local GPU; on a machine without GPUs, on every
  logical CPU device (split the CPU with `tf.config.set_logical_device_configuration` before
  TensorFlow initializes its devices, e.g. in tests).
* `multi_worker`: MultiWorkerMirroredStrategy; the cluster comes from the TF_CONFIG variable.
* `tpu`: TPUStrategy on the TPU at `tpu` (a name or grpc:// address; '' means a local TPU VM).

`is_chief(strategy)` says whether this process writes the run's files; the others still take
part in every collective (including checkpoint saves) but write to scratch directories.
"""

import json
import os
from typing import Tuple

import tensorflow as tf
from absl import logging

from tunas_tf.errors import UserError

STRATEGIES = ('default', 'mirrored', 'multi_worker', 'tpu')


def list_strategies() -> Tuple[str, ...]:
  return STRATEGIES


def check_name(name: str) -> None:
  if name not in STRATEGIES:
    raise UserError(f'Unknown strategy {name!r}; known strategies: {", ".join(STRATEGIES)}')


def make_strategy(name: str, tpu: str = '') -> tf.distribute.Strategy:
  """Creates the strategy `name` (see the module docstring).

  Raises:
    UserError: unknown name, a malformed or missing TF_CONFIG, an unreachable TPU.
  """
  check_name(name)
  if name == 'default':
    return tf.distribute.get_strategy()
  if name == 'mirrored':
    return _mirrored()
  if name == 'multi_worker':
    _check_tf_config()
    return tf.distribute.MultiWorkerMirroredStrategy()
  return _tpu(tpu)


def _mirrored() -> tf.distribute.MirroredStrategy:
  gpus = tf.config.list_logical_devices('GPU')
  if gpus:
    return tf.distribute.MirroredStrategy([d.name for d in gpus])
  cpus = [d.name for d in tf.config.list_logical_devices('CPU')]
  if len(cpus) == 1:
    logging.warning('strategy=mirrored found no GPU and a single CPU device; running one '
                    'replica (split the CPU into logical devices to get more)')
  # NCCL needs GPUs; on CPU devices reduce through the first device.
  return tf.distribute.MirroredStrategy(cpus, cross_device_ops=tf.distribute.ReductionToOneDevice())


def _check_tf_config() -> None:
  raw = os.environ.get('TF_CONFIG', '')
  if not raw:
    raise UserError('strategy=multi_worker needs the TF_CONFIG environment variable, e.g. '
                    '{"cluster": {"worker": ["host1:port", "host2:port"]}, '
                    '"task": {"type": "worker", "index": 0}}')
  try:
    config = json.loads(raw)
  except json.JSONDecodeError as e:
    raise UserError(f'TF_CONFIG is not valid JSON ({e}): {raw!r:.200}') from None
  if not isinstance(config, dict) or 'cluster' not in config or 'task' not in config:
    raise UserError(f'TF_CONFIG needs "cluster" and "task" entries, got {raw!r:.200}')


def _tpu(address: str) -> tf.distribute.TPUStrategy:
  try:
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=address or None)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
  except (ValueError, RuntimeError, tf.errors.OpError) as e:
    raise UserError(f'Could not connect to the TPU {address!r}: {e}') from None
  return tf.distribute.TPUStrategy(resolver)


def task(strategy: tf.distribute.Strategy) -> Tuple[str, int]:
  """(task type, task id) of this process; ('chief', 0) without a cluster."""
  resolver = getattr(strategy, 'cluster_resolver', None)
  task_type = getattr(resolver, 'task_type', None) if resolver is not None else None
  if not task_type:
    return 'chief', 0
  return task_type, int(getattr(resolver, 'task_id', 0) or 0)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
  """Whether this process writes checkpoints, summaries and the final files."""
  task_type, task_id = task(strategy)
  if task_type == 'chief':
    return True
  if task_type != 'worker':
    return False
  # Without a 'chief' job, worker 0 plays the chief (the Keras convention).
  cluster = strategy.cluster_resolver.cluster_spec().as_dict()
  return 'chief' not in cluster and task_id == 0


def is_tpu(strategy: tf.distribute.Strategy) -> bool:
  return isinstance(strategy, tf.distribute.TPUStrategy)
