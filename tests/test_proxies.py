"""Training-free scores (`tunas_tf.search.proxies`) on tiny NB201 networks."""

import numpy as np
import pytest

from tunas_tf import space as space_lib
from tunas_tf.errors import UserError
from tunas_tf.models.cell_network import build_cell_model
from tunas_tf.search import proxies
from tunas_tf.space import cell

TINY = cell.with_macro(space_lib.get_space('nas_bench_201'), channels=4, cells_per_stage=1)


def _arch(op_text: str):
  """One NB201 op on all six edges, e.g. 'nor_conv_3x3'."""
  return cell.from_nb201_string(f'|{op_text}~0|+|{op_text}~0|{op_text}~1|+|{op_text}~0|'
                                f'{op_text}~1|{op_text}~2|')


def _images(n=8, seed=0):
  return np.random.default_rng(seed).uniform(0, 1, (n, 16, 16, 3)).astype(np.float32)


def _scorer(images=None):
  return proxies.ProxyScorer(TINY, 10, 16, _images() if images is None else images, seed=3)


def test_flops_count_every_conv_of_the_cells():
  scorer = _scorer()
  flops = {op: scorer.scores(_arch(op), ['flops'])['flops']
           for op in ('none', 'nor_conv_1x1', 'nor_conv_3x3')}
  # The cells' convolutions have the same shapes; a 3x3 kernel costs 9 times a 1x1 one.
  assert flops['nor_conv_3x3'] - flops['none'] == pytest.approx(
      9 * (flops['nor_conv_1x1'] - flops['none']))
  assert flops['nor_conv_1x1'] > flops['none'] > 0


def test_params_are_the_trainable_weights_of_the_network():
  arch = _arch('nor_conv_3x3')
  model = build_cell_model(TINY, arch, 10, 16)
  trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
  assert _scorer().scores(arch, ['params'])['params'] == trainable


def test_synflow_is_zero_without_a_path_and_leaves_the_network_unchanged():
  scorer = _scorer()
  assert scorer.scores(_arch('none'), ['synflow'])['synflow'] == 0.0  # Only the zero bias.
  c1 = scorer.scores(_arch('nor_conv_1x1'), ['synflow'])['synflow']
  c3 = scorer.scores(_arch('nor_conv_3x3'), ['synflow'])['synflow']
  assert c3 > c1 > 0
  model = build_cell_model(TINY, _arch('nor_conv_3x3'), 10, 16)
  before = [w.copy() for w in model.get_weights()]
  proxies.synflow(model)
  for a, b in zip(before, model.get_weights()):
    np.testing.assert_array_equal(a, b)  # The |θ| copy is a copy.
  assert any((w < 0).any() for w in model.get_weights())


def test_naswot_and_jacob_cov_tell_images_apart_and_rank_a_dead_cell_last():
  scorer = _scorer()
  live = scorer.scores(_arch('nor_conv_3x3'), ['naswot', 'jacob_cov'])
  dead = scorer.scores(_arch('none'), ['naswot', 'jacob_cov'])
  assert np.isfinite(live['naswot']) and live['naswot'] > proxies.WORST_NASWOT
  assert live['jacob_cov'] > proxies.WORST_JACOB_COV
  assert dead['jacob_cov'] == proxies.WORST_JACOB_COV  # The output ignores the input.
  # Identical images have identical ReLU codes: K is singular, the worst score.
  same = _scorer(np.repeat(_images(1), 8, axis=0))
  assert same.scores(_arch('nor_conv_3x3'), ['naswot'])['naswot'] == proxies.WORST_NASWOT


def test_scores_are_reproducible_from_the_seed():
  a = _scorer().scores(_arch('nor_conv_3x3'), ['synflow', 'naswot'])
  b = _scorer().scores(_arch('nor_conv_3x3'), ['synflow', 'naswot'])
  assert a == b


def test_bad_proxy_requests_are_user_errors():
  with pytest.raises(UserError, match="Unknown proxy 'snip'.*synflow"):
    proxies.check_proxies(['snip'], TINY)
  with pytest.raises(UserError, match="cell spaces.*'proxylessnas'"):
    proxies.check_proxies(['synflow'], space_lib.get_space('proxylessnas'))
  with pytest.raises(UserError, match='naswot compare images.*>= 2 images, got 1'):
    proxies.check_proxies(['naswot', 'params'], TINY, num_images=1)
  with pytest.raises(UserError, match='need training images'):
    proxies.ProxyScorer(TINY, 10, 16).scores(_arch('none'), ['jacob_cov'])
