"""tunas_tf.models."""
