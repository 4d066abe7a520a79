"""Image-folder datasets: `root/train/<class>/*.jpg` and `root/test/<class>/*.jpg`.

The root may be a directory or a tarball (.tar.gz, .tgz, .tar) with that layout, possibly
under one top-level directory; tarballs are extracted once into a cache (see archive.py).
Class names are the sorted `train/` sub-directory names; label i is class_names[i].
"""

import os
from typing import List, Optional, Sequence, Tuple

from absl import logging
import numpy as np
import tensorflow as tf

from tunas_tf.data import archive
from tunas_tf.data.dataset import DatasetInfo, ImageDataset
from tunas_tf.errors import UserError

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png')
TEST_DIR_NAMES = ('test', 'val', 'validation')
EXPECTED_LAYOUT = (
    'expected an image folder (or a .tar.gz of one, optionally under a single top-level '
    'directory) laid out as train/<class>/*.jpg|jpeg|png and test/<class>/*.jpg|jpeg|png '
    '(test/ may also be named val/ or validation/)')
# Reading every image header costs ~50 us; beyond this many files image_shape is
# reported as unknown (None) rather than guessed from a sample.
MAX_FILES_FOR_SHAPE_SCAN = 200_000
# Records are stored in a fixed pseudo-random order so that class-sorted files are mixed
# even by a shuffle buffer smaller than the split, and `take(n)` is a fair sample.
_ORDER_SEED = 0


def _visible_entries(path: str) -> List[os.DirEntry]:
  # Skip hidden entries such as macOS '._x.jpg' resource forks packed into tarballs.
  with os.scandir(path) as it:
    return sorted((e for e in it if not e.name.startswith('.')), key=lambda e: e.name)


def _is_layout_root(path: str) -> bool:
  return os.path.isdir(os.path.join(path, 'train'))


def find_root(path: str, source: str) -> str:
  """Returns the directory holding train/ (path itself or its single sub-directory).

  Args:
    path: the directory to inspect.
    source: what the user passed, quoted in errors.
  """
  if _is_layout_root(path):
    return path
  subdirs = [e.path for e in _visible_entries(path) if e.is_dir()]
  if len(subdirs) == 1 and _is_layout_root(subdirs[0]):
    return subdirs[0]
  found = ', '.join(e.name for e in _visible_entries(path)[:10]) or 'nothing'
  raise UserError(f'Dataset {source!r} has no train/ directory (found: {found}); '
                  f'{EXPECTED_LAYOUT}')


def _test_dir(root: str, source: str) -> str:
  for name in TEST_DIR_NAMES:
    candidate = os.path.join(root, name)
    if os.path.isdir(candidate):
      return candidate
  raise UserError(f'Dataset {source!r} has train/ but no test/ directory; {EXPECTED_LAYOUT}')


def _scan_split(split_dir: str, class_names: Sequence[str], source: str,
                require_every_class: bool) -> Tuple[List[str], List[int]]:
  """Lists image files and labels of one split directory, in sorted order."""
  index = {name: i for i, name in enumerate(class_names)}
  paths, labels = [], []
  for entry in _visible_entries(split_dir):
    if not entry.is_dir():
      continue
    if entry.name not in index:
      raise UserError(f'Dataset {source!r}: class {entry.name!r} in {split_dir} is not a '
                      f'train/ class; train classes: {", ".join(class_names)}')
    files = [f.path for f in _visible_entries(entry.path)
             if f.is_file() and f.name.lower().endswith(IMAGE_EXTENSIONS)]
    if not files and require_every_class:
      raise UserError(f'Dataset {source!r}: class directory {entry.path} has no '
                      f'{"/".join(IMAGE_EXTENSIONS)} images; {EXPECTED_LAYOUT}')
    paths.extend(files)
    labels.extend([index[entry.name]] * len(files))
  if not paths:
    raise UserError(f'Dataset {source!r}: no images under {split_dir}; {EXPECTED_LAYOUT}')
  return paths, labels


