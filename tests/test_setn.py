"""SETN / random-search candidates: distinct draws, bounds, held-out batch checks, scoring."""

import numpy as np
import pytest
import tensorflow as tf

from tunas_tf import data as data_lib
from tunas_tf import space as space_lib
from tunas_tf.errors import UserError
from tunas_tf.models import cell_layouts
from tunas_tf.search import candidates, cell_search, proxies
from tunas_tf.search.cell_config import CellSearchConfig, resolve_space
from tunas_tf.search.searcher import SearchContext
from tunas_tf.search.setn import SetnSearcher
from tunas_tf.space import cell


def _peaked(sizes, seed=0, sharpness=3.0):
  rng = np.random.default_rng(seed)
  out = []
  for n in sizes:
    logits = sharpness * rng.normal(size=n)
    p = np.exp(logits - logits.max())
    out.append(p / p.sum())
  return out


def test_nb201_candidates_are_distinct_exact_draws_without_replacement():
  space = space_lib.get_space('nas_bench_201')
  probs = _peaked([d.num_choices for d in space.decisions])
  drawn = candidates.sample_distinct(probs, 200, np.random.default_rng(1), space.name)
  assert drawn.shape == (200, 6) and drawn.dtype == np.int32
  assert len({tuple(r) for r in drawn}) == 200
  assert np.all((drawn >= 0) & (drawn < 5))
  # All 15,625 architectures can be drawn, each once.
  everything = candidates.sample_distinct(candidates.uniform([5] * 6), 15625,
                                          np.random.default_rng(2), space.name)
  assert len({tuple(r) for r in everything}) == 15625
  with pytest.raises(UserError, match='num_candidates=15626 exceeds the 15625 architectures'):
    candidates.sample_distinct(probs, 15626, np.random.default_rng(0), space.name)
  # Draws follow the distribution: the most likely architecture comes first far more often
  # than a uniform draw would make it (probability p_max, here > 0.05 vs 1/15625).
  mode = tuple(int(np.argmax(p)) for p in probs)
  firsts = [tuple(candidates.sample_distinct(probs, 1, np.random.default_rng(s))[0])
            for s in range(400)]
  p_mode = float(np.prod([p.max() for p in probs]))
  assert firsts.count(mode) / 400 == pytest.approx(p_mode, abs=0.06)


def test_large_space_candidates_are_distinct_and_at_most_t():
  space = space_lib.get_space('darts')  # 8^28 architectures: sampled, not enumerated.
  sizes = [d.num_choices for d in space.decisions]
  drawn = candidates.sample_distinct(_peaked(sizes), 300, np.random.default_rng(0), space.name)
  assert len(drawn) == 300 and len({tuple(r) for r in drawn}) == 300
  # A nearly deterministic distribution has fewer than T distinct candidates: fewer returned.
  almost = [np.eye(n)[0] * 0.999 + 0.001 / n for n in sizes]
  few = candidates.sample_distinct(almost, 1000, np.random.default_rng(0), space.name)
  assert 1 <= len(few) < 1000 and len({tuple(r) for r in few}) == len(few)


def test_too_few_validation_examples_for_the_held_out_batch_is_a_user_error(tmp_path):
  dataset = data_lib.load_dataset('digits')
  size = dataset.split_size('search_valid')
  config = CellSearchConfig(algorithm='setn', eval_batch_size=size + 1, steps=2, batch_size=8)
  with pytest.raises(UserError, match=f'search_valid has {size} .*eval_batch_size={size + 1}'):
    cell_search.search_cell(config, str(tmp_path / 'out'))
  assert not (tmp_path / 'out').exists()  # Failed before writing anything.
  # GDAS scores no candidates, so the same eval_batch_size is fine for its checks.
  cell_search.check_dataset(dataset, CellSearchConfig(algorithm='gdas', eval_batch_size=size + 1))


def test_setn_scores_every_candidate_and_returns_the_best():
  config = CellSearchConfig(algorithm='setn', channels=4, num_cells=1, num_candidates=12,
                            image_size=16, batch_size=8)
  space = resolve_space(config)
  rng = np.random.default_rng(0)
  images = rng.uniform(0, 1, (32, 16, 16, 3)).astype(np.float32)
  labels = rng.integers(0, 10, 32).astype(np.int32)
  searcher = SetnSearcher(config, space, 10, eval_data=lambda: (images, labels))
  shape = (8, 16, 16, 3)
  searcher.build(SearchContext(tf.distribute.get_strategy(), 1, 10, 0, shape, shape))
  arch = searcher.final_architecture()
  scored = searcher.candidates
  assert len(scored) == 12 and len({s[0] for s in scored}) == 12
  best = max(scored, key=lambda s: (s[1], -s[2]))
  assert arch.indices == best[0]
  # A score is the fixed architecture's accuracy on the held-out batch: recompute one.
  acc, loss = searcher.evaluate(np.asarray(best[0]), images, labels)
  assert (acc, loss) == pytest.approx((best[1], best[2]), rel=1e-5)
  extra = searcher.summary_extra(arch)
  assert extra['nb201_string'] == cell.to_nb201_string(arch)
  assert extra['num_candidates_scored'] == 12
  assert set(extra['arch_probabilities']) == {d.path for d in space.decisions}


