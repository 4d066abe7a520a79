"""Tests for tunas_tf.errors: the UserError type and the unknown-name message."""

import pytest

from tunas_tf import errors


def test_user_error_is_a_value_error():
  # Callers that only know ValueError (e.g. argument parsing code) must still catch it.
  with pytest.raises(ValueError, match='bad width'):
    raise errors.UserError('bad width')


def test_unknown_name_returns_user_error_without_raising():
  error = errors.unknown_name('space', 'nope', ['a'])
  assert type(error) is errors.UserError


def test_unknown_name_message_names_the_value_and_sorted_known_names():
  error = errors.unknown_name('search space', 'mobilenet', {'proxylessnas', 'darts', 'nasbench201'})
  assert str(error) == (
      "Unknown search space 'mobilenet'; known search spaces: darts, nasbench201, proxylessnas")


def test_unknown_name_quotes_the_received_value_with_repr():
  # repr shows stray whitespace and the type, which is the usual cause of a "typo".
  message = str(errors.unknown_name('dataset', 'cifar10 ', ['cifar10']))
  assert "'cifar10 '" in message
  assert str(errors.unknown_name('dataset', 10, ['cifar10'])).startswith('Unknown dataset 10;')


def test_unknown_name_accepts_any_iterable_of_names():
  known = {'b': 1, 'a': 2}
  from_keys = str(errors.unknown_name('op', 'c', known.keys()))
  from_generator = str(errors.unknown_name('op', 'c', (name for name in known)))
  assert from_keys == from_generator == "Unknown op 'c'; known ops: a, b"
