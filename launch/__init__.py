"""absl-flag entry points."""
