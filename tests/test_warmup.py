"""Op and filter warmup (tunas_tf.search.warmup): schedules and mask replacement."""

import numpy as np
import pytest
import tensorflow as tf

from tunas_tf import space as space_lib
from tunas_tf.errors import UserError
from tunas_tf.search import warmup
from tunas_tf.space.schema import FILTERS_TAG, OP_TAG

SPACE = space_lib.get_space('mobilenet_v3_like')  # Both tags, 2 to 7 choices.


def _one_hot_first(space):
  return tuple(tf.one_hot(0, d.num_choices) for d in space.decisions)


def test_probability_at_start_end_of_warmup_and_last_step():
  schedule = warmup.WarmupSchedule.from_fractions(1000)
  assert (schedule.ops_warmup_steps, schedule.filters_warmup_steps) == (250, 250)
  assert schedule.rl_delay_steps == 250
  for p in (schedule.ops_probability, schedule.filters_probability):
    assert float(p(0)) == 1.0
    assert float(p(125)) == pytest.approx(0.5)
    assert float(p(250)) == 0.0
    assert float(p(999)) == 0.0
  assert warmup.warmup_steps(1000) == 250 and warmup.warmup_steps(10, 0.5) == 5


def test_warmups_may_not_outlast_the_rl_delay():
  assert warmup.WarmupSchedule(100, 80, 100).filters_warmup_steps == 80
  with pytest.raises(UserError, match=r'ops_warmup_steps \(101\) is longer than rl_delay_steps '
                                      r'\(100\)'):
    warmup.WarmupSchedule(101, 50, 100)
  with pytest.raises(UserError, match=r'filters_warmup_steps \(101\) is longer than '
                                      r'rl_delay_steps \(100\)'):
    warmup.WarmupSchedule(50, 101, 100)
  with pytest.raises(UserError, match=r'ops_warmup_steps \(250\) is longer than '
                                      r'rl_delay_steps \(200\)'):
    warmup.WarmupSchedule.from_fractions(1000, rl_delay_steps=200)
  with pytest.raises(UserError, match='rl_delay_steps must be an integer >= 0, got -1'):
    warmup.WarmupSchedule(0, 0, -1)
  with pytest.raises(UserError, match=r'ops_fraction must be a number in \[0, 1\], got 1.5'):
    warmup.WarmupSchedule.from_fractions(1000, ops_fraction=1.5)


def test_probability_zero_keeps_and_one_replaces_every_mask():
  masks = _one_hot_first(SPACE)
  kept = warmup.apply_warmup(masks, SPACE, 0.0, 0.0, seed=1)
  for a, b in zip(kept, masks):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  warm = warmup.apply_warmup(masks, SPACE, 1.0, 1.0, seed=1)
  for d, m in zip(SPACE.decisions, warm):
    n = d.num_choices
    expected = np.full(n, 1.0 / n) if d.tag == OP_TAG else np.eye(n)[n - 1]
    np.testing.assert_allclose(m.numpy(), expected, rtol=1e-6)


def test_each_tag_follows_its_own_probability():
  masks = _one_hot_first(SPACE)
  only_ops = warmup.apply_warmup(masks, SPACE, 1.0, 0.0, seed=2)
  only_filters = warmup.apply_warmup(masks, SPACE, 0.0, 1.0, seed=2)
  for d, a, b, m in zip(SPACE.decisions, only_ops, only_filters, masks):
    changed_a = not np.array_equal(a.numpy(), m.numpy())
    changed_b = not np.array_equal(b.numpy(), m.numpy())
    if d.num_choices > 1:
      assert changed_a == (d.tag == OP_TAG) and changed_b == (d.tag == FILTERS_TAG), d.path


def test_replacement_is_independent_per_decision_and_works_compiled():
  replaced = tf.function(lambda p, seed: warmup.warmup_replacements(SPACE, p, p, seed))
  draws = np.stack([replaced(tf.constant(0.3), tf.constant([s, 7], tf.int64)).numpy()
                    for s in range(200)])
  assert draws.shape == (200, SPACE.num_decisions)
  assert abs(draws.mean() - 0.3) < 0.02  # 17,200 independent draws.
  assert 0 < draws.sum(axis=1).min() and draws.sum(axis=1).max() < SPACE.num_decisions
  np.testing.assert_array_equal(draws[0], replaced(tf.constant(0.3), tf.constant([0, 7],
                                                                                 tf.int64)))
  # The masks under tf.function, with tensor probabilities.
  masks = _one_hot_first(SPACE)
  compiled = tf.function(lambda m, p: warmup.apply_warmup(m, SPACE, p, p, seed=3))
  out = compiled(masks, tf.constant(1.0))
  assert float(out[0][0]) == pytest.approx(0.5)  # blocks/0/layers/0/kernel_size: k3 or k5.


def test_wrong_number_of_masks_is_rejected():
  with pytest.raises(UserError, match="'mobilenet_v3_like' has 86 decisions, got 3 masks"):
    warmup.apply_warmup(_one_hot_first(SPACE)[:3], SPACE, 0.5, 0.5, seed=0)
