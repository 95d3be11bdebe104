"""Helpers shared by the KV backend contract's modules (:mod:`eventlog.testing.kv`)."""

from __future__ import annotations

from collections.abc import Callable

from eventlog.storage.kv import KVBackend, KVTxn

__all__ = [
    "BIG",
    "A",
    "B",
    "Abort",
    "Interrupt",
    "delete",
    "dump",
    "failing",
    "get",
    "last",
    "look",
    "put",
    "put_many",
    "scan",
    "values",
]

#: The tables the tests use most: one with its own LMDB database, one sharing one.
A, B = "sessions", "projections"
BIG = 1 << 30  # a group byte cap that never stops a group


class Abort(Exception):
    """Raised by a test to abort a write."""


class Interrupt(BaseException):
    """A ``BaseException`` that is not an ``Exception`` (like KeyboardInterrupt)."""


def put(table: str, items: dict[bytes, bytes]) -> Callable[[KVTxn], None]:
    """A write function that puts ``items`` into ``table``."""

    def fn(txn: KVTxn) -> None:
        for key, value in items.items():
            txn.put(table, key, value)

    return fn


def delete(table: str, *keys: bytes) -> Callable[[KVTxn], list[bool]]:
    """A write function that deletes ``keys`` from ``table`` (it answers the deletes)."""
    return lambda txn: [txn.delete(table, k) for k in keys]


def scan(
    backend: KVBackend,
    table: str,
    start: bytes = b"",
    stop: bytes | None = None,
    *,
    reverse: bool = False,
) -> list[tuple[bytes, bytes]]:
    """``scan`` in a read transaction of its own, as a list."""
    return backend.read(lambda txn: list(txn.scan(table, start, stop, reverse=reverse)))


def dump(backend: KVBackend, table: str) -> list[tuple[bytes, bytes]]:
    """Every item of ``table``, in key order."""
    return scan(backend, table)


def last(backend: KVBackend, table: str, below: bytes | None = None) -> bytes | None:
    """``last_key`` in a read transaction of its own."""
    return backend.read(lambda txn: txn.last_key(table, below))


def values(
    backend: KVBackend, table: str, start: bytes, n: int
) -> tuple[list[bytes], bytes | None]:
    """``values`` in a read transaction of its own."""
    return backend.read(lambda txn: txn.values(table, start, n))


def get(table: str, key: bytes, txn: KVTxn) -> bytes | None:
    """``txn.get`` (for ``functools.partial``)."""
    return txn.get(table, key)


def put_many(table: str, items: list[tuple[bytes, bytes]], txn: KVTxn) -> None:
    """``txn.put_many`` (for ``functools.partial``)."""
    txn.put_many(table, items)


def look(table: str, key: bytes, below: bytes, txn: KVTxn) -> tuple[object, ...]:
    """A value, the greatest key and the greatest key below ``below``."""
    return txn.get(table, key), txn.last_key(table), txn.last_key(table, below)


def failing(fn: Callable[[KVTxn], object], exc: BaseException) -> Callable[[KVTxn], None]:
    """A write function that runs ``fn``, then raises ``exc``."""

    def failing(txn: KVTxn) -> None:
        fn(txn)
        raise exc

    return failing
