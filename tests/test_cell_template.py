"""A new pick from a finished template (`cell_template`, `search_cell(template_from=...)`)."""

import json
import shutil

import pytest

from tunas_tf.errors import UserError
from tunas_tf.search import cell_search
from tunas_tf.search.cell_config import CellSearchConfig


def tiny_config(**overrides) -> CellSearchConfig:
  return CellSearchConfig(**{**dict(dataset='digits', image_size=16, channels=4, num_cells=1,
                                    steps=4, batch_size=16, eval_batch_size=64,
                                    checkpoint_every=2), **overrides})


def _candidates(run_dir) -> dict:
  with open(run_dir / cell_search.CANDIDATES_FILE) as f:
    rows = [json.loads(line) for line in f]
  return {tuple(r['indices']): (r['accuracy'], r['loss']) for r in rows}


@pytest.fixture(scope='module')
def finished(tmp_path_factory):
  source = tmp_path_factory.mktemp('template')
  cell_search.search_cell(tiny_config(algorithm='random', num_candidates=10), str(source))
  return source


def test_a_filtered_pick_reuses_the_template_without_training(finished, tmp_path):
  config = tiny_config(algorithm='random', num_candidates=10, candidate_filter='params',
                       candidate_filter_keep=0.3)
  steps = []
  summary = cell_search.search_cell(config, str(tmp_path), template_from=str(finished),
                                    step_callback=lambda step, metrics: steps.append(step))
  assert steps == []  # No training step ran: the copied template is final.
  picked, source = _candidates(tmp_path), _candidates(finished)
  assert len(picked) == 3 and set(picked) <= set(source)
  for indices, scores in picked.items():  # The very weights of the source run score them.
    assert scores == pytest.approx(source[indices], abs=1e-6)
  assert summary['candidate_filter'] == {'proxy': 'params', 'drawn': 10, 'kept': 3}
  assert (tmp_path / 'metrics.jsonl').read_text() == (finished / 'metrics.jsonl').read_text()
  # Resuming the pick is a no-op that returns the same summary.
  assert cell_search.search_cell(config, str(tmp_path), template_from=str(finished)) == summary


def test_a_template_of_other_settings_is_refused_before_anything_is_written(finished, tmp_path):
  out = tmp_path / 'pick'
  with pytest.raises(UserError, match=r'trained another template \(learning_rate: 0.025 -> 0.1'):
    cell_search.search_cell(tiny_config(algorithm='random', num_candidates=10,
                                        learning_rate=0.1), str(out),
                            template_from=str(finished))
  assert not out.exists()


def test_only_template_searchers_and_finished_runs_can_be_picked_from(finished, tmp_path):
  with pytest.raises(UserError, match='needs a template searcher'):
    cell_search.search_cell(tiny_config(algorithm='gdas'), str(tmp_path / 'a'),
                            template_from=str(finished))
  with pytest.raises(UserError, match='holds no finished search'):
    cell_search.search_cell(tiny_config(algorithm='random'), str(tmp_path / 'b'),
                            template_from=str(tmp_path / 'missing'))


def test_a_run_written_before_a_field_existed_counts_it_as_its_default(finished, tmp_path):
  old = tmp_path / 'old'
  shutil.copytree(finished, old)
  config = json.loads((old / 'config.json').read_text())
  for field in ('candidate_score', 'arch_warmup_sampling'):  # Fields added later.
    del config[field]
  (old / 'config.json').write_text(json.dumps(config))
  summary = json.loads((old / 'summary.json').read_text())
  assert cell_search.search_cell(tiny_config(algorithm='random', num_candidates=10),
                                 str(old)) == summary
  picked = cell_search.search_cell(
      tiny_config(algorithm='random', num_candidates=10, candidate_filter='params'),
      str(tmp_path / 'pick'), template_from=str(old))
  assert picked['candidate_filter']['kept'] == 1
  with pytest.raises(UserError, match="another configuration \\(candidate_score: 'accuracy' -> "
                                      "'loss'\\)"):
    cell_search.search_cell(tiny_config(algorithm='random', num_candidates=10,
                                        candidate_score='loss'), str(old))
