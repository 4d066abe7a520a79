"""The TuNAS random-search baseline: uniform architectures rejection-sampled to T0 +- tolerance.

Paper Sec. 5 ("Random Search"): "we perform rejection sampling in the range of T0 +- 1 ms to
obtain N random models", which are then trained stand-alone (`launch.train --arch=FILE`). Like
TuNAS's `tools/sample_random_architectures.py`, every decision is drawn independently and
uniformly (the controller's initial policy), and only architectures whose predicted latency
falls inside the window are kept.

The sampling is driven through keras-tuner: one hyperparameter per decision (a `Choice` of
its indices, nested in `conditional_scope`s so decisions under a skipped layer are inactive,
exactly as in the search space), a custom `Oracle` whose `populate_space` does the rejection
sampling (and refuses duplicates of earlier trials), and a tuner whose trial just evaluates
the cost model. keras-tuner keeps the trials in OUT/oracle, so re-running the same command
continues an interrupted run.

Output: OUT/architectures.jsonl, one JSON object per architecture (trial, space, indices,
string form, predicted_latency_ms), and OUT/summary.json.
"""

import dataclasses
import json
import os
from typing import Any, Dict, List

import keras_tuner
import numpy as np
from absl import logging

from tunas_tf import checks
from tunas_tf import fileio
from tunas_tf import space as space_lib
from tunas_tf.errors import UserError
from tunas_tf.search import costs
from tunas_tf.space.architecture import Architecture
from tunas_tf.space.search_space import SearchSpace

OBJECTIVE = 'latency_error_ms'
ARCHITECTURES_FILE = 'architectures.jsonl'
_CANDIDATES_PER_ROUND = 4096


@dataclasses.dataclass(frozen=True)
class RandomSearchConfig:
  """Random architectures near a latency target.

  Attributes:
    search_space: registered space name.
    image_size: input size the latencies are predicted for.
    target_latency_ms: T0.
    tolerance_ms: keep architectures with |T - T0| <= tolerance_ms (paper: 1 ms).
    num_samples: how many distinct architectures to return (N).
    cost_model: 'table' or 'macs'.
    latency_table: the table JSON (cost_model='table').
    num_classes: classifier width (used by the MACs cost model).
    max_attempts: uniform draws per architecture before giving up.
    seed: seed of the draws (each trial draws from its own (seed, trial) stream).
  """
  search_space: str = 'proxylessnas'
  image_size: int = 224
  target_latency_ms: float = 84.0
  tolerance_ms: float = 1.0
  num_samples: int = 20
  cost_model: str = 'table'
  latency_table: str = ''
  num_classes: int = 1000
  max_attempts: int = 200_000
  seed: int = 0

  def __post_init__(self):
    for name in ('image_size', 'num_samples', 'num_classes', 'max_attempts'):
      checks.int_at_least(name, getattr(self, name), 1)
    checks.int_at_least('seed', self.seed, 0)
    checks.number_above('target_latency_ms', self.target_latency_ms, 0)
    checks.number_above('tolerance_ms', self.tolerance_ms, 0, allow_equal=True)
    costs.check_cost_model_choice(self.cost_model, self.latency_table)

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)


def space_hyperparameters(space: SearchSpace) -> keras_tuner.HyperParameters:
  """One hyperparameter per decision, named by its path, conditional on its ancestors."""
  hp = keras_tuner.HyperParameters()
  # Parents follow their children in traversal order; register parents first.
  for d in reversed(space.decisions):
    _register(hp, d, _conditions(space, d))
  return hp


def _conditions(space: SearchSpace, decision) -> List[tuple]:
  """[(parent path, choice)] from the outermost ancestor inwards."""
  chain = []
  child = decision
  while child.parent is not None:
    chain.append((space.decisions[child.parent].path, child.parent_choice))
    child = space.decisions[child.parent]
  return chain[::-1]


def _register(hp: keras_tuner.HyperParameters, decision, conditions: List[tuple]) -> None:
  if conditions:
    path, choice = conditions[0]
    with hp.conditional_scope(path, [choice]):
      _register(hp, decision, conditions[1:])
    return
  if decision.num_choices == 1:
    hp.Fixed(decision.path, 0)
  else:
    hp.Choice(decision.path, list(range(decision.num_choices)), ordered=False)


def values_to_architecture(space: SearchSpace, values: Dict[str, Any]) -> Architecture:
  """The canonical architecture of a trial's values (inactive decisions are absent: 0)."""
  indices = tuple(int(values.get(d.path, 0)) for d in space.decisions)
  return space.canonical(Architecture(space.name, indices))


def uniform_candidates(space: SearchSpace, rng: np.random.Generator, n: int) -> np.ndarray:
  """[n, num_decisions] canonical architectures, every decision independently uniform."""
  columns = [rng.integers(0, d.num_choices, size=n) for d in space.decisions]
  indices = np.stack(columns, axis=1).astype(np.int64)
  active = np.ones_like(indices, dtype=bool)
  for d in reversed(space.decisions):  # Parents first (post-order).
    if d.parent is not None:
      active[:, d.index] = active[:, d.parent] & (indices[:, d.parent] == d.parent_choice)
  return np.where(active, indices, 0)


