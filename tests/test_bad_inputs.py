"""The bad-input catalogue: wrong flags, files and runs given to the real launchers.

Every case must end with exactly one `error: ...` line on stderr (no traceback), naming the bad
value, with exit status 2, and must leave every file under the test directory as it was (nothing
created, changed or removed). The cases of one launcher run in one process
(tests/bad_input_runner.py), each through the launcher's real entry point.
"""

import json
import os
import subprocess
import sys

import pytest
from PIL import Image

from tunas_tf.training.config import TrainConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# launcher -> [(arguments, text the error line must contain)]; {root} is the test directory.
CASES = {
    'launch.train': [
        (['--optimizer=adam'], "flag --optimizer=adam: value should be one of"),
        (['--epochs=ten'], "flag --epochs=ten: invalid literal for int()"),
        (['--output_dir={root}/run', 'stray'], "unexpected positional argument(s) 'stray'"),
        (['--output_dir={root}/a_file'], "--output_dir='{root}/a_file' is a file"),
        (['--output_dir={root}/a_file/run'], "cannot be created: '{root}/a_file' is a file"),
        (['--arch=0:-1:2', '--output_dir={root}/run'], "Index -1 (position 1) of '0:-1:2'"),
        (['--arch={root}/bad_arch.json', '--output_dir={root}/run'],
         "Architecture file '{root}/bad_arch.json': Space 'proxylessnas' has 73 decisions"),
        (['--arch={root}/not_json.json', '--output_dir={root}/run'],
         "Architecture file '{root}/not_json.json': Architecture JSON is not valid JSON"),
        (['--arch={root}/missing.json', '--output_dir={root}/run'],
         "Architecture file '{root}/missing.json' does not exist"),
        (['--arch=resnet50', '--search_space=', '--output_dir={root}/run'],
         "Unknown search space ''; known search spaces:"),
        (['--search_space=proxyless', '--output_dir={root}/run'], "Unknown search space "
         "'proxyless'"),
        (['--arch=random:x', '--output_dir={root}/run'], "'random:x'"),
        (['--image_size=4', '--output_dir={root}/run'], 'image_size must be at least 8, got 4'),
        (['--batch_size=0', '--output_dir={root}/run'], 'batch_size must be a positive integer'),
        (['--dataset={root}/nowhere', '--output_dir={root}/run'],
         "Dataset path '{root}/nowhere' does not exist"),
        (['--dataset={root}/one_class', '--output_dir={root}/run'], 'one class directory'),
        (['--output_dir={root}/other_run'],
         "another configuration (arch: 'mnasnet_b1' -> 'proxylessnas_mobile'"),
    ],
    'launch.search_cell': [
        (['--algorithm=tunas', '--output_dir={root}/run'], 'flag --algorithm=tunas'),
        (['--preset=huge', '--output_dir={root}/run'], "'huge'"),
        (['--search_space=pgnas_resnet', '--output_dir={root}/run'],
         "Algorithm 'gdas' does not search space 'pgnas_resnet'"),
        (['--template_sampling=mixture', '--output_dir={root}/run'],
         "template_sampling='mixture' applies to the template of"),
        (['--candidate_filter=flopz', '--algorithm=random', '--output_dir={root}/run'],
         "'flopz'"),
        (['--tau_min=20', '--output_dir={root}/run'], 'tau_min=20.0 must be <= tau_max=10.0'),
        (['--template_from={root}/nowhere', '--algorithm=random', '--output_dir={root}/run'],
         "'{root}/nowhere'"),
        (['--strategy=tpu', '--output_dir={root}/run'], 'TPU'),
        (['--image_size=0', '--output_dir={root}/run'], 'image_size'),
        (['--output_dir={root}/a_file'], "--output_dir='{root}/a_file' is a file"),
    ],
    'launch.search': [
        (['--output_dir={root}/run'], 'target_latency_ms'),
        (['--target_latency_ms=10', '--output_dir={root}/run'], 'needs a latency table'),
        (['--target_latency_ms=10', '--latency_table={root}/nowhere.json',
          '--output_dir={root}/run'], "Latency table '{root}/nowhere.json' does not exist"),
        (['--target_latency_ms=10', '--latency_table={root}/not_json.json',
          '--output_dir={root}/run'], "'{root}/not_json.json'"),
        (['--target_latency_ms=10', '--cost_model=macs', '--reward=best',
          '--output_dir={root}/run'], "'best'"),
        (['--target_latency_ms=-1', '--cost_model=macs', '--output_dir={root}/run'],
         'target_latency_ms'),
    ],
    'launch.export_tflite': [
        (['--arch=resnet50', '--output_dir={root}/run'], "'resnet50' is neither a reference"),
        (['--arch=mobilenet_v2', '--weights={root}/nowhere.h5', '--output_dir={root}/run'],
         "Weights file '{root}/nowhere.h5' does not exist"),
        (['--arch=mobilenet_v2', '--image_size=32', '--num_classes=10',
          '--weights={root}/random.weights.h5', '--output_dir={root}/run'],
         "Weights file '{root}/random.weights.h5' cannot be loaded into this network"),
        (['--arch=mobilenet_v2', '--num_threads=0', '--output_dir={root}/run'], 'num_threads'),
        (['--arch=mobilenet_v2', '--quantize=int4', '--output_dir={root}/run'],
         'flag --quantize=int4'),
    ],
    'launch.profile_latency': [
        (['--search_space=proxylessnas', '--threads=0', '--output={root}/t.json'],
         '--threads=0 is not a thread count'),
        (['--search_space=proxylessnas', '--output={root}/a_dir'],
         "--output='{root}/a_dir' is a directory"),
        (['--search_space=proxylessnas', '--output={root}/a_file/t.json'],
         "cannot be created: '{root}/a_file' is a file"),
        (['--output={root}/t.json'], '--search_space required'),
        (['--validate', '--count_keys', '--search_space=proxylessnas'], 'Choose one mode'),
        (['--search_space=proxylessnas', '--output={root}/not_json.json'],
         "'{root}/not_json.json'"),
        (['--search_space=proxylessnas', '--granularity=layer', '--output={root}/t.json'],
         'flag --granularity=layer'),
    ],
    'launch.nb201_lookup': [
        (['--genotype=|conv~0|'], "'|conv~0|'"),
        (['--genotype=|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|'
          'skip_connect~1|skip_connect~2|', '--csv={root}/nowhere.csv'],
         "CSV '{root}/nowhere.csv' does not exist"),
        (['--genotype=|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|'
          'skip_connect~1|skip_connect~2|', '--csv={root}/short.csv'],
         '1 architectures, not the 15625 of NAS-Bench-201'),
        (['--genotype=x', '--arch=y'], 'Pass exactly one of --genotype and --arch'),
    ],
}

