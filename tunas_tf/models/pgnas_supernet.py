"""PGNAS's super-network: the `pgnas_resnet` multi-branch ResNet with a per-input-channel mask on
every (block, kernel-size) branch, and its export as a pruned stand-alone model.

PGNAS (Zhou et al., AAAI 2020, §2) keeps or drops convolution kernel slices w^s_{l,k} (input
channel k of the kernel-size-s convolution of layer l) with one probability per (layer,
kernel-size group). Here a layer is a block of the prior network and a group is one of its
branches ReLU → Conv_s → BN → ReLU → Conv_s → BN: the mask multiplies the branch input after
the ReLU, i.e. it drops input channels (kernel slices) of the branch's first convolution, as
the reference `Conv2d_with_CD` does. Masks are relaxed in training (Gumbel-sigmoid) and binary
for candidates.

Layers mirror `cell_network.build_pgnas_resnet` one to one (stem, branches, shortcut: 2×2
average pool + 1×1 conv + BN when a block strides or widens, head), so `export_pruned` copies
the weights of a sampled candidate into the stand-alone model of its architecture: kept
branches with their dropped kernel slices zeroed, branches whose every slice is dropped
removed. All batch norms use batch statistics here; the export recalibrates the stand-alone
model's moving statistics on real images (`recalibrate_batch_norm`), so on those images it
computes what the supernet computed for the candidate.
"""

from typing import Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from tunas_tf.errors import UserError
from tunas_tf.layers import initializers
from tunas_tf.layers.cell_search_ops import BatchStatNorm
from tunas_tf.models import batch_norm as batch_norm_lib
from tunas_tf.models import cell_network
from tunas_tf.space import cell as cell_lib
from tunas_tf.space.architecture import Architecture
from tunas_tf.space.search_space import SearchSpace


def _conv(filters: int, kernel_size: int, strides: int = 1, name: str = None):
  return keras.layers.Conv2D(filters, kernel_size, strides=strides, padding='same',
                             use_bias=False, kernel_initializer=initializers.conv_initializer(),
                             name=name)


class PgnasSupernet(keras.Model):
  """The masked multi-branch ResNet (see the module docstring).

  Args:
    space: a `pgnas_resnet` space (any stage widths).
    num_classes: logits.

  Call arguments:
    images: float32 [batch, h, w, 3].
    masks: one mask per decision (`self.groups` order): [batch, in_channels] (one mask per
      example, training) or [in_channels] (one candidate for the whole batch).
    gates: optional per-decision scalars multiplying the branch outputs (1 for a kept branch, 0
      for one whose every input channel is dropped), for candidates.
  """

  def __init__(self, space: SearchSpace, num_classes: int, **kwargs):
    kwargs.setdefault('name', f'{space.name}_supernet')
    super().__init__(**kwargs)
    spec = space.spec
    if not isinstance(spec, cell_lib.PgnasResNetSpec):
      raise UserError(f'Space {space.name!r} has no kernel-size groups; PGNAS searches '
                      'pgnas_resnet')
    self.space = space
    self.spec = spec
    self.groups = cell_lib.pgnas_groups(spec)
    self.stem_conv = _conv(spec.stem_filters, 3, name='stem_conv')
    self.stem_bn = BatchStatNorm(True, name='stem_bn')
    self.branch_layers = []  # One (conv_a, bn_a, conv_b, bn_b) per decision.
    self.shortcuts = []  # Per block: None, or (pool or None, conv, bn).
    channels = spec.stem_filters
    for b, block in enumerate(spec.blocks):
      for k in sorted(block.keep):
        name = f'blocks_{b}_k{k}'
        self.branch_layers.append((
            _conv(block.filters, k, block.strides, name=f'{name}_a_conv'),
            BatchStatNorm(True, name=f'{name}_a_bn'),
            _conv(block.filters, k, name=f'{name}_b_conv'),
            BatchStatNorm(True, name=f'{name}_b_bn')))
      if block.strides > 1 or channels != block.filters:
        pool = (keras.layers.AveragePooling2D(block.strides, padding='same')
                if block.strides > 1 else None)
        self.shortcuts.append((pool, _conv(block.filters, 1, name=f'blocks_{b}_down_conv'),
                               BatchStatNorm(True, name=f'blocks_{b}_down_bn')))
      else:
        self.shortcuts.append(None)
      channels = block.filters
    self.head_bn = BatchStatNorm(True, name='lastact_bn')
    self.classifier = keras.layers.Dense(
        num_classes, kernel_initializer=initializers.classifier_initializer(),
        name='classifier')

  def call(self, images, masks=None, gates=None):
    x = self.stem_bn(self.stem_conv(images))
    decision = 0
    for b, block in enumerate(self.spec.blocks):
      relu = tf.nn.relu(x)
      terms = []
      for _ in sorted(block.keep):
        conv_a, bn_a, conv_b, bn_b = self.branch_layers[decision]
        mask = masks[decision]
        mask = mask[:, tf.newaxis, tf.newaxis, :] if mask.shape.rank == 2 else mask
        y = bn_b(conv_b(tf.nn.relu(bn_a(conv_a(relu * mask)))))
        terms.append(y if gates is None else gates[decision] * y)
        decision += 1
      shortcut = x
      if self.shortcuts[b] is not None:
        pool, conv, bn = self.shortcuts[b]
        shortcut = bn(conv(pool(x) if pool is not None else x))
      x = tf.add_n([shortcut] + terms)
    x = tf.nn.relu(self.head_bn(x))
    return self.classifier(tf.reduce_mean(x, axis=[1, 2]))

  def build_weights(self, image_size: int) -> None:
    masks = [tf.ones([c]) for _, _, c in self.groups]
    self(tf.zeros([2, image_size, image_size, 3]), masks=masks)

  def masked_kernels(self) -> list:
    """The first-conv kernel of every branch (the masked kernel slices), in decision order."""
    return [layers[0].kernel for layers in self.branch_layers]


