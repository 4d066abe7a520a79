"""Paths the benches share (flag-free, so any bench can import it)."""

import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CIFAR = os.path.join(os.path.dirname(REPO), 'shared', 'data', 'cifar10-jpg.tar.gz')
