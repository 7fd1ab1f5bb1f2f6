"""Benchmarks and load runs: ``python -m bench`` (``make bench``) and ``python -m bench.load``."""
