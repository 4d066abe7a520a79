"""Input pipelines: decode, resize, augment, batch; plus int8 calibration images.

Training augmentation follows the papers we reproduce: for small images (CIFAR-style, as
in DARTS / GDAS / NAS-Bench-201) zero-pad by image_size/8 and randomly crop back, plus
horizontal flip; for large images (ImageNet, as in TuNAS / ProxylessNAS) an Inception-style
random-resized crop (area 8%-100%, aspect 3/4-4/3) plus flip. Random ops are stateless and
seeded by (seed, position in the stream), so a pipeline is reproducible given its seed.
"""

import dataclasses
from typing import Callable, Iterator, List, Optional

import numpy as np
import tensorflow as tf

from tunas_tf.data.dataset import ImageDataset
from tunas_tf.data.splits import check_min_examples
from tunas_tf.errors import UserError

CROP_MODES = ('auto', 'pad', 'inception', 'none')
NORMALIZATIONS = ('unit', 'symmetric')
# 'auto' uses pad-and-crop below this size and Inception crops from it on.
INCEPTION_CROP_MIN_SIZE = 96


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
  """How to turn a split into batches.

  Attributes:
    image_size: output height and width (images are resized to a square).
    batch_size: examples per batch.
    augment: apply random crop / flip when `training` (ignored otherwise).
    crop: 'pad' (pad + random crop), 'inception' (random resized crop), 'none', or
      'auto' ('pad' below INCEPTION_CROP_MIN_SIZE pixels, else 'inception').
    crop_padding: pixels of zero padding for 'pad'; None means image_size // 8 (4 at 32).
    flip: random horizontal flip; None follows the dataset's `info.allow_flip`.
    shuffle_buffer: shuffle buffer size when training (capped at the split size).
    seed: seed of shuffling and augmentation.
    normalize: 'unit' gives pixels in [0, 1], 'symmetric' in [-1, 1].
    eval_crop_fraction: central crop kept before resizing at evaluation (0.875 is the
      usual ImageNet choice; 1.0 keeps the whole image).
    drop_remainder: drop the last partial batch (static batch shape).
    repeat: repeat forever.
    cache: keep decoded images in memory after the first pass (small datasets).
    start_batch: begin at this batch of the stream (a resumed run continues where it was
      stopped: the same examples, order, crops and flips as a run that was never stopped).
  """
  image_size: int = 32
  batch_size: int = 32
  augment: bool = True
  crop: str = 'auto'
  crop_padding: Optional[int] = None
  flip: Optional[bool] = None
  shuffle_buffer: int = 10_000
  seed: int = 0
  normalize: str = 'unit'
  eval_crop_fraction: float = 1.0
  drop_remainder: bool = False
  repeat: bool = False
  cache: bool = False
  start_batch: int = 0

  def __post_init__(self):
    if not isinstance(self.image_size, int) or self.image_size < 1:
      raise UserError(f'image_size must be a positive int; got {self.image_size!r}')
    if not isinstance(self.batch_size, int) or self.batch_size < 1:
      raise UserError(f'batch_size must be a positive int; got {self.batch_size!r}')
    if self.crop not in CROP_MODES:
      raise UserError(f'crop must be one of {", ".join(CROP_MODES)}; got {self.crop!r}')
    if self.crop_padding is not None and self.crop_padding < 0:
      raise UserError(f'crop_padding must be >= 0; got {self.crop_padding!r}')
    if isinstance(self.start_batch, bool) or not isinstance(self.start_batch, int) or \
        self.start_batch < 0:
      raise UserError(f'start_batch must be an integer >= 0; got {self.start_batch!r}')
    if self.shuffle_buffer < 1:
      raise UserError(f'shuffle_buffer must be >= 1; got {self.shuffle_buffer!r}')
    if self.normalize not in NORMALIZATIONS:
      raise UserError(
          f'normalize must be one of {", ".join(NORMALIZATIONS)}; got {self.normalize!r}')
    if not 0.0 < self.eval_crop_fraction <= 1.0:
      raise UserError(f'eval_crop_fraction must be in (0, 1]; got {self.eval_crop_fraction!r}')

  def resolved_crop(self) -> str:
    """The crop mode with 'auto' resolved from image_size."""
    if self.crop != 'auto':
      return self.crop
    return 'pad' if self.image_size < INCEPTION_CROP_MIN_SIZE else 'inception'


def _resize(image: tf.Tensor, size: int) -> tf.Tensor:
  # antialias matters when shrinking large photos; it is a no-op cost when enlarging.
  return tf.image.resize(image, [size, size], method='bilinear', antialias=True)


def _inception_crop(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
  """Random crop covering 8%-100% of the area with aspect 3/4-4/3 (Szegedy et al. 2015)."""
  begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
      tf.shape(image), bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), seed=seed,
      min_object_covered=0.1, aspect_ratio_range=(3 / 4, 4 / 3), area_range=(0.08, 1.0),
      max_attempts=10, use_image_if_no_bounding_boxes=True)
  return tf.slice(image, begin, size)