def candidate_architecture(space: SearchSpace, keep_masks: Sequence[np.ndarray]) -> Architecture:
  """The `pgnas_resnet` architecture of a candidate: a branch is kept iff any slice is."""
  return Architecture(space.name, tuple(int(np.any(m > 0)) for m in keep_masks))


def _set(layer: keras.layers.Layer, values: Sequence[np.ndarray]) -> None:
  for variable, value in zip(layer.weights, values):
    variable.assign(np.asarray(value, np.float32))


def export_pruned(supernet: PgnasSupernet, keep_masks: Sequence[np.ndarray],
                  calibration_images: np.ndarray, num_classes: int, image_size: int,
                  name: Optional[str] = None) -> keras.Model:
  """The stand-alone model of a sampled candidate with its supernet weights (no fine-tuning).

  Args:
    supernet: the trained PGNAS supernet.
    keep_masks: per decision, the candidate's 0/1 keep mask over the branch's input channels.
    calibration_images: real float32 [n, image_size, image_size, 3] images; the moving batch
      norm statistics are set from them (the supernet normalized with batch statistics).
    num_classes: logits.
    image_size: input size.
    name: model name.

  Returns:
    A functional `keras.Model` (exportable with `tunas_tf.export`).
  """
  space = supernet.space
  arch = candidate_architecture(space, keep_masks)
  model = cell_network.build_pgnas_resnet(space, arch, num_classes, image_size,
                                          name=name or f'{space.name}_pgnas')
  bn = lambda layer: [layer.gamma.numpy(), layer.beta.numpy()]
  _set(model.get_layer('stem_conv'), [supernet.stem_conv.kernel.numpy()])
  _set(model.get_layer('stem_bn'), bn(supernet.stem_bn))
  for (b, k, _), layers, mask in zip(supernet.groups, supernet.branch_layers, keep_masks):
    if not np.any(mask > 0):
      continue
    conv_a, bn_a, conv_b, bn_b = layers
    prefix = f'blocks_{b}_k{k}'
    kernel = conv_a.kernel.numpy() * np.asarray(mask, np.float32)[None, None, :, None]
    _set(model.get_layer(f'{prefix}_a_conv'), [kernel])
    _set(model.get_layer(f'{prefix}_a_bn'), bn(bn_a))
    _set(model.get_layer(f'{prefix}_b_conv'), [conv_b.kernel.numpy()])
    _set(model.get_layer(f'{prefix}_b_bn'), bn(bn_b))
  for b, shortcut in enumerate(supernet.shortcuts):
    if shortcut is not None:
      _set(model.get_layer(f'blocks_{b}_down_conv'), [shortcut[1].kernel.numpy()])
      _set(model.get_layer(f'blocks_{b}_down_bn'), bn(shortcut[2]))
  _set(model.get_layer('lastact_bn'), bn(supernet.head_bn))
  _set(model.get_layer('classifier'), [w.numpy() for w in supernet.classifier.weights])
  batch_norm_lib.recalibrate_batch_norm(model, calibration_images)
  return model