def _uniform_shape(paths: Sequence[str]) -> Optional[Tuple[int, int, int]]:
  """(height, width, 3) when every image has the same size, else None."""
  if len(paths) > MAX_FILES_FOR_SHAPE_SCAN:
    logging.info('Not scanning %d image headers; image_shape left unknown', len(paths))
    return None
  # PIL reads only the header here, not the pixels.
  from PIL import Image  # pylint: disable=g-import-not-at-top
  sizes = set()
  for path in paths:
    try:
      with Image.open(path) as image:
        sizes.add(image.size)
    except OSError as e:  # PIL.UnidentifiedImageError is an OSError.
      raise UserError(f'Cannot read image {path!r}: {e}') from e
    if len(sizes) > 1:
      return None
  (width, height), = sizes
  return (height, width, 3)


def validate_layout(path: str, source: Optional[str] = None) -> None:
  """Raises UserError unless `path` (or its single sub-directory) has the layout."""
  source = source or path
  root = find_root(path, source)
  _test_dir(root, source)


def _decode_file(path: tf.Tensor) -> tf.Tensor:
  # decode_image sniffs the format from the bytes, so a PNG named .jpg still decodes;
  # channels=3 turns grayscale and RGBA into RGB.
  return tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)


def load_image_folder(path: str,
                      cache_dir: Optional[str] = None,
                      search_valid_fraction: float = 0.5,
                      split_seed: int = 0) -> ImageDataset:
  """Loads an image folder or an image-folder tarball.

  Args:
    path: a directory or a .tar.gz / .tgz / .tar file with the layout above.
    cache_dir: where tarballs are extracted; `archive.default_cache_dir()` when None.
    search_valid_fraction: fraction of `train` held out as `search_valid`.
    split_seed: seed of the search split.

  Raises:
    UserError: when the path is missing or the layout is wrong.
  """
  source = path
  path = os.path.expanduser(path)
  if os.path.isfile(path) and archive.is_archive(path):
    directory = archive.extract_cached(
        path, cache_dir, validate=lambda tmp: validate_layout(tmp, source))
    name = archive.archive_stem(path)
  elif os.path.isdir(path):
    directory = path
    name = os.path.basename(os.path.normpath(os.path.abspath(path)))
  elif os.path.exists(path):
    raise UserError(f'Dataset path {source!r} is neither a directory nor a '
                    f'{"/".join(archive.ARCHIVE_SUFFIXES)} archive; {EXPECTED_LAYOUT}')
  else:
    raise UserError(f'Dataset path {source!r} does not exist; {EXPECTED_LAYOUT}')
  root = find_root(directory, source)
  test_dir = _test_dir(root, source)
  class_names = tuple(e.name for e in _visible_entries(os.path.join(root, 'train'))
                      if e.is_dir())
  if not class_names:
    raise UserError(f'Dataset {source!r}: train/ has no class directories; {EXPECTED_LAYOUT}')
  if len(class_names) < 2:  # Every prediction would be right: accuracy would say nothing.
    raise UserError(f'Dataset {source!r}: train/ has one class directory ({class_names[0]!r}); '
                    f'a classifier needs at least 2 classes; {EXPECTED_LAYOUT}')
  train = _scan_split(os.path.join(root, 'train'), class_names, source, True)
  test = _scan_split(test_dir, class_names, source, False)
  rng = np.random.default_rng(_ORDER_SEED)
  arrays = {}
  for split, (paths, labels) in (('train', train), ('test', test)):
    order = rng.permutation(len(paths))
    arrays[split] = (np.asarray(paths, dtype=object)[order].astype(str),
                     np.asarray(labels, np.int32)[order])
  info = DatasetInfo(
      name=name,
      num_classes=len(class_names),
      class_names=class_names,
      num_train=len(train[0]),
      num_test=len(test[0]),
      image_shape=_uniform_shape(train[0] + test[0]),
      allow_flip=True,  # Natural-image folders are the common case; configurable later.
      source=f'image_folder:{os.path.abspath(root)}')

  def records_fn(split):
    return tf.data.Dataset.from_tensor_slices(arrays[split])

  return ImageDataset(info, records_fn, _decode_file,
                      search_valid_fraction=search_valid_fraction, split_seed=split_seed,
                      train_labels=arrays['train'][1])
