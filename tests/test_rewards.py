"""Rewards at known values, the debiased baseline, the REINFORCE loss and the RL schedule."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tunas_tf.errors import UserError
from tunas_tf.search import rewards, schedules
from tunas_tf.search.config import SearchConfig


@pytest.mark.parametrize('quality,cost,target,expected', [
    (0.7, 84.0, 84.0, 0.7),
    (0.7, 92.4, 84.0, 0.7 - 0.1 * 0.1),   # 10% too slow
    (0.7, 75.6, 84.0, 0.7 - 0.1 * 0.1),   # 10% too fast: penalized the same
    (0.5, 42.0, 84.0, 0.5 - 0.1 * 0.5),
])
def test_abs_reward(quality, cost, target, expected):
  assert float(rewards.abs_reward(quality, cost, target)) == pytest.approx(expected, rel=1e-6)


def test_mnas_rewards():
  assert float(rewards.mnas_reward(0.6, 168.0, 84.0)) == pytest.approx(0.6 * 2 ** -0.1, rel=1e-6)
  assert float(rewards.mnas_reward(0.6, 42.0, 84.0)) == pytest.approx(0.6 * 0.5 ** -0.1, rel=1e-6)
  # The hard variant gives no bonus for being faster than the target ...
  assert float(rewards.mnas_hard_reward(0.6, 42.0, 84.0)) == pytest.approx(0.6, rel=1e-6)
  # ... and the same penalty as mnas for being slower.
  assert float(rewards.mnas_hard_reward(0.6, 168.0, 84.0, -0.07)) == pytest.approx(
      0.6 * 2 ** -0.07, rel=1e-6)


def test_rewards_work_on_batched_tensors():
  cost = tf.constant([84.0, 168.0])
  np.testing.assert_allclose(rewards.get_reward('abs')(tf.constant([0.5, 0.5]), cost, 84.0),
                             [0.5, 0.4], rtol=1e-6)


def test_reward_registry_is_strict():
  assert rewards.list_rewards() == ('abs', 'mnas', 'mnas_hard')
  with pytest.raises(UserError, match="Unknown reward 'relu'.*abs, mnas, mnas_hard"):
    rewards.get_reward('relu')
  with pytest.raises(UserError, match='known rewards'):
    SearchConfig(reward='hard', cost_model='macs')


def test_baseline_is_zero_debiased():
  baseline = rewards.MovingAverageBaseline(momentum=0.9)
  assert float(baseline.value()) == 0.0
  # The first average equals the first value: no bias towards the zero initialization.
  assert float(baseline.update(2.0)) == pytest.approx(2.0)
  # Then: (0.9 * 0.1 * 2 + 0.1 * 4) / (0.9 * 0.1 + 0.1) = 0.58 / 0.19.
  assert float(baseline.update(4.0)) == pytest.approx(0.58 / 0.19, rel=1e-6)
  assert float(baseline.value()) == pytest.approx(0.58 / 0.19, rel=1e-6)


def test_baseline_matches_a_hand_loop():
  values = [0.3, 0.5, 0.2, 0.9, 0.4]
  baseline = rewards.MovingAverageBaseline()  # TuNAS momentum 0.95
  numerator = denominator = 0.0
  for v in values:
    numerator = 0.95 * numerator + 0.05 * v
    denominator = 0.95 * denominator + 0.05
    assert float(baseline.update(v)) == pytest.approx(numerator / denominator, rel=1e-6)
  # Debiasing = weights m^(n-1-i) normalized.
  weights = 0.95 ** np.arange(len(values))[::-1]
  assert float(baseline.value()) == pytest.approx(np.dot(weights, values) / weights.sum(),
                                                  rel=1e-6)


def test_bad_momentum_is_a_user_error():
  with pytest.raises(UserError, match='momentum'):
    rewards.MovingAverageBaseline(momentum=1.0)


def test_reinforce_loss_gradient_ignores_the_advantage_path():
  logits = tf.Variable([0.0, 0.0])
  with tf.GradientTape() as tape:
    log_prob = tf.nn.log_softmax(logits)[0]
    advantage = 2.0 * tf.reduce_sum(logits) + 0.5  # Depends on logits; must be stopped.
    loss = rewards.reinforce_loss(advantage, log_prob)
  grad = tape.gradient(loss, logits).numpy()
  # d/dlogits of -0.5 * log softmax_0 = -0.5 * (onehot_0 - p) = [-0.25, 0.25].
  np.testing.assert_allclose(grad, [-0.25, 0.25], rtol=1e-6)
  assert float(loss) == pytest.approx(-0.5 * math.log(0.5))


def test_rl_learning_rate_schedule_at_key_steps():
  config = SearchConfig(steps=1000, batch_size=512, cost_model='macs')
  base = config.scaled_rl_learning_rate
  assert base == pytest.approx(3e-4 * 2)
  delay = config.rl_delay_steps
  assert delay == 250
  rate = lambda step: float(schedules.exponential_rl_learning_rate(step, config.steps, delay,
                                                                   base))
  assert rate(0) == 0.0
  assert rate(delay - 1) == 0.0
  assert rate(delay) == pytest.approx(base)
  assert rate(config.steps) == pytest.approx(10 * base, rel=1e-5)
  assert rate(625) == pytest.approx(base * 10 ** 0.5, rel=1e-5)


@pytest.mark.parametrize('kwargs,message', [
    (dict(op_warmup_fraction=0.3), 'op_warmup_fraction=0.3 is longer than rl_delay_fraction'),
    (dict(filter_warmup_fraction=0.5, rl_delay_fraction=0.4), 'filter_warmup_fraction'),
    (dict(cost_model='table'), 'needs a latency table'),
    (dict(cost_model='lut'), 'known cost models: macs, table'),
    (dict(strategy='horovod'), 'known strategies: default, mirrored'),
    (dict(steps=0), 'steps must be an integer >= 1, got 0'),
    (dict(target_latency_ms=-1.0), 'target_latency_ms must be > 0'),
    (dict(label_smoothing=1.0), 'label_smoothing must be in'),
])
def test_search_config_rejects_bad_values(kwargs, message):
  kwargs = {'cost_model': 'macs', **kwargs}
  with pytest.raises(UserError, match=message):
    SearchConfig(**kwargs)


def test_search_config_round_trips():
  config = SearchConfig(cost_model='macs', steps=10, batch_size=8)
  assert SearchConfig.from_dict(config.to_dict()) == config
  assert config.valid_batch_size == 32
  with pytest.raises(UserError, match="Unknown search config keys \\['stepz'\\]"):
    SearchConfig.from_dict({'stepz': 3})
