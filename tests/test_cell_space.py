"""Tests of the cell search spaces and their genotypes (pure Python, no TensorFlow)."""

import collections
import itertools
import math
import random
import subprocess
import sys

import pytest

from tunas_tf import space
from tunas_tf.errors import UserError
from tunas_tf.space import cell
from tunas_tf.space import genotypes
from tunas_tf.space.architecture import Architecture
from tunas_tf.space.genotypes import Genotype

CELL_SPACES = ('nas_bench_201', 'darts', 'darts_frc', 'setn', 'pgnas_resnet')
BEST_C100 = ('|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+'
             '|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|')
GDAS_V1 = genotypes.get_published_genotype('gdas_v1')
SETN_PUBLISHED = genotypes.get_published_genotype('setn')


def test_cell_spaces_are_registered_with_families():
  families = {n: space.get_space(n).family for n in CELL_SPACES}
  assert families == {'nas_bench_201': 'cell', 'darts': 'cell', 'darts_frc': 'cell',
                      'setn': 'cell', 'pgnas_resnet': 'pgnas'}


# NAS-Bench-201 ---------------------------------------------------------------------------------


def test_nb201_decisions_follow_nb201_edge_order():
  s = space.get_space('nas_bench_201')
  assert [d.path.rsplit('/', 1)[1] for d in s.decisions] == list(cell.nb201_edges())
  assert cell.nb201_edges() == ('1<-0', '2<-0', '2<-1', '3<-0', '3<-1', '3<-2')
  assert all(d.oneof.choices == cell.NB201_OPS for d in s.decisions)
  assert [d.group for d in s.decisions] == ['cell/nodes/0'] + ['cell/nodes/1'] * 2 + [
      'cell/nodes/2'] * 3
  assert s.spec.channels == 16 and s.spec.cells_per_stage == 5


def test_all_nb201_architectures_round_trip():
  s = space.get_space('nas_bench_201')
  archs = list(cell.all_nb201_architectures())
  assert len(archs) == 5 ** 6 == 15625 == round(10 ** s.log10_distinct())
  strings = set()
  for arch in archs:
    text = cell.to_nb201_string(arch)
    assert cell.from_nb201_string(text) == arch
    assert s.parse(s.to_string(arch)) == arch
    strings.add(text)
  assert len(strings) == 15625


def test_nb201_string_forms_of_one_cell():
  s = space.get_space('nas_bench_201')
  arch = cell.from_nb201_string(BEST_C100)
  assert arch.indices == (3, 3, 3, 1, 3, 3)
  assert cell.to_nb201_string(arch) == BEST_C100
  assert s.to_string(arch) == 'c3-c3c3-skipc3c3'
  none_avg = Architecture('nas_bench_201', (0, 4, 0, 2, 1, 0))
  assert s.to_string(none_avg) == 'none-avgnone-c1skipnone'
  assert cell.to_nb201_string(none_avg) == (
      '|none~0|+|avg_pool_3x3~0|none~1|+|nor_conv_1x1~0|skip_connect~1|none~2|')


@pytest.mark.parametrize('text,match', [
    ('|nor_conv_3x3~0||nor_conv_3x3~0|none~1|+|none~0|none~1|none~2|',
     r"position 16: expected '\+' before node 2"),
    ('nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|', "position 0: expected '|'"),
    ('|nor_conv_3x3~1|+|none~0|none~1|+|none~0|none~1|none~2|',
     r'position 1: expected "op~0" for edge 1<-0'),
    ('|nor_conv_3x3|+|none~0|none~1|+|none~0|none~1|none~2|', 'position 1: expected "op~0"'),
    ('|none~0|+|none~0|none~1|+|none~0|none~1|none~2', r'position 40: edge 3<-2 is not closed'),
    ('|none~0|+|none~0|none~1|+|none~0|none~1|none~2|+|none~0|',
     "position 47: unexpected trailing text '\\+|none~0|'"),
    ('|none~0|+|none~0|none~1|', r"position 24: expected '\+' before node 3"),
])
def test_malformed_nb201_strings_name_the_position(text, match):
  with pytest.raises(UserError, match=match):
    cell.from_nb201_string(text)


def test_unknown_nb201_op_names_position_edge_and_known_ops():
  text = '|nor_conv_3x3~0|+|none~0|sep_conv_3x3~1|+|none~0|none~1|none~2|'
  with pytest.raises(UserError, match=r"Unknown NAS-Bench-201 op 'sep_conv_3x3' at position 25 "
                     r".*edge 2<-1.*known ops: none, skip_connect, nor_conv_1x1"):
    cell.from_nb201_string(text)


