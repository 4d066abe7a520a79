"""Budget presets of the cell searches: `quick`, `cpu` and `paper`.

A preset is a set of `CellSearchConfig` fields per algorithm; explicit settings override it
(`resolve`), and the resolved configuration is what config.json and summary.json record.

* `paper`: the reference settings (AutoDL's GDAS / SETN / DARTS / random NB201 searches,
  anchors/cellsearch.md §1.3-1.4): C = 16, N = 5, 32×32, batch 64, 250 epochs, T = 1000
  candidates on 512 held-out images. Days on a 2-core CPU; hours on one GPU.
* `cpu` (≤ 60 min on a 2-core host, CIFAR-10) and `quick` (≤ 15 min): the standard C = 16,
  N = 5 network (kept: the issue prefers reducing resolution or data before depth and width)
  at 16×16, as many steps as the time allows at each algorithm's measured cost per step, and
  100 candidates for SETN / random search (scoring is cheap; the budget goes to training).
  Everything else stays at the reference values; the short-run remedies (fair sampling,
  arch warm-up, a scaled arch rate, candidate filters) stay off until a study shows they help.

The search quality these budgets give is measured by `bench.nb201_study` and
`bench.nb201_ranking` (figures in the README's NAS-Bench-201 section).
"""

from typing import Any, Dict, List, Tuple

from tunas_tf.errors import unknown_name
from tunas_tf.search.cell_config import PRESETS

# Steps at 16×16: 80% of the budget (a busy host runs slower) less ~1 min of start-up and
# candidate scoring, over the seconds per step measured on the 2-core development host with
# nothing else running (launch.search_cell --preset=quick --steps=120, rate after tracing):
# random 0.100, GDAS 0.203, SETN 0.368, DARTS 0.550, PGNAS (pgnas_resnet) 0.273 s/step.
_STEPS = {
    'quick': {'random': 7000, 'gdas': 3500, 'setn': 1900, 'darts': 1250, 'pgnas': 2500},
    'cpu': {'random': 28000, 'gdas': 14000, 'setn': 7500, 'darts': 5000, 'pgnas': 10000},
}
_REDUCED = {'image_size': 16, 'channels': 16, 'num_cells': 5, 'num_candidates': 100,
            'eval_batch_size': 512, 'checkpoint_every': 1000}
PGNAS_CANDIDATES = 100


def settings(preset: str, algorithm: str) -> Dict[str, Any]:
  """The `CellSearchConfig` fields that `preset` sets for `algorithm`."""
  if preset not in PRESETS:
    raise unknown_name('preset', preset, PRESETS)
  if preset == 'paper':
    return {'image_size': 32, 'channels': 0, 'num_cells': 0, 'epochs': 250, 'steps': 0,
            'batch_size': 64, 'num_candidates': 0, 'eval_batch_size': 512}
  out = dict(_REDUCED, steps=_STEPS[preset][algorithm], batch_size=64)
  if algorithm == 'pgnas':
    out.update(channels=0, num_cells=0, num_candidates=PGNAS_CANDIDATES)
  return out


def resolve(preset: str, algorithm: str, defaults: Dict[str, Any], explicit: Dict[str, Any]
            ) -> Tuple[Dict[str, Any], List[str]]:
  """(config fields, notes): `defaults`, the preset's settings over them, then the `explicit`
  settings on top. A note names each explicit setting that replaces a different preset value
  (the explicit one wins); an explicit epoch count with no explicit step count clears the
  preset's steps, so the epochs are what runs."""
  base = settings(preset, algorithm) if preset else {}
  if 'epochs' in explicit and 'steps' not in explicit and base.get('steps'):
    base = {**base, 'steps': 0}
  notes = [f'--{k}={v!r} overrides preset {preset!r} ({k}={base[k]!r})'
           for k, v in sorted(explicit.items()) if k in base and base[k] != v]
  return {**defaults, **base, **explicit, 'preset': preset}, notes
