"""pytest-benchmark suite: an epoch of every implementation and each phase of the staged ones."""
