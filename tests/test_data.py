"""Tests of tunas_tf.data on real images: sklearn digits, PNG folders, CIFAR-10 JPEGs."""

import io
import os
import tarfile
import time

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from tunas_tf import data
from tunas_tf.data import archive
from tunas_tf.data import embedded
from tunas_tf.data import tfds_source
from tunas_tf.errors import UserError

CIFAR_TARBALL = '/work/shared/data/cifar10-jpg.tar.gz'
FOLDER_CLASSES = ('zero', 'one', 'two')  # Sorted: one, two, zero -> labels 0, 1, 2.


@pytest.fixture(scope='module')
def digits():
  return data.load_dataset('digits')


@pytest.fixture(scope='module')
def digit_arrays():
  return embedded.digits_arrays()


def _write_png_folder(root, images, labels, per_class=(4, 2)):
  """Writes real digit images as root/{train,test}/<class>/*.png; returns what it wrote."""
  written = {}
  for split, count in zip(('train', 'test'), per_class):
    for digit, class_name in enumerate(FOLDER_CLASSES):
      os.makedirs(os.path.join(root, split, class_name))
      chosen = np.flatnonzero(labels == digit)
      chosen = chosen[:count] if split == 'train' else chosen[-count:]
      for i in chosen:
        Image.fromarray(images[i]).save(os.path.join(root, split, class_name, f'{i}.png'))
        written.setdefault(split, []).append((images[i], class_name))
  return written


def _assert_matches_written(dataset, split, written):
  """Every decoded (image, label) is one written image of the class its label names."""
  images, labels = dataset.as_numpy(split)
  assert len(images) == len(written[split])
  for image, label in zip(images, labels):
    class_name = dataset.info.class_names[label]
    assert any(np.array_equal(image, w) and c == class_name for w, c in written[split])


def test_digits_is_real_and_complete(digits, digit_arrays):
  from sklearn.datasets import load_digits  # pylint: disable=g-import-not-at-top
  info = digits.info
  assert (info.num_train, info.num_test) == (1438, 359)
  assert info.num_train + info.num_test == 1797
  assert info.image_shape == (8, 8, 3) and info.num_classes == 10 and not info.allow_flip
  train_x, train_y = digits.as_numpy('train')
  test_x, test_y = digits.as_numpy('test')
  assert train_x.shape == (1438, 8, 8, 3) and train_x.dtype == np.uint8
  assert test_x.shape == (359, 8, 8, 3) and test_y.dtype == np.int32
  assert np.array_equal(train_x[..., 0], train_x[..., 2])  # Gray replicated to RGB.
  sk = load_digits()
  assert np.array_equal(np.bincount(np.concatenate([train_y, test_y])), np.bincount(sk.target))
  # Same pixels as sklearn's 0..16 scaled to 0..255 (sums are order-independent).
  all_x = np.concatenate([train_x, test_x])[..., 0].astype(np.int64)
  assert all_x.max() == 255 and all_x.min() == 0
  assert all_x.sum() == np.rint(sk.images * 255 / 16).astype(np.int64).sum()
  # Stratified test split: every class is held out at about 20%.
  assert np.all(np.abs(np.bincount(test_y) / np.bincount(sk.target) - 0.2) < 0.02)


def test_split_indices_deterministic_disjoint_stratified():
  labels = np.repeat(np.arange(4), [10, 20, 30, 40])
  train, valid = data.split_indices(100, 0.3, seed=7, labels=labels)
  again_train, again_valid = data.split_indices(100, 0.3, seed=7, labels=labels)
  assert np.array_equal(train, again_train) and np.array_equal(valid, again_valid)
  assert not set(train) & set(valid)
  assert np.array_equal(np.sort(np.concatenate([train, valid])), np.arange(100))
  assert np.array_equal(np.bincount(labels[valid]), [3, 6, 9, 12])
  _, other_valid = data.split_indices(100, 0.3, seed=8, labels=labels)
  assert not np.array_equal(valid, other_valid)
  _, plain_valid = data.split_indices(10, 0.5, seed=0)
  assert len(plain_valid) == 5
  for bad in (0.0, 1.0, -0.1, 'half'):
    with pytest.raises(UserError, match='strictly between 0 and 1'):
      data.split_indices(10, bad)


