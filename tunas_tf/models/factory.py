"""One entry point for every space family: mobile (TuNAS) and cell (NB201, DARTS, SETN, PGNAS)."""

from typing import Optional, Union

import keras

from tunas_tf.errors import UserError
from tunas_tf.models import macs
from tunas_tf.space import registry
from tunas_tf.space.architecture import Architecture
from tunas_tf.space.search_space import SearchSpace


def _space(space: Union[str, SearchSpace]) -> SearchSpace:
  return registry.get_space(space) if isinstance(space, str) else space


def build_network(space: Union[str, SearchSpace], arch: Architecture, num_classes: int,
                  image_size: int, dropout_rate: float = 0.0,
                  weight_decay: Optional[float] = None) -> keras.Model:
  """The stand-alone classifier of `arch`, whatever the family of its space.

  Args:
    space: a `SearchSpace` or a registered name.
    arch: an `Architecture` of `space`.
    num_classes: number of logits.
    image_size: square input size.
    dropout_rate: dropout before the classifier (mobile spaces only).
    weight_decay: L2 weight decay; None takes the family's reference default (TuNAS 4e-5,
      NAS-Bench-201 / DARTS 5e-4).
  """
  space = _space(space)
  if space.family == 'mobile':
    from tunas_tf.models.standalone import build_model  # pylint: disable=g-import-not-at-top
    kwargs = {} if weight_decay is None else {'weight_decay': weight_decay}
    return build_model(space, arch, num_classes=num_classes, image_size=image_size,
                       dropout_rate=dropout_rate, **kwargs)
  if dropout_rate:
    raise UserError(f'dropout_rate is only supported for mobile spaces, not {space.name!r} '
                    f'({space.family}); got {dropout_rate!r}')
  from tunas_tf.models.cell_network import build_cell_model  # pylint: disable=g-import-not-at-top
  kwargs = {} if weight_decay is None else {'weight_decay': weight_decay}
  return build_cell_model(space, arch, num_classes=num_classes, image_size=image_size, **kwargs)


def network_macs(space: Union[str, SearchSpace], arch: Architecture, image_size: int,
                 num_classes: int) -> Optional[int]:
  """Analytic MACs for mobile spaces; None where no counter exists yet (cell spaces)."""
  space = _space(space)
  if space.family != 'mobile':
    return None
  return macs.count_macs(space, arch, image_size, num_classes)
