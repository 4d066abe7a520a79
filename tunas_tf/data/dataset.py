"""The common dataset interface every source (embedded, image folder, tfds) returns.

A source provides, for its `train` and `test` splits, a `tf.data.Dataset` of cheap
*records* `(record, label)` plus a `decode` function from a record to a uint8 RGB image.
A record is whatever is cheapest to carry before decoding: a file path for an image
folder, encoded bytes for tfds, the image itself for in-memory data. Keeping decode
separate lets subsets and shuffling run on records, so an image that is filtered out
(the other half of the search split) is never read or decoded.
"""

import dataclasses
from typing import Callable, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from tunas_tf.data import splits
from tunas_tf.errors import UserError, unknown_name

SPLITS = ('train', 'test', 'search_train', 'search_valid')


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """What a model builder or searcher needs to know about a dataset.

  Attributes:
    name: registered name (`digits`, `cifar10`) or the folder / archive stem.
    num_classes: number of classes; labels are 0..num_classes-1.
    class_names: one name per label index (sorted folder names for image folders).
    num_train: examples in the `train` split.
    num_test: examples in the `test` split.
    image_shape: (height, width, 3) of the images as stored, or None when sizes vary.
      Images are always delivered with 3 channels (grayscale is replicated).
    allow_flip: whether a horizontal flip keeps the label valid (False for digits).
    source: where the data came from, e.g. 'embedded:sklearn.load_digits',
      'image_folder:/path', 'tfds:cifar10@/data_dir'.
  """
  name: str
  num_classes: int
  class_names: Tuple[str, ...]
  num_train: int
  num_test: int
  image_shape: Optional[Tuple[int, int, int]]
  allow_flip: bool
  source: str

  def __post_init__(self):
    if self.num_classes < 1:
      raise ValueError(f'num_classes must be >= 1; got {self.num_classes!r}')
    if len(self.class_names) != self.num_classes:
      raise ValueError(f'{len(self.class_names)} class names for {self.num_classes} classes')
    if self.num_train < 0 or self.num_test < 0:
      raise ValueError(f'negative split size: train={self.num_train}, test={self.num_test}')
    if self.image_shape is not None and (len(self.image_shape) != 3 or self.image_shape[2] != 3):
      raise ValueError(f'image_shape must be (height, width, 3) or None; got {self.image_shape!r}')


RecordsFn = Callable[[str], tf.data.Dataset]
DecodeFn = Callable[[tf.Tensor], tf.Tensor]


class ImageDataset:
  """A labelled image dataset with train / test / search_train / search_valid splits.

  `search_train` and `search_valid` are a deterministic split of `train` (see
  `splits.split_indices`), fixed when the dataset is loaded.
  """

  def __init__(self,
               info: DatasetInfo,
               records_fn: RecordsFn,
               decode_fn: DecodeFn,
               search_valid_fraction: float = 0.5,
               split_seed: int = 0,
               train_labels: Optional[Sequence[int]] = None):
    """Creates the dataset.

    Args:
      info: the dataset description.
      records_fn: maps 'train' or 'test' to a dataset of (record, int32 label) in a fixed
        order (the search split indexes into the `train` order).
      decode_fn: maps a record to a uint8 [H, W, 3] image tensor.
      search_valid_fraction: fraction of `train` held out as `search_valid`.
      split_seed: seed of the search split.
      train_labels: labels of `train` in record order when cheaply known; makes the
        search split stratified.
    """
    splits.check_fraction(search_valid_fraction)
    self._info = info
    self._records_fn = records_fn
    self._decode_fn = decode_fn
    self._search_valid_fraction = float(search_valid_fraction)
    self._search_indices = splits.split_indices(
        info.num_train, search_valid_fraction, split_seed,
        labels=None if train_labels is None else np.asarray(train_labels))

  @property
  def info(self) -> DatasetInfo:
    return self._info

  def __repr__(self) -> str:
    return f'ImageDataset({self._info!r}, search_valid_fraction={self._search_valid_fraction})'

  def search_indices(self) -> Tuple[np.ndarray, np.ndarray]:
    """Returns the sorted `train` indices of (search_train, search_valid)."""
    return self._search_indices

  def _check_split(self, split: str) -> None:
    if split not in SPLITS:
      raise unknown_name('split', split, SPLITS)

  def split_size(self, split: str) -> int:
    """Number of examples in `split`."""
    self._check_split(split)
    if split == 'train':
      return self._info.num_train
    if split == 'test':
      return self._info.num_test
    train_idx, valid_idx = self.search_indices()
    return len(train_idx) if split == 'search_train' else len(valid_idx)

  def records(self, split: str) -> tf.data.Dataset:
    """Undecoded `(record, int32 label)` pairs of `split`, in a fixed order."""
    self._check_split(split)
    if split in ('train', 'test'):
      return self._records_fn(split)
    train_idx, valid_idx = self.search_indices()
    mask = np.zeros(self._info.num_train, dtype=bool)
    mask[train_idx if split == 'search_train' else valid_idx] = True
    mask = tf.constant(mask)
    # Filtering by position works for every source, including tfds which cannot be
    # indexed; the records are cheap, so skipping the other half costs little.
    return (self._records_fn('train').enumerate()
            .filter(lambda i, example: tf.gather(mask, i))
            .map(lambda i, example: example))

  def decode(self, record: tf.Tensor) -> tf.Tensor:
    """Decodes one record into a uint8 [H, W, 3] image."""
    image = self._decode_fn(record)
    image.set_shape(self._info.image_shape or (None, None, 3))
    return image

  def examples(self, split: str) -> tf.data.Dataset:
    """Decoded `(uint8 [H, W, 3] image, int32 label)` pairs of `split`, unbatched."""
    return self.records(split).map(lambda r, y: (self.decode(r), y),
                                   num_parallel_calls=tf.data.AUTOTUNE)

  def as_numpy(self, split: str, limit: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Returns `(uint8 images [N, H, W, 3], int32 labels [N])` of a split in memory.

    Args:
      split: one of SPLITS.
      limit: keep at most this many examples (in record order).

    Raises:
      UserError: when the images of the split do not all have the same size.
    """
    ds = self.examples(split)
    if limit is not None:
      ds = ds.take(limit)
    images, labels = [], []
    for image, label in ds.as_numpy_iterator():
      if images and image.shape != images[0].shape:
        raise UserError(
            f'{self._info.name} {split}: images have different sizes ({images[0].shape} and '
            f'{image.shape}); use make_pipeline(), which resizes, instead of as_numpy()')
      images.append(image)
      labels.append(label)
    if not images:
      return np.zeros((0,) + (self._info.image_shape or (0, 0, 3)), np.uint8), np.zeros(0, np.int32)
    return np.stack(images), np.asarray(labels, np.int32)
