"""OUT/report.png of a cell search: the training curves and the evolution of the architecture
distribution (every decision's choice probabilities over the steps, from metrics.jsonl).

The loop writes a generic report of `report_panels`; a cell search replaces it with this one,
whose extra panels are one per edge (NB201 / DARTS: the op probabilities of the edge; SETN
cells: of each op-pair and input-pair decision) or, where a decision has a single curve
(PGNAS keep probabilities), one per group (block) with a curve per decision.
"""

import math
import os
from typing import Dict, List, Sequence, Tuple

import numpy as np

from tunas_tf.search import cell_common
from tunas_tf.space.search_space import SearchSpace

COLUMNS = 6
LEGEND_ENTRIES = 5  # Legends list the choices most likely at the last step.


def _probability_panels(space: SearchSpace, keys: set) -> List[Tuple[str, list]]:
  """(title, [(key, label)]) panels of the probability curves present in `keys`."""
  per_decision = []
  for d in space.decisions:
    curves = [(cell_common.probability_key(d.path, label), label or 'off')
              for label in d.oneof.labels]
    per_decision.append((d, [c for c in curves if c[0] in keys]))
  if all(len(curves) <= 1 for _, curves in per_decision):
    groups: Dict[str, list] = {}
    for d, curves in per_decision:
      groups.setdefault(d.group or d.path, []).extend(
          (key, d.path[len(d.group) + 1:] if d.group else label) for key, label in curves)
    return [(title, curves) for title, curves in groups.items() if curves]
  return [(d.path, curves) for d, curves in per_decision if curves]


def write_cell_report(path: str, history: Sequence[Dict[str, float]], space: SearchSpace,
                      metric_panels: Sequence[Tuple[str, Sequence[str]]], title: str) -> None:
  """Writes the report (PNG, Agg backend, no global matplotlib state)."""
  from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=g-import-not-at-top
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  keys = set().union(*(row.keys() for row in history)) if history else set()
  prob_panels = _probability_panels(space, keys)
  panels = [(t, [(k, k) for k in ks], False) for t, ks in metric_panels]
  panels += [(t, curves, True) for t, curves in prob_panels]
  rows = max(1, math.ceil(len(panels) / COLUMNS))
  columns = min(COLUMNS, max(1, len(panels)))
  figure = Figure(figsize=(3.4 * columns, 2.7 * rows + 0.4), tight_layout=True)
  FigureCanvasAgg(figure)
  figure.suptitle(title, fontsize='medium')
  steps = np.array([row['step'] for row in history])
  for i, (panel_title, curves, is_prob) in enumerate(panels):
    axes = figure.add_subplot(rows, columns, i + 1)
    finals = []
    for key, label in curves:
      values = np.array([row.get(key, np.nan) for row in history], dtype=float)
      if len(values):
        line, = axes.plot(steps, values, label=label, marker='.' if len(values) < 30 else None)
        finals.append((values[-1] if np.isfinite(values[-1]) else -1.0, line))
    axes.set_title(panel_title, fontsize='small')
    axes.tick_params(labelsize='x-small')
    axes.grid(alpha=0.3)
    if is_prob:
      axes.set_ylim(-0.02, 1.02)
    if len(finals) > 1:
      top = [line for _, line in sorted(finals, key=lambda f: -f[0])[:LEGEND_ENTRIES]]
      axes.legend(top, [l.get_label() for l in top], fontsize='xx-small')
  figure.supxlabel('step', fontsize='small')
  tmp = f'{path}.tmp.png'
  figure.savefig(tmp, dpi=72)
  os.replace(tmp, path)
