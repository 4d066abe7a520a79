"""TensorFlow Datasets sources, read ONLY from data prepared beforehand.

This library never downloads: `tfds.load(..., download=True)` without network retries for
minutes before failing. We first look for the prepared dataset on the filesystem (no
TensorFlow Datasets import, no network), then confirm with `builder.is_prepared()`, and
fail fast with a UserError that says how to prepare the data otherwise.
"""

import dataclasses
import glob
import os
import types
from typing import Optional

import tensorflow as tf

from tunas_tf.data.dataset import DatasetInfo, ImageDataset
from tunas_tf.errors import UserError


@dataclasses.dataclass(frozen=True)
class TfdsSpec:
  """How one tfds dataset maps onto our train / test splits.

  Attributes:
    train_split: tfds split used as `train`.
    test_split: tfds split used as `test` (ImageNet has no labelled test split, so its
      `validation` split is the test set, as in the NAS literature).
    allow_flip: whether a horizontal flip preserves labels.
    prepare_hint: extra preparation advice (e.g. manual downloads).
  """
  train_split: str = 'train'
  test_split: str = 'test'
  allow_flip: bool = True
  prepare_hint: str = ''


# Read-only: the registry is data, not state.
TFDS_DATASETS = types.MappingProxyType({
    'cifar10': TfdsSpec(),
    'cifar100': TfdsSpec(),
    'imagenet2012': TfdsSpec(
        test_split='validation',
        prepare_hint=('imagenet2012 needs the ILSVRC2012 tarballs in the manual dir: '
                      '`tfds build imagenet2012 --manual_dir=DIR_WITH_TARS --data_dir=...`')),
    'imagenette': TfdsSpec(test_split='validation'),
    'mnist': TfdsSpec(allow_flip=False),
    'fashion_mnist': TfdsSpec(),
    'svhn_cropped': TfdsSpec(allow_flip=False),
})


def default_data_dir() -> str:
  """The directory tfds itself uses by default ($TFDS_DATA_DIR or ~/tensorflow_datasets)."""
  return os.environ.get('TFDS_DATA_DIR') or os.path.join(
      os.path.expanduser('~'), 'tensorflow_datasets')


def _not_prepared_error(name: str, data_dir: str, spec: TfdsSpec, detail: str) -> UserError:
  hint = f' {spec.prepare_hint}.' if spec.prepare_hint else ''
  return UserError(
      f'tfds dataset {name!r} is not prepared in data_dir {data_dir!r} ({detail}); '
      f'tunas_tf never downloads data. Prepare it on a machine with network with '
      f'`tfds build {name} --data_dir={data_dir}` (then copy that directory here), or '
      f'pass --dataset=/path/to/folder_or.tar.gz holding train/<class>/*.jpg and '
      f'test/<class>/*.jpg, or use the embedded offline dataset `digits`.{hint}')


def _has_prepared_files(name: str, data_dir: str) -> bool:
  """Cheap check: some `<data_dir>/<name>/[<config>/]<version>/dataset_info.json`."""
  base = os.path.join(data_dir, name)
  return any(glob.glob(os.path.join(base, '*', 'dataset_info.json')) +
             glob.glob(os.path.join(base, '*', '*', 'dataset_info.json')))


def load_tfds(name: str,
              spec: TfdsSpec,
              data_dir: Optional[str] = None,
              search_valid_fraction: float = 0.5,
              split_seed: int = 0) -> ImageDataset:
  """Loads a prepared tfds image-classification dataset without any download.

  Args:
    name: tfds builder name, e.g. 'cifar10'.
    spec: split names and flip policy for `name`.
    data_dir: tfds data directory; `default_data_dir()` when None. Remote directories
      (e.g. gs://...) skip the local pre-check and go straight to tfds.
    search_valid_fraction: fraction of `train` held out as `search_valid`.
    split_seed: seed of the search split.

  Raises:
    UserError: when the dataset is not prepared in `data_dir`.
  """
  data_dir = os.path.expanduser(data_dir) if data_dir else default_data_dir()
  if '://' not in data_dir and not _has_prepared_files(name, data_dir):
    raise _not_prepared_error(name, data_dir, spec, f'no {name}/<version>/dataset_info.json')
  # Imported only once we know the data is there: it costs ~1 s.
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  builder = tfds.builder(name, data_dir=data_dir)
  if not builder.is_prepared():
    raise _not_prepared_error(name, data_dir, spec,
                              f'version {builder.version} missing from {builder.data_dir}')
  tfds_info = builder.info
  if tfds_info.supervised_keys is None:
    raise UserError(f'tfds dataset {name!r} has no (image, label) supervised keys')
  image_key, label_key = tfds_info.supervised_keys
  label_feature = tfds_info.features[label_key]
  image_feature = tfds_info.features[image_key]
  height, width, _ = image_feature.shape
  info = DatasetInfo(
      name=name,
      num_classes=label_feature.num_classes,
      class_names=tuple(label_feature.names),
      num_train=tfds_info.splits[spec.train_split].num_examples,
      num_test=tfds_info.splits[spec.test_split].num_examples,
      image_shape=(height, width, 3) if height and width else None,
      allow_flip=spec.allow_flip,
      source=f'tfds:{name}@{data_dir}')
  tfds_split = {'train': spec.train_split, 'test': spec.test_split}

  def records_fn(split):
    # SkipDecoding keeps the encoded bytes as the record: the search split and shuffling
    # then skip and move bytes, and only kept images are decoded. shuffle_files=False
    # keeps the order fixed, which the search split relies on.
    ds = builder.as_dataset(split=tfds_split[split], shuffle_files=False,
                            decoders={image_key: tfds.decode.SkipDecoding()},
                            as_supervised=True)
    return ds.map(lambda image, label: (image, tf.cast(label, tf.int32)))

  def decode_fn(encoded):
    # channels=3 replicates grayscale (MNIST) to RGB.
    return tf.io.decode_image(encoded, channels=3, expand_animations=False)

  return ImageDataset(info, records_fn, decode_fn,
                      search_valid_fraction=search_valid_fraction, split_seed=split_seed)
