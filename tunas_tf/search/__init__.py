"""tunas_tf.search."""