def test_search_splits_partition_train(digits):
  sizes = {s: digits.split_size(s) for s in data.SPLITS}
  assert sizes['search_train'] + sizes['search_valid'] == sizes['train']
  assert abs(sizes['search_valid'] - sizes['train'] / 2) <= 10
  train_x, train_y = digits.as_numpy('train')
  train_idx, valid_idx = digits.search_indices()
  valid_x, valid_y = digits.as_numpy('search_valid')
  search_x, _ = digits.as_numpy('search_train')
  # The filtered records are exactly the indexed training examples, in train order.
  assert np.array_equal(valid_x, train_x[valid_idx]) and np.array_equal(valid_y, train_y[valid_idx])
  assert np.array_equal(search_x, train_x[train_idx])
  reloaded = data.load_dataset('digits')
  assert np.array_equal(reloaded.search_indices()[1], valid_idx)
  other = data.load_dataset('digits', split_seed=1, search_valid_fraction=0.25)
  assert other.split_size('search_valid') == pytest.approx(0.25 * sizes['train'], abs=10)
  with pytest.raises(UserError, match="Unknown split 'valid'"):
    digits.records('valid')


def test_pipeline_shapes_and_dtypes(digits):
  config = data.PipelineConfig(image_size=32, batch_size=4)
  images, labels = next(iter(data.make_pipeline(digits, 'test', config)))
  assert images.shape == (4, 32, 32, 3) and images.dtype == tf.float32
  assert labels.shape == (4,) and labels.dtype == tf.int32
  assert 0.0 <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 1.0
  assert float(tf.reduce_max(images)) > 0.5  # Real strokes, not an empty image.
  _, test_y = digits.as_numpy('test', limit=4)
  assert np.array_equal(labels.numpy(), test_y)  # Evaluation keeps the fixed order.
  symmetric = data.PipelineConfig(image_size=32, batch_size=4, normalize='symmetric')
  sym_images, _ = next(iter(data.make_pipeline(digits, 'test', symmetric)))
  np.testing.assert_allclose(sym_images.numpy(), images.numpy() * 2 - 1, atol=1e-6)
  static = data.PipelineConfig(image_size=32, batch_size=4, drop_remainder=True, repeat=True)
  ds = data.make_pipeline(digits, 'search_valid', static, training=True)
  assert ds.element_spec[0].shape.as_list() == [4, 32, 32, 3]


@pytest.mark.parametrize('cache', [False, True])
def test_a_late_start_continues_the_stream_of_an_early_one(digits, cache):
  # What a resumed search sees from step 13 on: the batches (examples, order, crops) that a run
  # started at 0 drew at steps 13-15, across an epoch boundary (search_train holds 11 batches).
  base = dict(image_size=16, batch_size=64, seed=5, crop='pad', drop_remainder=True,
              repeat=True, cache=cache)
  assert digits.split_size('search_train') // 64 < 13
  whole = list(data.make_pipeline(digits, 'search_train', data.PipelineConfig(**base),
                                  training=True).take(16))
  late = list(data.make_pipeline(digits, 'search_train',
                                 data.PipelineConfig(**base, start_batch=13),
                                 training=True).take(3))
  for (x, y), (late_x, late_y) in zip(whole[13:], late):
    np.testing.assert_array_equal(late_y, y)
    np.testing.assert_array_equal(late_x, x)
  assert not np.array_equal(whole[0][1], late[0][1])
  with pytest.raises(UserError, match='start_batch must be an integer >= 0; got -1'):
    data.PipelineConfig(start_batch=-1)


