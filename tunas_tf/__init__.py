"""tunas-tf: hardware-aware one-shot neural architecture search in TensorFlow 2 / Keras 3."""

__version__ = '0.1.0'
