"""Budget presets of the cell searches: `quick`, `cpu` and `paper`.

A preset is a set of `CellSearchConfig` fields per algorithm; explicit settings override it
(`resolve`), and the resolved configuration is what config.json and summary.json record.

* `paper`: the reference settings (AutoDL's GDAS / SETN / DARTS / random NB201 searches,
  anchors/cellsearch.md §1.3-1.4): C = 16, N = 5, 32×32, batch 64, 250 epochs, T = 1000
  candidates on 512 held-out images. Days on a 2-core CPU; hours on one GPU.
* `cpu` (≤ 60 min on a 2-core host, CIFAR-10) and `quick` (≤ 15 min): the standard C = 16,
  N = 5 network at 16×16 (a quarter of the pixels: measured at about 4× fewer seconds per
  step), as many steps as the time allows for each algorithm's cost per step, and fewer
  candidates (the one-shot scores are cheap; the budget goes to training).

How the budgets were chosen, and the search quality they give, is in bench/nb201_study.py's
docstring (figures from `bench.nb201_ranking` and `bench.nb201_study`).
"""

from typing import Any, Dict, List, Tuple

from tunas_tf.errors import unknown_name
from tunas_tf.search.cell_config import PRESETS
# Steps of the search at 16×16 per preset and algorithm: wall time / measured s per step
# (bench.nb201_study prints the time each run took).
_STEPS = {
    'quick': {'gdas': 6000, 'setn': 4000, 'darts': 1500, 'random': 6000, 'pgnas': 1500},
    'cpu': {'gdas': 24000, 'setn': 16000, 'darts': 6000, 'random': 24000, 'pgnas': 6000},
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