def test_augmentation_changes_pixels_keeps_shape_and_is_seeded(digits):
  base = dict(image_size=32, batch_size=16, seed=3)
  augmented = data.PipelineConfig(**base, crop='pad')
  plain = data.PipelineConfig(**base, augment=False)
  aug_x, aug_y = next(iter(data.make_pipeline(digits, 'search_train', augmented, training=True)))
  plain_x, plain_y = next(iter(data.make_pipeline(digits, 'search_train', plain, training=True)))
  assert aug_x.shape == plain_x.shape == (16, 32, 32, 3)
  assert np.array_equal(aug_y, plain_y)  # Same seed, same shuffle order.
  assert not np.allclose(aug_x, plain_x)
  again_x, _ = next(iter(data.make_pipeline(digits, 'search_train', augmented, training=True)))
  np.testing.assert_array_equal(aug_x, again_x)
  # Digits forbid flips; flip=True overrides: each image is either kept or mirrored.
  no_flip = data.PipelineConfig(**base, crop='none')
  flipped = data.PipelineConfig(**base, crop='none', flip=True)
  kept_x, _ = next(iter(data.make_pipeline(digits, 'search_train', no_flip, training=True)))
  flip_x, _ = next(iter(data.make_pipeline(digits, 'search_train', flipped, training=True)))
  np.testing.assert_allclose(kept_x, plain_x, atol=1e-6)
  mirrored = [np.allclose(f, k[:, ::-1]) and not np.allclose(f, k) for f, k in zip(flip_x, kept_x)]
  same = [np.allclose(f, k) for f, k in zip(flip_x, kept_x)]
  assert all(m or s for m, s in zip(mirrored, same)) and any(mirrored)
  inception = data.PipelineConfig(image_size=96, batch_size=2, seed=3)
  assert inception.resolved_crop() == 'inception'
  big_x, _ = next(iter(data.make_pipeline(digits, 'train', inception, training=True)))
  assert big_x.shape == (2, 96, 96, 3)


def test_image_folder_directory(tmp_path, digit_arrays):
  root = str(tmp_path / 'pngs')
  written = _write_png_folder(root, *digit_arrays)
  dataset = data.load_dataset(root)
  info = dataset.info
  assert info.name == 'pngs' and info.class_names == ('one', 'two', 'zero')
  assert (info.num_train, info.num_test, info.image_shape) == (12, 6, (8, 8, 3))
  _assert_matches_written(dataset, 'train', written)
  _assert_matches_written(dataset, 'test', written)
  images, labels = next(iter(data.make_pipeline(
      dataset, 'train', data.PipelineConfig(image_size=32, batch_size=4), training=True)))
  assert images.shape == (4, 32, 32, 3) and labels.dtype == tf.int32


def test_image_folder_tarball_cached_atomically(tmp_path, digit_arrays):
  folder = str(tmp_path / 'folder')
  written = _write_png_folder(folder, *digit_arrays)
  tarball = str(tmp_path / 'mini.tar.gz')
  with tarfile.open(tarball, 'w:gz') as tar:
    tar.add(folder, arcname='mini')  # Layout under one top-level directory.
  cache = tmp_path / 'cache'
  dataset = data.load_dataset(tarball, cache_dir=str(cache))
  assert dataset.info.name == 'mini' and dataset.info.num_train == 12
  _assert_matches_written(dataset, 'test', written)
  entries = os.listdir(cache)
  assert len(entries) == 1 and entries[0].startswith('mini-')  # No temp dir left behind.
  mtime = os.stat(cache / entries[0]).st_mtime_ns
  again = data.load_dataset(tarball, cache_dir=str(cache))
  assert again.info == dataset.info and os.stat(cache / entries[0]).st_mtime_ns == mtime
  assert entries == [archive.cache_entry_name(tarball)]
  tar_mtime = os.stat(tarball).st_mtime_ns + 10**9
  os.utime(tarball, ns=(tar_mtime, tar_mtime))  # A "changed" archive gets a new entry.
  data.load_dataset(tarball, cache_dir=str(cache))
  entries = sorted(os.listdir(cache))
  assert len(entries) == 2 and archive.cache_entry_name(tarball) in entries

  bad = str(tmp_path / 'bad.tar.gz')
  with tarfile.open(bad, 'w:gz') as tar:
    tar.add(os.path.join(folder, 'train'), arcname='images')  # No train/ inside.
  with pytest.raises(UserError, match='no train/ directory.*expected an image folder'):
    data.load_dataset(bad, cache_dir=str(cache))
  assert sorted(os.listdir(cache)) == entries  # The rejected archive left nothing in the cache.
  not_tar = tmp_path / 'broken.tar.gz'
  not_tar.write_bytes(b'this is not gzip')
  with pytest.raises(UserError, match='Cannot extract'):
    data.load_dataset(str(not_tar), cache_dir=str(cache))
  assert sorted(os.listdir(cache)) == entries


