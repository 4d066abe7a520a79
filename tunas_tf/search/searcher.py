"""The narrow interface every searcher implements for `tunas_tf.search.loop.run`.

The loop owns everything a searcher should not care about: the strategy and its scope, the
distributed (train batch, valid batch) pairs, the global step, checkpoints, TensorBoard,
progress, NaN detection and the output files. A searcher owns its variables and its step.

Call order (all on every worker of a cluster):

  1. `build(context)` under `strategy.scope()`: create every variable (models, optimizers with
     their slots, policy parameters), so a checkpoint can be restored right after.
  2. `trackables()`: the objects to checkpoint, by name.
  3. `replica_step(train_batch, valid_batch, step)` inside `strategy.run`, inside a
     `tf.function`, once per step and replica. It returns a flat dict of scalar float32
     tensors; the loop averages them over replicas. It must include 'loss' (NaN detection).
  4. `host_summaries()` (eager, between steps): extra scalars for TensorBoard, such as
     per-decision probabilities.
  5. `final_architecture()` and `summary_extra(arch)` once at the end, for arch.json and
     summary.json.

A searcher has a `space` attribute (the searched `SearchSpace`). Class attributes name the
metrics the loop shows: `progress_keys` in the progress line, `report_panels` in report.png
((title, metric keys) per panel).
"""

import abc
import dataclasses
from typing import Any, Dict, Mapping, Sequence, Tuple

import tensorflow as tf

from tunas_tf.space.architecture import Architecture
from tunas_tf.space.search_space import SearchSpace


@dataclasses.dataclass(frozen=True)
class SearchContext:
  """What a searcher may know about the run when it builds.

  Attributes:
    strategy: the distribution strategy (already entered by the loop when `build` runs).
    num_replicas: replicas in sync over the whole cluster.
    total_steps: steps of the whole search (schedules depend on it).
    seed: the run seed (stateless randomness derives from (seed, step, replica)).
    train_batch_shape: global [batch, height, width, channels] of the training images.
    valid_batch_shape: the same for the validation images.
  """
  strategy: tf.distribute.Strategy
  num_replicas: int
  total_steps: int
  seed: int
  train_batch_shape: Tuple[int, ...]
  valid_batch_shape: Tuple[int, ...]

  @property
  def per_replica_train_batch(self) -> int:
    return self.train_batch_shape[0] // self.num_replicas

  @property
  def per_replica_valid_batch(self) -> int:
    return self.valid_batch_shape[0] // self.num_replicas


class Searcher(abc.ABC):
  """Base class of searchers driven by `loop.run` (see the module docstring)."""

  space: SearchSpace  # The searched space (arch.json and the string form of the result).
  progress_keys: Tuple[str, ...] = ('loss',)
  report_panels: Tuple[Tuple[str, Tuple[str, ...]], ...] = (('loss', ('loss',)),)

  @abc.abstractmethod
  def build(self, context: SearchContext) -> None:
    """Creates every variable; runs under `context.strategy.scope()`."""

  @abc.abstractmethod
  def trackables(self) -> Mapping[str, Any]:
    """{name: trackable} to save in checkpoints (the loop adds its step counter)."""

  @abc.abstractmethod
  def replica_step(self, train_batch: Any, valid_batch: Any,
                   step: tf.Tensor) -> Dict[str, tf.Tensor]:
    """One search step on one replica; returns scalar float32 metrics including 'loss'."""

  def host_summaries(self) -> Dict[str, float]:
    """Extra TensorBoard scalars computed eagerly between steps (default: none)."""
    return {}

  @abc.abstractmethod
  def final_architecture(self) -> Architecture:
    """The architecture the search returns (e.g. the most likely one of the policy)."""

  def summary_extra(self, arch: Architecture) -> Dict[str, Any]:
    """Searcher-specific entries of summary.json (JSON-ready values)."""
    return {}


def metric_keys(panels: Sequence[Tuple[str, Sequence[str]]]) -> Tuple[str, ...]:
  """All metric keys named by report panels, in order, without repeats."""
  seen = []
  for _, keys in panels:
    seen.extend(k for k in keys if k not in seen)
  return tuple(seen)
