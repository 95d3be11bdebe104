"""The benchmark suite: the store against the limit (raw py-lmdb) and its peers, as ratios.

``python -m benchmarks`` runs every workload (``--quick`` at tiny sizes); each workload is
also a module of its own (``python -m benchmarks.replay --json``). See ``benchmarks/README.md``.
"""
