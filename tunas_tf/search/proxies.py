"""Training-free scores of cell-space architectures: size baselines and zero-cost proxies.

Each score is computed on the freshly initialised stand-alone network of an architecture
(`cell_network.build_cell_model`), larger meaning "predicted better":

* `params`: trainable parameters;
* `flops`: multiply-accumulates of one image (convolutions, depthwise convolutions and the
  classifier; pooling, batch norm and additions are not counted);
* `synflow` (Tanaka et al. 2020; as a NAS proxy, Abdelfattah et al. 2021): with every weight
  replaced by its absolute value, batch norm removed and float64 arithmetic, R = Σ f(1) for an
  all-ones image, and the score is Σ |θ · ∂R/∂θ| over every weight. Data-free;
* `naswot` (Mellor et al. 2021, "NAS without training"): the binary ReLU codes c_i of a batch
  of images (batch-statistics batch norm), K = Σ_layers [c_i·c_j + (1-c_i)·(1-c_j)] (the
  number of units on which two images agree), score log|det K|;
* `jacob_cov` (Mellor et al. 2020, v1 of the same paper): the per-image Jacobians of the summed
  logits with respect to the input, their correlation matrix with eigenvalues v, and the score
  -Σ [log(v + k) + 1 / (v + k)], k = 1e-5.

No score looks at labels, and none favours particular ops by construction: each is a function
of the network's initial weights (seeded) and, for the data-dependent ones, of a batch of
training images.
"""

import math
from typing import Dict, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from tunas_tf.errors import UserError, unknown_name
from tunas_tf.search.cell_config import CANDIDATE_FILTERS
from tunas_tf.space.architecture import Architecture
from tunas_tf.space.search_space import SearchSpace

PROXIES = CANDIDATE_FILTERS  # Listed in the TensorFlow-free config module.
DATA_PROXIES = ('naswot', 'jacob_cov')
CELL_FAMILIES = ('cell', 'pgnas')
MIN_DATA_IMAGES = 2
JACOB_COV_K = 1e-5
WORST_JACOB_COV = -1e9
WORST_NASWOT = -1e9


def check_proxies(names: Sequence[str], space: SearchSpace,
                  num_images: Optional[int] = None) -> tuple:
  """The proxy names, validated for `space` (and a batch of `num_images`); UserError if not."""
  names = tuple(names)
  for name in names:
    if name not in PROXIES:
      raise unknown_name('proxy', name, PROXIES)
  if space.family not in CELL_FAMILIES:
    raise UserError(f'proxies {", ".join(names)} are defined here for cell spaces (stand-alone '
                    f'cell networks), not for the {space.family!r} space {space.name!r}')
  if num_images is not None and num_images < MIN_DATA_IMAGES and set(names) & set(DATA_PROXIES):
    raise UserError(f'proxies {", ".join(sorted(set(names) & set(DATA_PROXIES)))} compare '
                    f'images with each other: they need >= {MIN_DATA_IMAGES} images, got '
                    f'{num_images}')
  return names


def model_macs(model: keras.Model) -> int:
  """Multiply-accumulates of one image through the conv, depthwise and dense layers."""
  total = 0
  for layer in model.layers:
    if isinstance(layer, keras.layers.DepthwiseConv2D):
      _, h, w, c = layer.output.shape
      total += h * w * c * math.prod(layer.kernel_size)
    elif isinstance(layer, keras.layers.Conv2D):
      _, h, w, c = layer.output.shape
      cin = layer.input.shape[-1] // layer.groups
      total += h * w * c * cin * math.prod(layer.kernel_size)
    elif isinstance(layer, keras.layers.Dense):
      total += layer.input.shape[-1] * layer.units
  return int(total)


def _identity_batch_norm_float64(model: keras.Model) -> tuple:
  """A float64 copy of `model` whose batch norms are identities (inference mode with mean 0,
  variance 1 - ε, unit scale, no shift), and the copy's other trainable variables."""
  def clone(layer):
    config = layer.get_config()
    config['dtype'] = 'float64'
    return layer.__class__.from_config(config)

  inputs = keras.Input(model.input.shape[1:], dtype='float64')
  copy = keras.models.clone_model(model, input_tensors=inputs, clone_function=clone)
  variables = []
  for source in model.layers:
    if not source.weights:
      continue
    target = copy.get_layer(source.name)
    if isinstance(source, keras.layers.BatchNormalization):
      for v in target.weights:
        identity = {'moving_variance': 1.0 - target.epsilon, 'gamma': 1.0}.get(
            v.path.split('/')[-1], 0.0)
        v.assign(tf.fill(v.shape, tf.constant(identity, tf.float64)))
    else:
      target.set_weights(source.get_weights())
      variables += target.trainable_weights
  return copy, variables


