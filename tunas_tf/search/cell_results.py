"""Turning a cell search's state into results: the architecture, its genotype, summary entries.

Genotypes by space (summary.json 'genotype'):
* nas_bench_201: the NAS-Bench-201 string '|op~0|+|op~0|op~1|+...' (also 'nb201_string');
* darts / darts_frc, searched through α (GDAS, DARTS): the DARTS `Genotype` of α
  (`derive_darts_genotype`: per node the two strongest non-'none' (op, input) pairs, GDAS's
  rule), trainable with `build_cell_model(space, Genotype.from_dict(...))`;
* darts / darts_frc, searched by candidates (SETN, random): every edge's op, per node
  ({'normal': [[[op, input], ...] per node], ...}), since a one-op-per-edge candidate keeps
  all of its edges;
* setn: the DARTS-style genotype [(f1, I1), (f2, I2)] per node.
"""

import statistics
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from tunas_tf.errors import UserError
from tunas_tf.space import cell as cell_lib
from tunas_tf.space import genotypes
from tunas_tf.space.architecture import Architecture
from tunas_tf.space.search_space import SearchSpace


def _is_darts(space: SearchSpace) -> bool:
  spec = space.spec
  return (isinstance(spec, cell_lib.NASNetNetworkSpec) and
          isinstance(spec.normal, cell_lib.DartsCellSpec))


def _cell_rows(space: SearchSpace, probs: Sequence[np.ndarray], cell_name: str) -> list:
  return [list(p) for d, p in zip(space.decisions, probs) if d.path.startswith(cell_name + '/')]


def darts_genotype(space: SearchSpace, probs: Sequence[np.ndarray]) -> genotypes.Genotype:
  """GDAS's genotype of a darts / darts_frc space from per-edge op probabilities."""
  ops = space.decisions[0].oneof.choices
  reduce = None if space.spec.fixed_reduction else _cell_rows(space, probs, 'reduce')
  return genotypes.derive_darts_genotype(_cell_rows(space, probs, 'normal'), reduce, ops=ops)


def architecture_from_alpha(space: SearchSpace,
                            probs: Sequence[np.ndarray]) -> Tuple[Architecture, str]:
  """The architecture GDAS / DARTS return, and where it came from.

  NB201 / SETN: the per-decision argmax. DARTS spaces: the derived genotype as an architecture
  (its ops on its edges, 'none' elsewhere); when the genotype takes two ops from one input
  (GDAS's rule allows it), which one op per edge cannot express, the per-edge argmax instead.
  """
  argmax = Architecture(space.name, tuple(int(np.argmax(p)) for p in probs))
  if not _is_darts(space):
    return space.canonical(argmax), 'argmax'
  try:
    return genotypes.genotype_to_darts_arch(space, darts_genotype(space, probs)), 'genotype'
  except UserError:
    return space.canonical(argmax), 'argmax'


def _edge_lists(space: SearchSpace, arch: Architecture) -> Dict[str, Any]:
  normal, reduce = genotypes.nasnet_cell_graphs(space, arch)
  as_lists = lambda g: [[[op, source] for op, source in node] for node in g.nodes]
  return {'normal': as_lists(normal), 'reduce': [] if reduce is None else as_lists(reduce)}


def describe(space: SearchSpace, arch: Architecture,
             probs: Optional[Sequence[np.ndarray]] = None,
             alpha_genotype: bool = False) -> Dict[str, Any]:
  """summary.json entries of an architecture: 'genotype' (see the module docstring) and, for
  nas_bench_201, 'nb201_string'."""
  if isinstance(space.spec, cell_lib.NB201NetworkSpec):
    text = cell_lib.to_nb201_string(arch)
    return {'genotype': text, 'nb201_string': text}
  if _is_darts(space):
    if alpha_genotype and probs is not None:
      return {'genotype': darts_genotype(space, probs).to_dict()}
    return {'genotype': _edge_lists(space, arch)}
  if isinstance(space.spec, cell_lib.NASNetNetworkSpec):  # SETN cells.
    return {'genotype': genotypes.setn_genotype(space, arch).to_dict()}
  return {}


def candidate_summary(candidates: Sequence[tuple], eval_batch_size: int) -> Dict[str, Any]:
  """Statistics of scored candidates [(indices, accuracy, loss)]."""
  accuracies = [c[1] for c in candidates]
  best = max(candidates, key=lambda c: (c[1], -c[2]))
  return {'num_candidates_scored': len(candidates), 'eval_batch_size': eval_batch_size,
          'best_candidate_accuracy': best[1], 'best_candidate_loss': best[2],
          'candidate_accuracy_mean': statistics.fmean(accuracies),
          'candidate_accuracy_median': statistics.median(accuracies)}
