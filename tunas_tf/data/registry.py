"""The dataset registry: one entry point from a `--dataset` value to an ImageDataset.

A value is either a registered name (an embedded dataset such as `digits`, or a supported
tfds name such as `cifar10`) or a filesystem path to an image folder or tarball. Registered
names win over same-named directories in the working directory; write `./digits` to mean
the directory.
"""

import os
import types
from typing import Optional, Tuple

from absl import logging

from tunas_tf.data import archive
from tunas_tf.data import embedded
from tunas_tf.data import image_folder
from tunas_tf.data import tfds_source
from tunas_tf.data.dataset import ImageDataset
from tunas_tf.errors import UserError, unknown_name

DEFAULT_DATASET = 'digits'
EMBEDDED_DATASETS = types.MappingProxyType({'digits': embedded.load_digits})


def list_datasets() -> Tuple[str, ...]:
  """Sorted names accepted by `load_dataset` (besides filesystem paths)."""
  return tuple(sorted({*EMBEDDED_DATASETS, *tfds_source.TFDS_DATASETS}))


def looks_like_path(value: str) -> bool:
  """Whether a `--dataset` value that is not a registered name means a filesystem path."""
  return (os.sep in value or '/' in value or value.startswith(('.', '~')) or
          archive.is_archive(value) or os.path.exists(value))


def load_dataset(name_or_path: str,
                 data_dir: Optional[str] = None,
                 *,
                 search_valid_fraction: float = 0.5,
                 split_seed: int = 0,
                 cache_dir: Optional[str] = None) -> ImageDataset:
  """Loads a dataset by registered name or path, never downloading anything.

  Args:
    name_or_path: a name from `list_datasets()` or a path to an image folder / tarball
      laid out as train/<class>/*.jpg and test/<class>/*.jpg.
    data_dir: tfds data directory (tfds names only; default $TFDS_DATA_DIR or
      ~/tensorflow_datasets).
    search_valid_fraction: fraction of `train` held out as `search_valid`, in (0, 1).
    split_seed: seed of the deterministic search_train / search_valid split.
    cache_dir: where tarballs are extracted (default ~/.cache/tunas_tf/datasets).

  Returns:
    The ImageDataset.

  Raises:
    UserError: unknown name, missing path or wrong layout, tfds data not prepared.
  """
  if not isinstance(name_or_path, str) or not name_or_path:
    raise UserError(f'dataset must be a non-empty name or path; got {name_or_path!r}')
  split_args = dict(search_valid_fraction=search_valid_fraction, split_seed=split_seed)
  if name_or_path in tfds_source.TFDS_DATASETS:
    return tfds_source.load_tfds(name_or_path, tfds_source.TFDS_DATASETS[name_or_path],
                                 data_dir=data_dir, **split_args)
  if data_dir is not None:
    logging.warning('data_dir=%r is only used by tfds datasets; ignored for %r',
                    data_dir, name_or_path)
  if name_or_path in EMBEDDED_DATASETS:
    return EMBEDDED_DATASETS[name_or_path](**split_args)
  if looks_like_path(name_or_path):
    return image_folder.load_image_folder(name_or_path, cache_dir=cache_dir, **split_args)
  error = unknown_name('dataset', name_or_path, list_datasets())
  raise UserError(f'{error}; a path to an image folder or .tar.gz with train/<class>/*.jpg '
                  f'and test/<class>/*.jpg is also accepted')
