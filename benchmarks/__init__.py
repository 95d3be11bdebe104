"""Benchmarks: the store measured against raw py-lmdb in the same run, reported as ratios."""