def _cifar_subset_tarball(path, classes=('bird', 'cat', 'frog'), per_split=(4, 2)):
  """Copies a few real CIFAR-10 JPEGs from the shared tarball into a small tarball."""
  want = {(split, c): count for split, count in zip(('train', 'test'), per_split)
          for c in classes}
  written = {}
  with tarfile.open(CIFAR_TARBALL, 'r|gz') as src, tarfile.open(path, 'w:gz') as dst:
    for member in src:
      parts = member.name.split('/')
      key = tuple(parts[:2])
      if member.isreg() and want.get(key, 0) > 0:
        payload = src.extractfile(member).read()
        dst.addfile(member, io.BytesIO(payload))
        written.setdefault(key[0], []).append(
            (np.asarray(Image.open(io.BytesIO(payload)).convert('RGB')), key[1]))
        want[key] -= 1
      if not any(want.values()):
        break
  return written


@pytest.mark.skipif(not os.path.exists(CIFAR_TARBALL), reason='shared CIFAR-10 tarball missing')
def test_real_cifar_jpegs_from_small_tarball(tmp_path):
  tarball = str(tmp_path / 'cifar-mini.tar.gz')
  written = _cifar_subset_tarball(tarball)
  dataset = data.load_dataset(tarball, cache_dir=str(tmp_path / 'cache'))
  info = dataset.info
  assert info.class_names == ('bird', 'cat', 'frog') and info.image_shape == (32, 32, 3)
  assert (info.num_train, info.num_test) == (12, 6) and info.allow_flip
  images, labels = dataset.as_numpy('train')
  for image, label in zip(images, labels):
    # TF and PIL both use libjpeg, but allow for IDCT rounding differences.
    assert any(c == info.class_names[label] and np.abs(image.astype(int) - w).max() <= 8
               for w, c in written['train'])


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(CIFAR_TARBALL), reason='shared CIFAR-10 tarball missing')
def test_real_cifar_full_tarball(tmp_path):
  cache = str(tmp_path / 'cache')
  dataset = data.load_dataset(CIFAR_TARBALL, cache_dir=cache)
  info = dataset.info
  assert (info.num_train, info.num_test, info.num_classes) == (50000, 10000, 10)
  assert info.class_names[0] == 'airplane' and info.image_shape == (32, 32, 3)
  start = time.monotonic()
  assert data.load_dataset(CIFAR_TARBALL, cache_dir=cache).info == info
  assert time.monotonic() - start < 30  # Cached: no second extraction.
  config = data.PipelineConfig(image_size=32, batch_size=64, drop_remainder=True)
  images, labels = next(iter(data.make_pipeline(dataset, 'search_valid', config, training=True)))
  assert images.shape == (64, 32, 32, 3) and len(np.unique(labels)) > 3


def test_unknown_name_lists_known_names():
  with pytest.raises(UserError) as error:
    data.load_dataset('cifar11')
  message = str(error.value)
  assert "'cifar11'" in message and 'tar.gz' in message
  for name in ('digits', 'cifar10', 'imagenet2012', 'mnist'):
    assert name in message
  assert set(data.list_datasets()) >= {'digits', 'cifar10', 'cifar100', 'fashion_mnist'}


def test_missing_or_malformed_path(tmp_path):
  missing = str(tmp_path / 'nowhere')
  with pytest.raises(UserError, match=f"'{missing}' does not exist.*train/<class>"):
    data.load_dataset(missing)
  with pytest.raises(UserError, match='does not exist'):
    data.load_dataset(str(tmp_path / 'data.tar.gz'))
  (tmp_path / 'empty' / 'train' / 'cat').mkdir(parents=True)
  with pytest.raises(UserError, match='no test/ directory'):
    data.load_dataset(str(tmp_path / 'empty'))
  (tmp_path / 'empty' / 'test').mkdir()
  with pytest.raises(UserError, match=r"one class directory \('cat'\); a classifier needs at "
                                      'least 2 classes'):
    data.load_dataset(str(tmp_path / 'empty'))
  (tmp_path / 'empty' / 'train' / 'dog').mkdir()
  with pytest.raises(UserError, match='has no .*images'):
    data.load_dataset(str(tmp_path / 'empty'))
  for split in ('train', 'test'):
    for name in ('cat', 'dog'):
      (tmp_path / 'empty' / split / name).mkdir(exist_ok=True)
      (tmp_path / 'empty' / split / name / 'broken.jpg').write_bytes(b'not a jpeg')
  with pytest.raises(UserError, match='Cannot read image .*broken.jpg'):
    data.load_dataset(str(tmp_path / 'empty'))