_SHORT_CSV = ('CIFAR10TestAccuracy200Epochs,CIFAR100TestAccuracy200Epochs,'
              'ImageNetTestAccuracy200Epochs,ArchitectureString,UniqueString\n'
              '90.0,70.0,40.0,|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|'
              'skip_connect~1|skip_connect~2|,x\n')


def _write_fixtures(root):
  """The files the cases point at; none of them may change."""
  files = {
      'a_file': 'keep me',
      'bad_arch.json': json.dumps({'space': 'proxylessnas', 'indices': [1, 2]}),
      'not_json.json': '{oops',
      'short.csv': _SHORT_CSV,
      'other_run/config.json': json.dumps(TrainConfig(arch='mnasnet_b1').to_dict()),
  }
  for name, text in files.items():
    os.makedirs(os.path.dirname(os.path.join(root, name)), exist_ok=True)
    with open(os.path.join(root, name), 'w') as f:
      f.write(text)
  with open(os.path.join(root, 'random.weights.h5'), 'wb') as f:
    f.write(os.urandom(4096))
  os.makedirs(os.path.join(root, 'a_dir'))
  for split in ('train', 'test'):
    os.makedirs(os.path.join(root, 'one_class', split, 'cat'))
    Image.new('RGB', (8, 8), (200, 30, 30)).save(
        os.path.join(root, 'one_class', split, 'cat', '0.png'))


@pytest.mark.parametrize('module', sorted(CASES))
def test_bad_input_is_one_error_line_and_loses_nothing(tmp_path, module):
  root = str(tmp_path)
  _write_fixtures(root)
  cases = [[a.format(root=root) for a in args] for args, _ in CASES[module]]
  result = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'tests', 'bad_input_runner.py'), module, root],
      input=json.dumps(cases), cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT),
      capture_output=True, text=True, timeout=600, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  outcomes = [json.loads(line) for line in result.stdout.splitlines() if line.startswith('{')]
  assert len(outcomes) == len(cases)
  problems = []
  for (_, message), outcome in zip(CASES[module], outcomes):
    lines = outcome['stderr'].strip().splitlines()
    expected = message.format(root=root)
    if (outcome['status'] != 2 or not lines or not lines[-1].startswith('error: ')
        or expected not in lines[-1] or 'Traceback' in outcome['stderr']
        or sum(l.startswith('error: ') for l in lines) != 1 or outcome['changed']):
      problems.append(f"{outcome['args']}: status {outcome['status']}, changed "
                      f"{outcome['changed']}, expected {expected!r}, stderr "
                      f"{outcome['stderr'][-600:]!r}")
  assert not problems, '\n'.join(problems)