def _train_transform(image: tf.Tensor, index: tf.Tensor, config: PipelineConfig,
                     flip: bool) -> tf.Tensor:
  """Augments one float image in [0, 1]; randomness is a function of (seed, index)."""
  size = config.image_size
  seeds = tf.random.experimental.stateless_split(
      tf.stack([tf.constant(config.seed, tf.int64), index]), num=2)
  crop = config.resolved_crop()
  if crop == 'inception':
    image = _resize(_inception_crop(image, seeds[0]), size)
  else:
    image = _resize(image, size)
  if crop == 'pad':
    pad = size // 8 if config.crop_padding is None else config.crop_padding
    image = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
    image = tf.image.stateless_random_crop(image, [size, size, 3], seed=seeds[0])
  if flip:
    image = tf.image.stateless_random_flip_left_right(image, seed=seeds[1])
  return image


def _eval_transform(image: tf.Tensor, config: PipelineConfig) -> tf.Tensor:
  if config.eval_crop_fraction < 1.0:
    image = tf.image.central_crop(image, config.eval_crop_fraction)
  return _resize(image, config.image_size)


def make_pipeline(dataset: ImageDataset,
                  split: str,
                  config: PipelineConfig = PipelineConfig(),
                  *,
                  training: bool = False) -> tf.data.Dataset:
  """Builds batches `(float32 [B, S, S, 3] images, int32 [B] labels)` of one split.

  Training pipelines shuffle (seeded) and, with `config.augment`, randomly crop and flip;
  evaluation pipelines keep the split's fixed order and only resize.

  Args:
    dataset: the ImageDataset.
    split: 'train', 'test', 'search_train' or 'search_valid'.
    config: the PipelineConfig.
    training: shuffle and augment.

  Raises:
    UserError: unknown split, or a split smaller than one batch when drop_remainder.
  """
  num_examples = dataset.split_size(split)
  what = f'dataset {dataset.info.name!r} split {split!r}'
  if config.drop_remainder:
    check_min_examples(num_examples, config.batch_size, what)
  elif num_examples == 0:
    raise UserError(f'{what} is empty')
  flip = dataset.info.allow_flip if config.flip is None else config.flip
  ds = dataset.records(split)
  if config.cache:
    ds = ds.map(lambda record, label: (dataset.decode(record), label),
                num_parallel_calls=tf.data.AUTOTUNE).cache()
  if training:
    # Shuffling records (paths, encoded bytes) before decoding keeps the buffer cheap.
    ds = ds.shuffle(min(num_examples, config.shuffle_buffer), seed=config.seed,
                    reshuffle_each_iteration=True)
  if config.repeat:
    ds = ds.repeat()
  # enumerate() after repeat() so every epoch draws fresh crops and flips; skipping before
  # decoding makes a late start cheap.
  ds = ds.enumerate().skip(config.start_batch * config.batch_size)

  def preprocess(index, example):
    image, label = example
    if not config.cache:
      image = dataset.decode(image)
    image = tf.image.convert_image_dtype(image, tf.float32)  # uint8 -> [0, 1]
    if training and config.augment:
      image = _train_transform(image, index, config, flip)
    else:
      image = _eval_transform(image, config)
    if config.normalize == 'symmetric':
      image = image * 2.0 - 1.0
    image = tf.ensure_shape(image, [config.image_size, config.image_size, 3])
    return image, label

  ds = ds.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.batch(config.batch_size, drop_remainder=config.drop_remainder)
  return ds.prefetch(tf.data.AUTOTUNE)


def representative_images(dataset: ImageDataset,
                          image_size: int,
                          num: int = 100,
                          split: str = 'train',
                          normalize: str = 'unit') -> Iterator[np.ndarray]:
  """Yields up to `num` real images as float32 [1, S, S, 3] for int8 calibration.

  Images get the evaluation preprocessing (resize, no augmentation) and must use the same
  `normalize` as the model's training inputs, or the int8 ranges will be wrong.

  Args:
    dataset: the ImageDataset.
    image_size: model input height and width.
    num: number of images (fewer if the split is smaller).
    split: split to draw from; records are in a fixed, class-mixed order.
    normalize: 'unit' or 'symmetric', as in PipelineConfig.
  """
  if num < 1:
    raise UserError(f'num must be >= 1; got {num!r}')
  config = PipelineConfig(image_size=image_size, batch_size=1, normalize=normalize)
  for images, _ in make_pipeline(dataset, split, config).take(num).as_numpy_iterator():
    yield images


def representative_dataset(dataset: ImageDataset,
                           image_size: int,
                           num: int = 100,
                           split: str = 'train',
                           normalize: str = 'unit') -> Callable[[], Iterator[List[np.ndarray]]]:
  """Returns a callable for `tf.lite.TFLiteConverter.representative_dataset`.

  Each call yields `[image]` lists (one input tensor per sample) from
  `representative_images` with the same arguments.
  """
  def generate():
    for images in representative_images(dataset, image_size, num, split, normalize):
      yield [images]
  return generate