def test_tfds_not_prepared_fails_fast(tmp_path):
  start = time.monotonic()
  with pytest.raises(UserError, match='not prepared.*tfds build cifar10 --data_dir='):
    data.load_dataset('cifar10', data_dir=str(tmp_path))
  assert time.monotonic() - start < 3
  # A dataset directory without the version tfds expects: tfds is asked, still no network.
  (tmp_path / 'mnist' / '0.0.1').mkdir(parents=True)
  (tmp_path / 'mnist' / '0.0.1' / 'dataset_info.json').write_text('{}')
  start = time.monotonic()
  with pytest.raises(UserError, match='not prepared.*version'):
    data.load_dataset('mnist', data_dir=str(tmp_path))
  assert time.monotonic() - start < 10  # Includes importing tensorflow_datasets.


def test_tfds_prepared_dataset_loads(tmp_path, digit_arrays):
  """Prepares a real (tiny) tfds dataset from digits offline, then loads it via tfds."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  images, labels = digit_arrays

  class TunasTestDigits(tfds.core.GeneratorBasedBuilder):
    # tfds looks for a checksums file next to builders defined in packages (like
    # tests.test_data) through `importlib_resources`, which is not installed; a
    # single-component module name skips that lookup. It only matters for this builder.
    __module__ = 'tunas_test_builders'
    VERSION = tfds.core.Version('1.0.0')

    def _info(self):
      features = tfds.features.FeaturesDict({
          'image': tfds.features.Image(shape=(8, 8, 1)),
          'label': tfds.features.ClassLabel(names=[str(d) for d in range(10)])})
      return tfds.core.DatasetInfo(builder=self, features=features,
                                   supervised_keys=('image', 'label'))

    def _split_generators(self, dl_manager):
      return {'train': self._generate_examples(0, 30), 'test': self._generate_examples(30, 40)}

    def _generate_examples(self, start, stop):
      for i in range(start, stop):
        yield i, {'image': images[i, :, :, :1], 'label': int(labels[i])}

  TunasTestDigits(data_dir=str(tmp_path)).download_and_prepare()
  dataset = tfds_source.load_tfds('tunas_test_digits', tfds_source.TfdsSpec(allow_flip=False),
                                  data_dir=str(tmp_path))
  info = dataset.info
  assert (info.num_train, info.num_test, info.num_classes) == (30, 10, 10)
  assert info.image_shape == (8, 8, 3) and info.source.startswith('tfds:tunas_test_digits')
  train_x, train_y = dataset.as_numpy('train')
  # tfds shuffles at preparation; match the examples as a set.
  expected = sorted((labels[i], images[i].tobytes()) for i in range(30))
  assert sorted(zip(train_y, (x.tobytes() for x in train_x))) == expected
  _, valid_idx = dataset.search_indices()
  assert np.array_equal(dataset.as_numpy('search_valid')[1], train_y[valid_idx])


def test_representative_images(digits):
  batches = list(data.representative_images(digits, image_size=24, num=5))
  assert len(batches) == 5
  for batch in batches:
    assert batch.shape == (1, 24, 24, 3) and batch.dtype == np.float32
    assert 0.0 <= batch.min() and batch.max() <= 1.0 and batch.max() > 0.5
  assert len({b.tobytes() for b in batches}) == 5  # Distinct real images.
  samples = list(data.representative_dataset(digits, 24, num=3)())
  assert len(samples) == 3 and isinstance(samples[0], list)
  np.testing.assert_array_equal(samples[0][0], batches[0])


def test_min_examples_and_config_validation(digits):
  data.check_min_examples(8, 8, 'x')
  with pytest.raises(UserError, match='search_valid has 3 example.*batch size 4'):
    data.check_min_examples(3, 4, 'search_valid')
  too_big = data.PipelineConfig(batch_size=digits.split_size('test') + 1, drop_remainder=True)
  with pytest.raises(UserError, match="'test' has 359 example"):
    data.make_pipeline(digits, 'test', too_big)
  with pytest.raises(UserError, match="crop must be one of.*got 'random'"):
    data.PipelineConfig(crop='random')
  with pytest.raises(UserError, match="normalize must be one of.*got 'imagenet'"):
    data.PipelineConfig(normalize='imagenet')
  with pytest.raises(UserError, match='image_size must be a positive int; got 0'):
    data.PipelineConfig(image_size=0)
