"""Benchmarks: ``python -m bench`` (``make bench``) runs every ``bench_*`` module."""
