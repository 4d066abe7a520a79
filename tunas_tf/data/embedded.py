"""Embedded real datasets that need no download: the default for offline use and tests.

`digits` is scikit-learn's `load_digits`: 1797 real 8x8 grayscale handwritten digits
(the UCI "Optical Recognition of Handwritten Digits" test set) shipped inside the
scikit-learn wheel, so it loads on a machine without network.
"""

import numpy as np
import tensorflow as tf

from tunas_tf.data import splits
from tunas_tf.data.dataset import DatasetInfo, ImageDataset

# load_digits has no official train/test split; hold out a fixed stratified 20%.
DIGITS_TEST_FRACTION = 0.2
_DIGITS_TEST_SEED = 20240101
# Pixel values of load_digits are counts of set pixels in 4x4 blocks: integers 0..16.
_DIGITS_MAX_VALUE = 16


def digits_arrays():
  """Returns `(uint8 images [1797, 8, 8, 3], int32 labels [1797])` of sklearn's digits.

  Gray levels 0..16 are scaled to 0..255 and replicated to 3 channels so every dataset
  in the library is RGB uint8.
  """
  # Imported here: scikit-learn costs about a second to import and only digits needs it.
  from sklearn import datasets as sk_datasets  # pylint: disable=g-import-not-at-top
  bunch = sk_datasets.load_digits()
  gray = np.rint(bunch.images * (255.0 / _DIGITS_MAX_VALUE)).clip(0, 255).astype(np.uint8)
  images = np.repeat(gray[..., np.newaxis], 3, axis=-1)
  return images, bunch.target.astype(np.int32)


def load_digits(search_valid_fraction: float = 0.5, split_seed: int = 0) -> ImageDataset:
  """Loads the embedded `digits` dataset (1438 train / 359 test images of 8x8x3).

  Args:
    search_valid_fraction: fraction of `train` held out as `search_valid`.
    split_seed: seed of the search split (the train/test split itself is fixed).

  Returns:
    An ImageDataset whose records are the uint8 images themselves.
  """
  images, labels = digits_arrays()
  train_idx, test_idx = splits.split_indices(
      len(labels), DIGITS_TEST_FRACTION, _DIGITS_TEST_SEED, labels=labels)
  arrays = {'train': (images[train_idx], labels[train_idx]),
            'test': (images[test_idx], labels[test_idx])}
  info = DatasetInfo(
      name='digits',
      num_classes=10,
      class_names=tuple(str(d) for d in range(10)),
      num_train=len(train_idx),
      num_test=len(test_idx),
      image_shape=(8, 8, 3),
      allow_flip=False,  # A mirrored 2, 3, 5 or 7 is not that digit.
      source='embedded:sklearn.datasets.load_digits')

  def records_fn(split):
    return tf.data.Dataset.from_tensor_slices(arrays[split])

  return ImageDataset(info, records_fn, decode_fn=tf.identity,
                      search_valid_fraction=search_valid_fraction, split_seed=split_seed,
                      train_labels=arrays['train'][1])
