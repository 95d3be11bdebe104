"""Bytes and backends: the KV interface, the codec, the key layout, LMDB, memory, PostgreSQL.

:func:`eventlog.storage.opening.open_backend` picks a backend from where the store is.
Imports only :mod:`eventlog.model` and :mod:`eventlog.errors`.
"""