def test_to_nb201_string_rejects_foreign_architectures():
  with pytest.raises(UserError, match="not 'nas_bench_201'"):
    cell.to_nb201_string(Architecture('darts', (0,) * 6))
  with pytest.raises(UserError, match='6 op indices'):
    cell.to_nb201_string(Architecture('nas_bench_201', (0, 1, 2)))
  with pytest.raises(UserError, match='must be a str'):
    cell.from_nb201_string(None)


def test_with_macro_keeps_name_and_decisions():
  s = space.get_space('nas_bench_201')
  tiny = cell.with_macro(s, channels=8, cells_per_stage=1)
  assert (tiny.name, tiny.spec.channels, tiny.spec.cells_per_stage) == ('nas_bench_201', 8, 1)
  assert [d.path for d in tiny.decisions] == [d.path for d in s.decisions]
  arch = s.sample(random.Random(0))
  assert tiny.validate(arch) == arch
  with pytest.raises(UserError, match=r"no macro parameter\(s\) \['kernels'\]; valid: channels"):
    cell.with_macro(s, kernels=3)
  with pytest.raises(UserError, match='channels must be a positive integer, got 0'):
    cell.with_macro(s, channels=0)


# DARTS / GDAS ----------------------------------------------------------------------------------


def test_darts_space_has_14_edges_of_8_ops_per_cell():
  s = space.get_space('darts')
  assert s.num_decisions == 28
  assert s.log10_cardinality() == pytest.approx(28 * math.log10(8))
  keys = [d.path.rsplit('/', 1)[1] for d in s.decisions[:14]]
  assert keys == [cell.edge_key(i, j) for i in range(2, 6) for j in range(i)]
  assert [d.path.split('/')[0] for d in s.decisions] == ['normal'] * 14 + ['reduce'] * 14
  assert all(d.oneof.choices == cell.DARTS_OPS for d in s.decisions)
  assert len(s.spec.layout()) == 6
  darts_eval = cell.with_macro(s, channels=36, cells_per_stage=6, eval_layout=True)
  assert [i for i, (_, r) in enumerate(darts_eval.spec.layout()) if r] == [6, 13]
  assert len(darts_eval.spec.layout()) == 20
  assert s.spec.layout() == ((16, False), (16, False), (32, True), (32, False), (64, True),
                             (64, False))
  frc = space.get_space('darts_frc')
  assert frc.num_decisions == 14 and frc.spec.fixed_reduction and frc.spec.reduce is None


def test_fixed_reduction_needs_channels_for_eight_groups():
  with pytest.raises(UserError, match='divisible by 8, got channels=6'):
    cell.darts_spec(fixed_reduction=True, channels=6)
  with pytest.raises(UserError, match='fixed_reduction=True needs reduce=None'):
    cell.NASNetNetworkSpec(cell.darts_cell_spec(), cell.darts_cell_spec(), fixed_reduction=True)


def _weights(picks, ops=cell.DARTS_OPS, rows=14, base=0.01):
  """A [rows, ops] matrix of `base` with picks {(row, op name): weight}."""
  w = [[base] * len(ops) for _ in range(rows)]
  for (row, op), value in picks.items():
    w[row][ops.index(op)] = value
  return w


# Edge rows of node i (state 2 + i): node 0 -> rows 0-1, node 1 -> 2-4, node 2 -> 5-8, 3 -> 9-13.
_NORMAL_PICKS = {
    (0, 'none'): 0.99, (0, 'sep_conv_3x3'): 0.5, (1, 'skip_connect'): 0.4,  # none ignored.
    (2, 'sep_conv_5x5'): 0.6, (2, 'max_pool_3x3'): 0.55, (4, 'dil_conv_3x3'): 0.5,
    (5, 'avg_pool_3x3'): 0.3, (8, 'skip_connect'): 0.7,
    (13, 'dil_conv_5x5'): 0.9, (9, 'sep_conv_3x3'): 0.2,
}


def test_gdas_derivation_keeps_top_two_pairs_excluding_none():
  g = genotypes.derive_darts_genotype(_weights(_NORMAL_PICKS))
  assert g.normal == (('sep_conv_3x3', 0), ('skip_connect', 1),
                      ('sep_conv_5x5', 0), ('max_pool_3x3', 0),  # Same input twice (GDAS).
                      ('skip_connect', 3), ('avg_pool_3x3', 0),
                      ('dil_conv_5x5', 4), ('sep_conv_3x3', 0))
  assert g.normal_concat == (2, 3, 4, 5)
  assert g.reduce == () and g.reduce_concat == ()  # No reduction weights: GDAS FRC.