def test_setn_space_slots_encode_both_terms_of_each_node():
  space = space_lib.get_space('setn')
  normal = cell_layouts.cell_layouts(space)[0]
  ops = space.decisions[0].oneof.choices
  # Node 0: (f1, f2) = (avg, s3) on inputs (1, 0).
  indices = [0] * space.num_decisions
  indices[normal.decisions[0]] = ops.index(('avg_pool_3x3', 'sep_conv_3x3'))
  indices[normal.decisions[1]] = space.decisions[normal.decisions[1]].oneof.choices.index((1, 0))
  slots = cell_layouts.slot_indices(normal, indices)
  num_ops = normal.num_ops
  assert divmod(int(slots[0]), num_ops) == (1, normal.ops.index('avg_pool_3x3'))
  assert divmod(int(slots[1]), num_ops) == (0, normal.ops.index('sep_conv_3x3'))


def test_setn_and_random_search_draw_different_candidates_from_the_same_seed():
  config = dict(channels=4, num_cells=1, num_candidates=20, image_size=16, batch_size=8)
  drawn = {}
  for algorithm in ('setn', 'random'):
    search = CellSearchConfig(algorithm=algorithm, **config)
    searcher = cell_search.make_searcher(
        search, resolve_space(search), 10, 100,
        eval_data=lambda: (np.zeros((8, 16, 16, 3), np.float32), np.zeros(8, np.int32)))
    shape = (8, 16, 16, 3)
    searcher.build(SearchContext(tf.distribute.get_strategy(), 1, 10, 0, shape, shape))
    searcher.final_architecture()  # α untrained: SETN's distribution is still near uniform.
    drawn[algorithm] = {s[0] for s in searcher.candidates}
  assert len(drawn['setn'] & drawn['random']) < 5


@pytest.mark.parametrize('algorithm', ['setn', 'random'])
def test_a_candidate_filter_keeps_the_proxys_top_share_for_the_template_to_score(algorithm):
  config = CellSearchConfig(algorithm=algorithm, channels=4, num_cells=1, num_candidates=8,
                            image_size=16, batch_size=8, candidate_filter='params',
                            candidate_filter_keep=0.25)
  space = resolve_space(config)
  rng = np.random.default_rng(0)
  images = rng.uniform(0, 1, (32, 16, 16, 3)).astype(np.float32)
  searcher = cell_search.make_searcher(config, space, 10, 100,
                                       eval_data=lambda: (images, np.zeros(32, np.int32)))
  shape = (8, 16, 16, 3)
  searcher.build(SearchContext(tf.distribute.get_strategy(), 1, 10, 0, shape, shape))
  arch = searcher.final_architecture()
  scored = [s[0] for s in searcher.candidates]
  assert len(searcher.filter_scores) == 8 and len(scored) == 2
  assert arch.indices in scored
  # The two kept are the two largest networks of the eight drawn.
  sizes = sorted(searcher.filter_scores, reverse=True)
  scorer = proxies.ProxyScorer(space, 10, 16)
  kept = sorted(scorer.scores(space.parse(':'.join(map(str, s))), ['params'])['params']
                for s in scored)
  assert kept == sorted(sizes[:2])
  summary = searcher.summary_extra(arch)
  assert summary['candidate_filter'] == {'proxy': 'params', 'drawn': 8, 'kept': 2}


def test_candidate_filters_are_checked():
  with pytest.raises(UserError, match="Unknown candidate filter 'snip'"):
    CellSearchConfig(algorithm='setn', candidate_filter='snip')
  with pytest.raises(UserError, match='gdas scores none'):
    CellSearchConfig(algorithm='gdas', candidate_filter='synflow')
  with pytest.raises(UserError, match=r'candidate_filter_keep must be in \(0, 1\]'):
    CellSearchConfig(algorithm='random', candidate_filter='params', candidate_filter_keep=0)
