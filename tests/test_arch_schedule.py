"""Architecture-step remedies for short runs: a weights-only warm-up and a rate scaled to the run."""

import numpy as np
import pytest
import tensorflow as tf

from tunas_tf.errors import UserError
from tunas_tf.search import cell_common, cell_search
from tunas_tf.search.cell_config import CellSearchConfig, resolve_space
from tunas_tf.search.searcher import SearchContext


def _searcher(algorithm: str, **overrides):
  config = CellSearchConfig(algorithm=algorithm, channels=4, num_cells=1, image_size=16,
                            batch_size=8, **overrides)
  searcher = cell_search.make_searcher(config, resolve_space(config), 10, 100)
  shape = (8, 16, 16, 3)
  searcher.build(SearchContext(tf.distribute.get_strategy(), 1, 8, 0, shape, shape))
  return searcher


def _batch(seed):
  rng = np.random.default_rng(seed)
  return (tf.constant(rng.uniform(0, 1, (8, 16, 16, 3)), tf.float32),
          tf.constant(rng.integers(0, 10, 8), tf.int32))


def _alpha(searcher):
  return np.concatenate([v.numpy() for v in searcher.alpha.logits])


@pytest.mark.parametrize('algorithm', ['gdas', 'setn', 'darts'])
def test_alpha_stays_put_during_the_warmup_and_moves_after_it(algorithm):
  searcher = _searcher(algorithm, arch_warmup_fraction=0.5)  # 4 of 8 steps.
  step = tf.function(searcher.replica_step)
  initial = _alpha(searcher)
  weights = [v.numpy().copy() for v in searcher.weights[:3]]
  for n in range(4):
    metrics = step(_batch(n), _batch(n + 10), tf.constant(n, tf.int64))
    assert float(metrics['valid_loss']) == 0.0
  np.testing.assert_array_equal(_alpha(searcher), initial)
  assert any(not np.array_equal(a, v.numpy()) for a, v in zip(weights, searcher.weights[:3]))
  metrics = step(_batch(4), _batch(14), tf.constant(4, tf.int64))
  assert float(metrics['valid_loss']) > 0
  assert not np.array_equal(_alpha(searcher), initial)


def test_without_warmup_alpha_moves_from_the_first_step():
  searcher = _searcher('gdas')
  initial = _alpha(searcher)
  tf.function(searcher.replica_step)(_batch(0), _batch(1), tf.constant(0, tf.int64))
  assert not np.array_equal(_alpha(searcher), initial)


def test_the_architecture_rate_scales_to_the_run_length():
  base = CellSearchConfig(arch_learning_rate=3e-4)
  assert cell_common.arch_learning_rate(base, 1000) == 3e-4  # The reference: as given.
  scaled = CellSearchConfig(arch_learning_rate=3e-4, arch_lr_reference_steps=97500)
  assert cell_common.arch_learning_rate(scaled, 9750) == pytest.approx(3e-3)
  searcher = _searcher('darts', arch_lr_reference_steps=80)  # 8 steps: 10x the rate.
  assert float(searcher.arch_optimizer.learning_rate) == pytest.approx(3e-3)


def test_bad_warmup_fractions_are_user_errors():
  for bad in (-0.1, 1.0, float('nan')):
    with pytest.raises(UserError, match='arch_warmup_fraction'):
      CellSearchConfig(arch_warmup_fraction=bad)


def _mixture_loss(searcher, batch):
  mode, values = searcher.uniform_mixture()
  return float(cell_common.cross_entropy(searcher.supernet(batch[0], mode=mode, values=values),
                                         batch[1]))


def test_gdas_weights_train_on_the_uniform_mixture_during_a_mixture_warmup():
  searcher = _searcher('gdas', arch_warmup_fraction=0.5, arch_warmup_sampling='mixture')
  step = tf.function(searcher.replica_step)
  for n in (0, 3, 4):  # Steps 0-3 warm up; step 4 is GDAS's own.
    expected = _mixture_loss(searcher, _batch(n))
    loss = float(step(_batch(n), _batch(n + 10), tf.constant(n, tf.int64))['loss'])
    if n < 4:
      assert loss == pytest.approx(expected, rel=1e-5)
    else:
      assert loss != pytest.approx(expected, rel=1e-3)  # A single sampled path.


def test_a_mixture_warmup_needs_gdas_and_a_warmup():
  with pytest.raises(UserError, match="arch_warmup_sampling='mixture' applies to GDAS"):
    CellSearchConfig(algorithm='gdas', arch_warmup_sampling='mixture')
  with pytest.raises(UserError, match="arch_warmup_sampling='mixture' applies to GDAS"):
    CellSearchConfig(algorithm='darts', arch_warmup_fraction=0.5, arch_warmup_sampling='mixture')
  with pytest.raises(UserError, match="Unknown arch warm-up sampling 'all'"):
    CellSearchConfig(algorithm='gdas', arch_warmup_sampling='all')
