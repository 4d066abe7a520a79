"""Models built from (space, architecture).

`macs` is pure Python and imported eagerly; the Keras builder (`build_model`, `build_layer`) is
imported on first use so that cost code can count MACs without loading TensorFlow.
"""

from tunas_tf.models.macs import (classifier_macs, count_macs, count_model_params, count_params,
                                  layer_macs, layer_params)

_LAZY = {'build_model', 'build_layer', 'classifier'}


def __getattr__(name):
  if name in _LAZY:
    from tunas_tf.models import standalone  # pylint: disable=g-import-not-at-top
    return getattr(standalone, name)
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
