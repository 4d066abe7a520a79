r"""Benchmark: float TFLite parity of the reference models exported through the CLI.

  python -m bench.cli_export_parity [--image_size=224 --models=a,b --output_dir=/tmp/parity]

Runs `python -m launch.export_tflite --arch=M --image_size=N` (untrained, 1000 classes, default
flags: batch norms fitted by --recalibrate_bn, parity enforced) for each model, one at a time, and
prints its exit status and the parity figures from its summary.json. The target: every model
within 1e-4 absolute or 1e-5 relative (the export's own bounds, so a miss exits with status 2).
"""

import json
import os
import subprocess
import sys
import tempfile

from absl import app
from absl import flags

from bench.paths import REPO

FLAGS = flags.FLAGS
flags.DEFINE_integer('image_size', 224, 'Input size.')
flags.DEFINE_list('models', ['mobilenet_v2', 'mnasnet_b1', 'proxylessnas_mobile',
                             'mobilenet_v3_large'], 'Reference models.')
flags.DEFINE_string('output_dir', '', 'Where the exports go (default: a temporary directory).')


def _export(name: str, output_dir: str) -> str:
  result = subprocess.run(
      [sys.executable, '-m', 'launch.export_tflite', f'--arch={name}',
       f'--image_size={FLAGS.image_size}', '--saved_model=false', f'--output_dir={output_dir}'],
      cwd=REPO, capture_output=True, text=True, check=False)
  summary_path = os.path.join(output_dir, 'summary.json')
  if result.returncode != 0 or not os.path.exists(summary_path):
    last = result.stderr.strip().splitlines()[-1:] or ['']
    return f'{name:20s} exit {result.returncode}: {last[0][:300]}'
  with open(summary_path) as f:
    summary = json.load(f)
  return (f'{name:20s} exit 0  max|diff| {summary["tflite_max_abs_diff"]:.3g}  relative '
          f'{summary["tflite_max_rel_diff"]:.3g}  latency {summary["latency_ms"]:.2f} ms')


def main(unused_argv):
  root = FLAGS.output_dir or tempfile.mkdtemp(prefix='cli_export_parity_')
  print(f'launch.export_tflite at {FLAGS.image_size} px, untrained, default flags ({root})')
  for name in FLAGS.models:
    print(_export(name, os.path.join(root, name)), flush=True)


if __name__ == '__main__':
  app.run(main)
