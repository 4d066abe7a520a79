"""Keras layers and op compositions of the mobile search spaces."""

from tunas_tf.layers.activations import HardSwish, activation_layer
from tunas_tf.layers.blocks import (DEFAULT_WEIGHT_DECAY, ConvOptions, conv_bn, depthwise_bn,
                                    inverted_bottleneck, separable_conv, squeeze_excite)
from tunas_tf.layers.initializers import (classifier_initializer, conv_initializer,
                                          depthwise_initializer, kernel_regularizer)
from tunas_tf.layers.squeeze_excite import SqueezeExcite
