"""The one-shot template's path sampling: uniform (reference) and FairNAS strict fairness."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tunas_tf.errors import UserError
from tunas_tf.search import cell_common
from tunas_tf.search.cell_config import CellSearchConfig, resolve_space
from tunas_tf.search.random_cell import RandomCellSearcher
from tunas_tf.search.searcher import SearchContext
from tunas_tf.space.architecture import Architecture


def _searcher(sampling: str) -> RandomCellSearcher:
  config = CellSearchConfig(algorithm='random', channels=4, num_cells=1, image_size=16,
                            batch_size=8, template_sampling=sampling, weight_decay=0.0)
  searcher = RandomCellSearcher(config, resolve_space(config), 10)
  shape = (8, 16, 16, 3)
  searcher.build(SearchContext(tf.distribute.get_strategy(), 1, 10, 0, shape, shape))
  return searcher


def _batch():
  rng = np.random.default_rng(0)
  return (tf.constant(rng.uniform(0, 1, (8, 16, 16, 3)), tf.float32),
          tf.constant(rng.integers(0, 10, 8), tf.int32))


def test_fair_paths_run_every_choice_of_every_decision_once():
  searcher = _searcher('fair')
  for step in range(3):
    paths = np.stack([p.numpy() for p in searcher.fair_paths(tf.constant([0, step], tf.int64))])
    assert paths.shape == (5, 6)
    for column in paths.T:
      assert sorted(column) == [0, 1, 2, 3, 4]
  first = [p.numpy() for p in searcher.fair_paths(tf.constant([0, 0], tf.int64))]
  other = [p.numpy() for p in searcher.fair_paths(tf.constant([0, 1], tf.int64))]
  assert not np.array_equal(np.stack(first), np.stack(other))  # Fresh permutations per step.


def _input_edge_conv_kernels(searcher) -> list:
  """The conv kernels of every cell's edge from the cell input to the output node: a path with a
  conv there always carries its gradient (other edges can sit in a part of the cell that
  'none' edges cut off, or read all-zero inputs)."""
  kernels = []
  for layer in searcher.supernet.body:
    layout = getattr(layer, 'layout', None)
    if layout is None:
      continue  # A residual block.
    last = max(target for target, _ in layout.edges)
    for e, (target, source) in enumerate(layout.edges):
      for k, op in enumerate(layout.ops):
        if (target, source) == (last, 0) and op.startswith('nor_conv'):
          kernels += [v for v in layer.edge_ops[e * layout.num_ops + k].trainable_weights
                      if 'kernel' in v.path]
  return kernels


def _moved_conv_kernels(sampling: str) -> float:
  """Share of those kernels that one template step changed (no weight decay, no momentum
  yet: only a gradient moves a weight)."""
  searcher = _searcher(sampling)
  kernels = _input_edge_conv_kernels(searcher)
  assert len(kernels) == 3 * 2  # 3 cells, 2 convs each.
  before = [v.numpy().copy() for v in kernels]
  searcher.template_weight_step(_batch(), tf.constant([0, 0], tf.int64))
  return np.mean([not np.array_equal(b, v.numpy()) for b, v in zip(before, kernels)])


def test_a_fair_step_trains_every_conv_of_every_edge_and_a_uniform_one_only_its_path():
  assert _moved_conv_kernels('fair') == 1.0
  assert _moved_conv_kernels('uniform') <= 0.5  # One op of five per edge.


def test_fair_sampling_is_refused_where_no_template_is_sampled():
  with pytest.raises(UserError, match="template_sampling='fair' applies to the template"):
    CellSearchConfig(algorithm='gdas', template_sampling='fair')
  with pytest.raises(UserError, match='not SETN-NON'):
    CellSearchConfig(algorithm='setn', setn_variant='non', template_sampling='fair')
  with pytest.raises(UserError, match="Unknown template sampling 'strict'"):
    CellSearchConfig(algorithm='random', template_sampling='strict')


def test_a_mixture_step_trains_every_conv_through_the_uniform_average_of_the_ops():
  assert _moved_conv_kernels('mixture') == 1.0
  searcher = _searcher('mixture')
  images, labels = _batch()
  mode, values = searcher.uniform_mixture()
  expected = cell_common.cross_entropy(searcher.supernet(images, mode=mode, values=values), labels)
  metrics = searcher.template_weight_step((images, labels), tf.constant([0, 0], tf.int64))
  assert float(metrics['loss']) == pytest.approx(float(expected), rel=1e-5)
  for coefficients in values:  # Every op of every edge weighted 1/5.
    np.testing.assert_allclose(np.asarray(coefficients), 0.2, rtol=1e-6)


@pytest.mark.parametrize('score', ['accuracy', 'loss'])
def test_candidate_score_picks_the_most_accurate_or_the_lowest_loss(score):
  config = CellSearchConfig(algorithm='random', channels=4, num_cells=1, image_size=16,
                            batch_size=8, candidate_score=score)
  rng = np.random.default_rng(3)
  images = rng.uniform(0, 1, (256, 16, 16, 3)).astype(np.float32)
  labels = rng.integers(0, 10, 256).astype(np.int32)
  keras.utils.set_random_seed(0)  # Weights for which the two rules pick different cells.
  searcher = RandomCellSearcher(config, resolve_space(config), 10,
                                eval_data=lambda: (images, labels))
  searcher.build(SearchContext(tf.distribute.get_strategy(), 1, 10, 0, (8, 16, 16, 3),
                               (8, 16, 16, 3)))
  candidates = rng.integers(0, 5, (40, 6))
  arch = searcher.score_candidates(candidates)
  scored = searcher.candidates
  if score == 'loss':
    best = min(scored, key=lambda s: s[2])
  else:
    best = max(scored, key=lambda s: (s[1], -s[2]))
  assert arch == searcher.space.canonical(Architecture(searcher.space.name, best[0]))
  by_accuracy = max(scored, key=lambda s: (s[1], -s[2]))
  assert min(scored, key=lambda s: s[2]) != by_accuracy  # The two rules differ here.


def test_an_unknown_candidate_score_is_refused():
  with pytest.raises(UserError, match="Unknown candidate score 'top5'"):
    CellSearchConfig(algorithm='random', candidate_score='top5')
  with pytest.raises(UserError, match="template_sampling='mixture' applies to the template"):
    CellSearchConfig(algorithm='darts', template_sampling='mixture')
