"""PGNAS: Eq. (15)'s terms on a hand-computed case, the relaxation, candidates, pruned-model export,
and the algorithm/space pairs that are refused."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tunas_tf import export
from tunas_tf.errors import UserError
from tunas_tf.models import pgnas_supernet
from tunas_tf.search import pgnas
from tunas_tf.search.cell_config import CellSearchConfig, resolve_space
from tunas_tf.search.searcher import SearchContext


def test_entropy_and_prior_terms_on_a_hand_computed_case():
  drop = tf.constant([0.1, 0.5])
  channels = tf.constant([2.0, 3.0])
  n = 10.0
  expected = (2 * (0.1 * math.log(0.1) + 0.9 * math.log(0.9)) +
              3 * (0.5 * math.log(0.5) + 0.5 * math.log(0.5))) / n
  assert float(pgnas.bernoulli_entropy_term(drop, channels, n)) == pytest.approx(expected)
  kernels = [tf.constant([[1.0, 2.0]]), tf.constant([3.0])]  # ||m||^2 = 5 and 9.
  others = [tf.constant([1.0, 1.0, 1.0])]  # 3, always kept.
  l2 = 4.0
  expected = l2 / (2 * n) * ((1 - 0.1) * 5 + (1 - 0.5) * 9 + 3)
  assert float(pgnas.prior_term(drop, kernels, others, l2, n)) == pytest.approx(expected)


def test_relaxed_masks_are_soft_keeps_with_mean_one_minus_p():
  drop = tf.constant([0.1, 0.7])
  masks = pgnas.relaxed_keep_masks(drop, [(20000, 1), (20000, 2)], 0.2,
                                   tf.constant([1, 2], tf.int64))
  assert [m.shape for m in masks] == [(20000, 1), (20000, 2)]
  for m, p in zip(masks, (0.1, 0.7)):
    m = m.numpy()
    assert np.all((m >= 0) & (m <= 1))
    assert np.mean(m) == pytest.approx(1 - p, abs=0.02)
    assert np.mean((m > 0.05) & (m < 0.95)) < 0.25  # tau = 0.2: mostly near 0 or 1.


def _tiny_searcher(num_candidates=6):
  config = CellSearchConfig(algorithm='pgnas', search_space='pgnas_resnet', channels=4,
                            image_size=16, batch_size=8, num_candidates=num_candidates,
                            pgnas_initial_drop=0.4)
  space = resolve_space(config)
  rng = np.random.default_rng(0)
  images = rng.uniform(0, 1, (16, 16, 16, 3)).astype(np.float32)
  labels = rng.integers(0, 10, 16).astype(np.int32)
  searcher = pgnas.PgnasSearcher(config, space, 10, num_train_examples=100,
                                 eval_data=lambda: (images, labels))
  shape = (8, 16, 16, 3)
  searcher.build(SearchContext(tf.distribute.get_strategy(), 1, 10, 0, shape, shape))
  return searcher, images, labels


def test_training_loss_is_likelihood_plus_entropy_plus_prior():
  searcher, images, labels = _tiny_searcher()
  assert searcher.n == 10 * 100
  batch = (tf.constant(images[:8]), tf.constant(labels[:8]))
  before = searcher.drop_logits.numpy().copy()
  metrics = searcher.replica_step(batch, batch, tf.constant(0, tf.int64))
  assert float(metrics['loss']) == pytest.approx(
      float(metrics['cross_entropy'] + metrics['entropy_term'] + metrics['prior_term']),
      rel=1e-5)
  assert float(metrics['entropy_term']) < 0  # Minus an entropy.
  assert float(metrics['mean_keep']) == pytest.approx(0.6, abs=1e-5)
  # p is learned by the same SGD step as the weights.
  assert np.any(searcher.drop_logits.numpy() != before)


def test_pruned_model_is_the_candidate_and_saves(tmp_path):
  searcher, images, labels = _tiny_searcher()
  arch = searcher.final_architecture()
  assert len(searcher.candidates) == 6
  masks = [m.copy() for m in searcher.best_masks]
  masks[1][:] = 0.0  # Drop every slice of one branch: it must disappear from the model.
  searcher.best_masks = masks
  arch = pgnas_supernet.candidate_architecture(searcher.space, masks)
  assert arch.indices[1] == 0
  model = searcher.pruned_model(images)
  assert 'blocks_0_k3_a_conv' not in [l.name for l in model.layers]
  gates = [tf.constant(float(np.any(m > 0))) for m in masks]
  expected = searcher.supernet(tf.constant(images), masks=[tf.constant(m) for m in masks],
                               gates=gates).numpy()
  # Inference with moving statistics fitted on these images = the supernet's batch statistics.
  np.testing.assert_allclose(model(images, training=False).numpy(), expected, rtol=1e-3,
                             atol=1e-4)
  path = str(tmp_path / 'pruned.keras')
  model.save(path)
  reloaded = keras.models.load_model(path)
  np.testing.assert_allclose(reloaded(images).numpy(), model(images).numpy(), rtol=1e-5,
                             atol=1e-6)


def test_pgnas_keeps_its_own_best_candidate_and_its_saved_model_reloads(tmp_path):
  searcher, images, labels = _tiny_searcher()
  arch = searcher.final_architecture()
  scores = [(acc, -loss) for _, acc, loss in searcher.candidates]
  best = max(range(len(scores)), key=lambda i: scores[i])
  assert len(set(scores)) > 1  # The choice matters: the candidates score differently.
  kept = searcher.evaluate(searcher.best_masks, tf.constant(images), tf.constant(labels))
  assert kept == pytest.approx((scores[best][0], -scores[best][1]), rel=1e-6)
  assert arch.indices == tuple(searcher.candidates[best][0])
  # The pruned model of that choice (not of masks set by hand) saves and reloads unchanged.
  model = searcher.pruned_model(images)
  gates = [tf.constant(float(np.any(m > 0))) for m in searcher.best_masks]
  expected = searcher.supernet(tf.constant(images), gates=gates,
                               masks=[tf.constant(m) for m in searcher.best_masks]).numpy()
  np.testing.assert_allclose(model(images, training=False).numpy(), expected, rtol=1e-3,
                             atol=1e-4)
  path = str(tmp_path / 'pruned.keras')
  model.save(path)
  np.testing.assert_allclose(keras.models.load_model(path)(images).numpy(),
                             model(images).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # The TFLite conversion alone takes ~15 s on two shared cores.
def test_pruned_model_converts_to_tflite():
  searcher, images, _ = _tiny_searcher(num_candidates=2)
  searcher.final_architecture()
  model = searcher.pruned_model(images)
  tflite = export.convert_to_tflite(model)
  assert export.float_parity(model, tflite, num_samples=2) < 1e-3


@pytest.mark.parametrize('algorithm,space', [('pgnas', 'nas_bench_201'), ('pgnas', 'darts'),
                                             ('gdas', 'pgnas_resnet'), ('gdas', 'setn'),
                                             ('setn', 'pgnas_resnet')])
def test_unknown_algorithm_space_pairs_are_user_errors(algorithm, space):
  with pytest.raises(UserError, match=f"Algorithm '{algorithm}' does not search space "
                                      f"'{space}'; it searches"):
    CellSearchConfig(algorithm=algorithm, search_space=space)


def test_pgnas_supernet_refuses_spaces_without_kernel_groups():
  from tunas_tf import space as space_lib  # pylint: disable=g-import-not-at-top
  with pytest.raises(UserError, match='no kernel-size groups'):
    pgnas_supernet.PgnasSupernet(space_lib.get_space('nas_bench_201'), 10)
