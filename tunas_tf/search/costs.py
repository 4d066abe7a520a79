"""Cost-model plumbing of the search: protocol checks, range checks, the in-graph call.

A cost model is any object with (see notes/SEARCH_INTERFACES.md and latency/cost_model.py):

  space_name: str
  image_size: int
  predict_ms(indices) -> float
  predict_many(indices_2d) -> np.ndarray        # [n, num_decisions] int -> [n] float64
  latency_range_ms() -> (min, max)

The search evaluates T(alpha) of each replica's sampled architecture on the host through
`tf.numpy_function`, inside the compiled step.
"""

from typing import Any, Tuple

import numpy as np
import tensorflow as tf

from tunas_tf.errors import UserError, unknown_name

PROTOCOL = ('space_name', 'image_size', 'predict_ms', 'predict_many', 'latency_range_ms')
COST_MODELS = ('table', 'macs')


def check_cost_model_choice(cost_model: str, latency_table: str) -> None:
  """A UserError for an unknown cost model, or for cost_model='table' without a table."""
  if cost_model not in COST_MODELS:
    raise unknown_name('cost model', cost_model, COST_MODELS)
  if cost_model == 'table' and not latency_table:
    raise UserError('cost_model=table needs a latency table: it needs '
                    '--latency_table=TABLE.json, or --cost_model=macs for a MACs-based estimate')


def make_cost_model(kind: str, latency_table: str, space: Any, image_size: int,
                    num_classes: int) -> Any:
  """The cost model of a search: a calibrated latency table or the MACs-based estimate.

  Args:
    kind: 'table' or 'macs'.
    latency_table: path of the table JSON (kind='table').
    space: the searched space (a registered name or a mobile `SearchSpace`).
    image_size: the searched input size.
    num_classes: classifier width (the MACs model counts the classifier).

  Raises:
    UserError: unknown kind; a missing, corrupt or mismatched table (from `latency`).
  """
  # Imported here: `latency` sits beside `search` and pulls in its own dependencies.
  from latency import cost_model as latency_cost_model  # pylint: disable=g-import-not-at-top
  space_name = space if isinstance(space, str) else space.name
  if kind == 'macs':
    model = latency_cost_model.macs_cost_model(space, image_size, num_classes=num_classes)
  elif kind == 'table':
    model = latency_cost_model.load_cost_model(latency_table, space, image_size)
  else:
    raise unknown_name('cost model', kind, COST_MODELS)
  check_cost_model(model, space_name, image_size)
  return model


def check_cost_model(cost_model: Any, space_name: str, image_size: int) -> Tuple[float, float]:
  """Checks `cost_model` fits the search; returns its (min, max) latency over the space.

  Raises:
    UserError: the model lacks part of the protocol, or was built for another space or size.
  """
  missing = [name for name in PROTOCOL if not hasattr(cost_model, name)]
  if missing:
    raise UserError(f'Cost model {cost_model!r} lacks {", ".join(missing)}')
  if cost_model.space_name != space_name:
    raise UserError(f'The latency table / cost model is for search space '
                    f'{cost_model.space_name!r}, but the search uses {space_name!r}; '
                    'profile a table for this space')
  if int(cost_model.image_size) != int(image_size):
    raise UserError(f'The latency table / cost model is for image size '
                    f'{cost_model.image_size}, but the search uses {image_size}; '
                    'profile a table at this size or change --image_size')
  low, high = (float(x) for x in cost_model.latency_range_ms())
  return low, high


def check_target(target_ms: float, latency_range: Tuple[float, float], space_name: str) -> None:
  """A target outside [min, max] of the space can never be met: reject it before training."""
  low, high = latency_range
  if not low <= target_ms <= high:
    raise UserError(f'target_latency_ms={target_ms!r} is outside the latency range of search '
                    f'space {space_name!r} under this cost model: [{low:.3f}, {high:.3f}] ms; '
                    'pick a target inside it')


def tf_predict(cost_model: Any, indices: tf.Tensor, on_tpu: bool = False) -> tf.Tensor:
  """float32 scalar: the cost model's latency of one architecture, evaluated on the host.

  Args:
    cost_model: a cost model (the protocol above).
    indices: int32 [num_decisions].
    on_tpu: wrap the host call in `tf.tpu.outside_compilation` (TPU programs cannot run
      Python).
  """
  def predict(batch):
    return np.asarray(cost_model.predict_many(np.asarray(batch, np.int64)), np.float32)

  def host_call(batch):
    return tf.numpy_function(predict, [batch], tf.float32, stateful=False)

  batch = indices[tf.newaxis]
  out = tf.tpu.outside_compilation(host_call, batch) if on_tpu else host_call(batch)
  return tf.reshape(out, [])