def test_darts_derivation_picks_distinct_inputs():
  g = genotypes.derive_darts_genotype(_weights(_NORMAL_PICKS), _weights({}),
                                      distinct_inputs=True)
  assert g.normal[2:4] == (('sep_conv_5x5', 0), ('dil_conv_3x3', 2))
  # All-equal weights: ties keep (input, op) order; 'none' (column 0) never wins.
  assert g.reduce[:2] == (('skip_connect', 0), ('skip_connect', 1))
  assert all(op != 'none' for op, _ in g.normal + g.reduce)


def test_derivation_from_logits_applies_softmax_per_edge():
  # Edge 0 has a large logit spread (its max is a low probability), edge 1 is peaked.
  logits = _weights({(0, 'sep_conv_3x3'): 3.0, (0, 'sep_conv_5x5'): 2.9, (0, 'dil_conv_3x3'): 2.9,
                     (0, 'dil_conv_5x5'): 2.9, (1, 'skip_connect'): 2.0}, base=0.0)
  raw = genotypes.derive_darts_genotype(logits)
  soft = genotypes.derive_darts_genotype(logits, from_logits=True)
  assert raw.normal[:2] == (('sep_conv_3x3', 0), ('sep_conv_5x5', 0))
  assert soft.normal[:2] == (('skip_connect', 1), ('sep_conv_3x3', 0))


def test_derivation_validates_shapes():
  with pytest.raises(UserError, match=r'shape \[14, 8\].*got 13 rows'):
    genotypes.derive_darts_genotype(_weights({}, rows=13))
  with pytest.raises(UserError, match='non-finite'):
    genotypes.derive_darts_genotype([[float('nan')] * 8] * 14)


def test_genotype_to_darts_arch_and_back():
  s = space.get_space('darts')
  g = genotypes.derive_darts_genotype(_weights(_NORMAL_PICKS), _weights(_NORMAL_PICKS),
                                      distinct_inputs=True)
  arch = genotypes.genotype_to_darts_arch(s, g)
  normal, reduce = genotypes.nasnet_cell_graphs(s, arch)
  kept = [tuple(sorted(e for e in node if e[0] != 'none')) for node in normal.nodes]
  expected = [tuple(sorted(g.normal[i:i + 2])) for i in range(0, 8, 2)]
  assert kept == expected and reduce.nodes == normal.nodes
  with pytest.raises(UserError, match='node 1 uses input 0 twice'):
    genotypes.genotype_to_darts_arch(s, genotypes.derive_darts_genotype(_weights(_NORMAL_PICKS),
                                                                        _weights({})))


def test_genotype_validation_and_dict_round_trip():
  for g in genotypes.PUBLISHED_GENOTYPES.values():
    assert Genotype.from_dict(g.to_dict()) == genotypes.check_genotype(g)
  with pytest.raises(UserError, match='known published genotypes: darts_v2, gdas_v1, setn'):
    genotypes.get_published_genotype('pdarts')
  bad = GDAS_V1._replace(normal=GDAS_V1.normal[:-1] + (('sep_conv_3x3', 5),))
  with pytest.raises(UserError, match=r'normal\[7\] reads state 5, but node 3'):
    genotypes.check_genotype(bad)
  with pytest.raises(UserError, match="Unknown op 'conv_9x9'"):
    genotypes.check_genotype(GDAS_V1._replace(reduce=(('conv_9x9', 0),) + GDAS_V1.reduce[1:]))
  with pytest.raises(UserError, match='2 \\(op, input\\) pairs per node'):
    genotypes.check_genotype(GDAS_V1._replace(normal=GDAS_V1.normal[:3]))
  with pytest.raises(UserError, match='exactly the keys'):
    Genotype.from_dict({'normal': []})


# SETN ------------------------------------------------------------------------------------------


def test_setn_encoding_choices():
  s = space.get_space('setn')
  assert s.num_decisions == 16
  ops = [d for d in s.decisions if d.path.endswith('/ops')]
  inputs = [d for d in s.decisions if d.path.endswith('/inputs')]
  assert all(d.num_choices == 21 for d in ops)  # 6 ops: 6 * 7 / 2 pairs with f1 <= f2.
  assert [d.num_choices for d in inputs] == [4, 9, 16, 25] * 2  # (i + 2)^2, with replacement.
  for d in ops:
    assert all(cell.SETN_OPS.index(a) <= cell.SETN_OPS.index(b) for a, b in d.oneof.choices)
  assert round(s.log10_cardinality(), 2) == round(2 * math.log10(4 * 9 * 16 * 25 * 21 ** 4), 2)