def synflow(model: keras.Model) -> float:
  """Σ |θ · ∂R/∂θ| with |θ|, no batch norm, float64 and R = Σ f(all-ones image)."""
  net, variables = _identity_batch_norm_float64(model)
  for v in variables:
    v.assign(tf.abs(v))
  ones = tf.ones((1,) + tuple(model.input.shape[1:]), tf.float64)
  with tf.GradientTape() as tape:
    total = tf.reduce_sum(net(ones, training=False))
  grads = tape.gradient(total, variables)
  return float(sum(tf.reduce_sum(tf.abs(v * g)) for v, g in zip(variables, grads)
                   if g is not None))


def naswot(model: keras.Model, images: tf.Tensor) -> float:
  """log|det K| of the ReLU-code agreement kernel of a batch (batch-statistics batch norm)."""
  relus = [l.output for l in model.layers if isinstance(l, keras.layers.ReLU)]
  if not relus:
    raise UserError(f'naswot needs ReLU layers; model {model.name!r} has none')
  codes = keras.Model(model.input, relus)(images, training=True)
  n = int(images.shape[0])
  kernel = np.zeros((n, n))
  for code in codes:
    c = tf.cast(tf.reshape(code, [n, -1]) > 0, tf.float64)
    kernel += (tf.matmul(c, c, transpose_b=True) +
               tf.matmul(1.0 - c, 1.0 - c, transpose_b=True)).numpy()
  logdet = float(np.linalg.slogdet(kernel)[1])
  return logdet if math.isfinite(logdet) else WORST_NASWOT  # Singular: images not told apart.


def jacob_cov(model: keras.Model, images: tf.Tensor) -> float:
  """-Σ [log(v + k) + 1/(v + k)] over the eigenvalues v of the input-Jacobian correlations."""
  images = tf.Variable(images, trainable=False)  # Keras copies a plain tensor input.
  with tf.GradientTape() as tape:
    tape.watch(images)
    total = tf.reduce_sum(model(images, training=True))
  gradient = tape.gradient(total, images)
  if gradient is None:  # No path from the input to the output ('none' edges): the worst.
    return WORST_JACOB_COV
  jacobians = tf.reshape(gradient, [int(images.shape[0]), -1]).numpy()
  with np.errstate(invalid='ignore', divide='ignore'):
    corr = np.corrcoef(jacobians.astype(np.float64))
  if not np.all(np.isfinite(corr)):
    return WORST_JACOB_COV  # Constant Jacobians.
  v = np.linalg.eigvalsh(corr)
  return float(-np.sum(np.log(v + JACOB_COV_K) + 1.0 / (v + JACOB_COV_K)))


class ProxyScorer:
  """Scores architectures of one cell space with training-free proxies.

  Args:
    space: a cell space (with its macro: channels, cells per stage).
    num_classes: classifier width.
    image_size: input size.
    images: float32 [n, size, size, 3] training images for `DATA_PROXIES` (unused otherwise).
    seed: seeds every network's initial weights (the same for every architecture).
  """

  def __init__(self, space: SearchSpace, num_classes: int, image_size: int,
               images: Optional[np.ndarray] = None, seed: int = 0):
    self.space = space
    self.num_classes = num_classes
    self.image_size = image_size
    self.images = None if images is None else tf.constant(images, tf.float32)
    self.seed = seed

  def scores(self, arch: Architecture, names: Sequence[str]) -> Dict[str, float]:
    """{proxy: score} of `arch`, its network built once."""
    from tunas_tf.models.cell_network import build_cell_model  # pylint: disable=g-import-not-at-top
    names = check_proxies(names, self.space,
                          None if self.images is None else int(self.images.shape[0]))
    if self.images is None and set(names) & set(DATA_PROXIES):
      raise UserError(f'proxies {sorted(set(names) & set(DATA_PROXIES))} need training images')
    keras.utils.set_random_seed(self.seed)
    model = build_cell_model(self.space, arch, self.num_classes, self.image_size)
    out = {}
    for name in names:
      if name == 'params':
        out[name] = float(sum(math.prod(v.shape) for v in model.trainable_weights))
      elif name == 'flops':
        out[name] = float(model_macs(model))
      elif name == 'synflow':
        out[name] = synflow(model)
      elif name == 'naswot':
        out[name] = naswot(model, self.images)
      else:
        out[name] = jacob_cov(model, self.images)
    return out
