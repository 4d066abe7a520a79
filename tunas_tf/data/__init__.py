"""tunas_tf.data."""
