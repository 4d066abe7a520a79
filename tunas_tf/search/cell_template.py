"""A new pick from a finished one-shot template, without training it again.

Random search and SETN train a template (the shared weights) and then pick: they draw
candidates, optionally pre-filter them with a training-free proxy, and keep the one the
template scores best. Settings that act only on that pick (`SELECTION_FIELDS`) can be changed
after the fact: `check_source` checks the source run and `start_from` copies its final
checkpoint and metrics into a new run directory, so `search_cell(config, output_dir)` resumes
at the last step and only picks. The source must be a finished run of the same configuration
apart from those fields; anything else would train a template other than the one copied.
"""

import glob
import os
import shutil

import tensorflow as tf

from tunas_tf import fileio
from tunas_tf.errors import UserError
from tunas_tf.search import loop
from tunas_tf.search.cell_config import TEMPLATE_ALGORITHMS, CellSearchConfig

SELECTION_FIELDS = ('candidate_filter', 'candidate_filter_keep', 'candidate_score',
                    'num_candidates', 'eval_batch_size')


def check_source(source_dir: str, config: CellSearchConfig, resumable: tuple) -> str:
  """The final checkpoint of the finished run in `source_dir`; a UserError unless that run
  trained the template `config` asks for."""
  if config.algorithm not in TEMPLATE_ALGORITHMS:
    raise UserError(f'--template_from needs a template searcher ({", ".join(TEMPLATE_ALGORITHMS)}),'
                    f' not --algorithm={config.algorithm}')
  if not os.path.exists(os.path.join(source_dir, loop.SUMMARY_FILE)):
    raise UserError(f'--template_from={source_dir!r} holds no finished search (no '
                    f'{loop.SUMMARY_FILE}); finish it first or pass another run')
  previous = fileio.read_json(os.path.join(source_dir, loop.CONFIG_FILE))
  changes = loop.config_changes(previous, config, SELECTION_FIELDS + tuple(resumable))
  if changes:
    raise UserError(f'--template_from={source_dir!r} trained another template ({changes}); '
                    f'only {", ".join(SELECTION_FIELDS)} may differ')
  latest = tf.train.latest_checkpoint(os.path.join(source_dir, loop.CHECKPOINT_DIR))
  if latest is None:
    raise UserError(f'--template_from={source_dir!r} kept no checkpoint of its template')
  return latest


def start_from(source_dir: str, latest: str, output_dir: str) -> None:
  """Seeds `output_dir` with `latest`, the final template of `source_dir` that
  `check_source` returned (see the module docstring). A no-op if `output_dir` already holds a
  checkpoint (a resumed pick)."""
  ckpt_dir = os.path.join(output_dir, loop.CHECKPOINT_DIR)
  if tf.train.latest_checkpoint(ckpt_dir) is not None:
    return
  os.makedirs(ckpt_dir, exist_ok=True)
  for path in glob.glob(latest + '.*'):
    shutil.copyfile(path, os.path.join(ckpt_dir, os.path.basename(path)))
  metrics = os.path.join(source_dir, loop.METRICS_FILE)
  if os.path.exists(metrics):
    shutil.copyfile(metrics, os.path.join(output_dir, loop.METRICS_FILE))
  # Written last: until this index exists the copy is invisible, and a rerun copies again.
  tf.compat.v1.train.update_checkpoint_state(ckpt_dir, os.path.basename(latest))