class LatencyRejectionOracle(keras_tuner.Oracle):
  """A keras-tuner Oracle proposing uniform architectures within T0 +- tolerance.

  Args:
    space: the search space.
    cost_model: predicts latencies (`predict_many`).
    target_ms: T0.
    tolerance_ms: half-width of the accepted window.
    max_trials: number of architectures to propose.
    max_attempts: uniform draws per trial before giving up with a UserError.
    seed: seed; trial k draws from the stream (seed, k), so reruns reproduce the proposals.
  """

  def __init__(self, space: SearchSpace, cost_model: Any, target_ms: float,
               tolerance_ms: float, max_trials: int, max_attempts: int, seed: int):
    super().__init__(objective=keras_tuner.Objective(OBJECTIVE, 'min'), max_trials=max_trials,
                     hyperparameters=space_hyperparameters(space), allow_new_entries=False,
                     tune_new_entries=False, seed=seed + 1)
    self.space = space
    self.cost_model = cost_model
    self.target_ms = float(target_ms)
    self.tolerance_ms = float(tolerance_ms)
    self.max_attempts = int(max_attempts)
    self.draw_seed = int(seed)

  def populate_space(self, trial_id: str) -> Dict[str, Any]:
    rng = np.random.default_rng([self.draw_seed, int(trial_id)])
    drawn = 0
    while drawn < self.max_attempts:
      n = min(_CANDIDATES_PER_ROUND, self.max_attempts - drawn)
      candidates = uniform_candidates(self.space, rng, n)
      drawn += n
      latency = np.asarray(self.cost_model.predict_many(candidates))
      for row in np.flatnonzero(np.abs(latency - self.target_ms) <= self.tolerance_ms):
        values = self._values(candidates[row])
        if not self._duplicate(values):
          return {'status': keras_tuner.engine.trial.TrialStatus.RUNNING, 'values': values}
    raise UserError(
        f'No new architecture of {self.space.name!r} within {self.target_ms} +- '
        f'{self.tolerance_ms} ms after {drawn} uniform draws; widen --tolerance_ms, move '
        f'--target_latency_ms towards the typical latency, or lower --num_samples')

  def _values(self, indices: np.ndarray) -> Dict[str, int]:
    active = self.space.active_mask(tuple(int(i) for i in indices))
    return {d.path: int(indices[d.index]) for d in self.space.decisions if active[d.index]}


class _LatencyTuner(keras_tuner.engine.base_tuner.BaseTuner):
  """A 'trial' only evaluates the cost model: the architectures are trained later."""

  def __init__(self, oracle: LatencyRejectionOracle, directory: str):
    super().__init__(oracle, directory=directory, project_name='oracle', overwrite=False)

  def run_trial(self, trial, *unused_args, **unused_kwargs):
    arch = values_to_architecture(self.oracle.space, trial.hyperparameters.values)
    latency = self.oracle.cost_model.predict_ms(arch.indices)
    return {OBJECTIVE: abs(latency - self.oracle.target_ms)}

  def save_model(self, trial_id, model, step=0):
    pass  # No model is built.

  def load_model(self, trial):
    raise NotImplementedError('random search trials have no model')


def random_search(config: RandomSearchConfig, output_dir: str) -> Dict[str, Any]:
  """Samples `config.num_samples` architectures and writes them to `output_dir`.

  Returns:
    The summary written to OUT/summary.json.
  """
  space = space_lib.get_space(config.search_space)
  if not space.decisions:
    raise UserError(f'Search space {space.name!r} has no decisions; nothing to sample')
  cost_model = costs.make_cost_model(config.cost_model, config.latency_table, space.name,
                                     config.image_size, config.num_classes)
  latency_range = costs.check_cost_model(cost_model, space.name, config.image_size)
  costs.check_target(config.target_latency_ms, latency_range, space.name)
  os.makedirs(output_dir, exist_ok=True)
  _check_same_config(output_dir, config)
  oracle = LatencyRejectionOracle(space, cost_model, config.target_latency_ms,
                                  config.tolerance_ms, config.num_samples, config.max_attempts,
                                  config.seed)
  tuner = _LatencyTuner(oracle, output_dir)
  tuner.search(verbose=0)
  rows = []
  for trial_id in oracle.start_order:
    trial = oracle.trials[trial_id]
    arch = values_to_architecture(space, trial.hyperparameters.values)
    rows.append({'trial': trial_id, 'space': space.name, 'indices': list(arch.indices),
                 'arch': space.to_string(arch),
                 'predicted_latency_ms': cost_model.predict_ms(arch.indices)})
  fileio.atomic_write_text(os.path.join(output_dir, ARCHITECTURES_FILE),
                           ''.join(json.dumps(row, sort_keys=True) + '\n' for row in rows))
  latencies = np.array([r['predicted_latency_ms'] for r in rows])
  summary = {'config': config.to_dict(), 'num_samples': len(rows),
             'latency_range_ms': list(latency_range),
             'predicted_latency_ms': {'min': float(latencies.min()),
                                      'mean': float(latencies.mean()),
                                      'max': float(latencies.max())},
             'architectures_file': ARCHITECTURES_FILE}
  fileio.atomic_write_json(os.path.join(output_dir, 'summary.json'), summary)
  logging.info('Wrote %d architectures within %.3f +- %.3f ms to %s', len(rows),
               config.target_latency_ms, config.tolerance_ms, output_dir)
  return summary


def _check_same_config(output_dir: str, config: RandomSearchConfig) -> None:
  path = os.path.join(output_dir, 'config.json')
  if os.path.exists(path) and fileio.read_json(path) != config.to_dict():
    raise UserError(f'{output_dir!r} holds a random search with another configuration; use a '
                    'new --output_dir')
  fileio.atomic_write_json(path, config.to_dict())
