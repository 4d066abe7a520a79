"""The search-space language and the registered spaces (pure Python, no TensorFlow)."""

from tunas_tf.space.architecture import Architecture
from tunas_tf.space.registry import (get_reference, get_space, list_references, list_spaces,
                                     parse_architecture)
from tunas_tf.space.schema import FILTERS_TAG, OP_TAG, Decision, OneOf
from tunas_tf.space.search_space import SearchSpace
