"""tunas_tf.export."""
