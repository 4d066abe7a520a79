"""Stand-alone training of found architectures."""
