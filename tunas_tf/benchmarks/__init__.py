"""Ground truth for judging searchers (pure Python, no TensorFlow).

Benchmark code only: searchers (`tunas_tf.search`) must never import this package, since
ground-truth accuracies feeding a search would be cheating (tests/test_nb201.py checks it).
"""

from tunas_tf.benchmarks.nb201 import (DATASETS, NB201Benchmark, NB201Record, SpaceStats,
                                       default_csv_path)
from tunas_tf.benchmarks.ranking import kendall_tau
