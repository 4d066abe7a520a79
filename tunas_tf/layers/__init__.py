"""tunas_tf.layers."""
