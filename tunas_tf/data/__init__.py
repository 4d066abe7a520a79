"""tunas_tf.data: datasets (embedded, image folders / tarballs, prepared tfds) and pipelines.

Typical use:

  dataset = load_dataset('digits')           # or 'cifar10', '/data/cifar10-jpg.tar.gz'
  config = PipelineConfig(image_size=32, batch_size=64, drop_remainder=True, repeat=True)
  train = make_pipeline(dataset, 'search_train', config, training=True)
  valid = make_pipeline(dataset, 'search_valid', config, training=True)
"""

from tunas_tf.data.dataset import DatasetInfo
from tunas_tf.data.dataset import ImageDataset
from tunas_tf.data.dataset import SPLITS
from tunas_tf.data.pipeline import make_pipeline
from tunas_tf.data.pipeline import PipelineConfig
from tunas_tf.data.pipeline import representative_dataset
from tunas_tf.data.pipeline import representative_images
from tunas_tf.data.registry import DEFAULT_DATASET
from tunas_tf.data.registry import list_datasets
from tunas_tf.data.registry import load_dataset
from tunas_tf.data.splits import check_min_examples
from tunas_tf.data.splits import split_indices