def test_setn_encoding_covers_every_node_exactly_once_up_to_symmetry():
  """Every multiset {(input, op), (input, op)} is encoded; only I1 != I2 with f1 == f2 twice."""
  s = space.get_space('setn')
  for node in range(4):
    ops, inputs = s.decisions[2 * node].oneof.choices, s.decisions[2 * node + 1].oneof.choices
    counts = collections.Counter(
        tuple(sorted(((a, f), (b, g)))) for (f, g), (a, b) in itertools.product(ops, inputs))
    n = node + 2
    pairs = [(i, o) for i in range(n) for o in cell.SETN_OPS]
    assert set(counts) == set(tuple(sorted(p)) for p in itertools.combinations_with_replacement(
        pairs, 2))
    assert all(c == (2 if k[0][0] != k[1][0] and k[0][1] == k[1][1] else 1)
               for k, c in counts.items())


def test_setn_uniform_sampling_is_setns_sampler():
  s = space.get_space('setn')
  rng = random.Random(0)
  samples = [s.sample(rng).indices for _ in range(4000)]
  op_counts = collections.Counter(x[6] for x in samples)  # normal/nodes/3/ops
  first_input = collections.Counter(s.decisions[7].oneof.choices[x[7]][0] for x in samples)
  assert len(op_counts) == 21 and max(abs(c / 4000 - 1 / 21) for c in op_counts.values()) < 0.02
  assert max(abs(c / 4000 - 1 / 5) for c in first_input.values()) < 0.03  # I1 ~ U(5 inputs).


def test_setn_genotypes_round_trip_and_reorder_published_genotype():
  s = space.get_space('setn')
  for seed in range(20):
    arch = s.sample(random.Random(seed))
    assert genotypes.setn_architecture(s, genotypes.setn_genotype(s, arch)) == arch
  arch = genotypes.setn_architecture(s, SETN_PUBLISHED)
  tokens = s.to_string(arch).split('-')
  assert tokens[:4] == ['skip+s5@01', 's3+s5@10', 's5+s5@13', 'max+c31@14']
  normal, _ = genotypes.nasnet_cell_graphs(s, arch)
  assert normal.nodes[1] == (('sep_conv_3x3', 1), ('sep_conv_5x5', 0))
  with pytest.raises(UserError, match="'dil_conv_3x3' is not a SETN op"):
    genotypes.setn_architecture(s, GDAS_V1._replace(
        normal=(('dil_conv_3x3', 0),) + GDAS_V1.normal[1:]))


# PGNAS -----------------------------------------------------------------------------------------


def test_pgnas_space_is_a_keep_mask_per_block_and_kernel():
  s = space.get_space('pgnas_resnet')
  assert s.num_decisions == 27 and all(d.oneof.choices == (False, True) for d in s.decisions)
  assert [d.path for d in s.decisions[:3]] == ['blocks/0/keep/1', 'blocks/0/keep/3',
                                               'blocks/0/keep/5']
  groups = cell.pgnas_groups(s.spec)
  assert len(groups) == 27
  assert groups[:3] == ((0, 1, 32), (0, 3, 32), (0, 5, 32))
  assert groups[9] == (3, 1, 32) and groups[12] == (4, 1, 64)  # Stage 2 starts at block 3.
  assert [b.strides for b in s.spec.blocks] == [1, 1, 1, 2, 1, 1, 2, 1, 1]
  everything = Architecture('pgnas_resnet', (1,) * 27)
  assert s.to_string(everything) == '-'.join(['k1k3k5'] * 9)
  nothing = Architecture('pgnas_resnet', (0,) * 27)
  assert s.to_string(nothing) == '-' * 8 and s.parse('-' * 8) == nothing


@pytest.mark.parametrize('name', CELL_SPACES)
def test_cell_strings_round_trip(name):
  s = space.get_space(name)
  for seed in range(20):
    arch = s.sample(random.Random(seed))
    assert s.parse(s.to_string(arch)) == arch
    assert s.parse(arch.indices_string) == arch


def test_cell_modules_import_no_tensorflow():
  code = ('import sys, tunas_tf.space.cell, tunas_tf.space.genotypes; '
          'sys.exit(1 if "tensorflow" in sys.modules else 0)')
  assert subprocess.run([sys.executable, '-c', code], check=False).returncode == 0
