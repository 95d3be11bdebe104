"""A projector's keyspace read in one snapshot, for an integration's hot read path.

``store.projection(name)`` hands a projector's query object a reader that checks every key
it is given (the query objects of user projectors are not trusted to pass bytes). An
integration reading its own built-in view on every call (LangGraph's ``get_tuple``) builds
its keys itself: :class:`KeyspaceSnapshots` reads the same keyspace through the same
backend, one read transaction per :meth:`~KeyspaceSnapshots.read`, without those checks.

>>> from eventlog import RunStore
>>> store = RunStore.in_memory()
>>> views = KeyspaceSnapshots(store, "langgraph")
>>> views.read(lambda reader: (reader.get(b"nothing"), list(reader.scan(b"c"))))
(None, [])
>>> store.close()
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

from eventlog.engine.protocols import ProjectionReader
from eventlog.storage.keys import prefix_end
from eventlog.storage.kv import KVTxn
from eventlog.store.run_store import RunStore

__all__ = ["KeyspaceSnapshots"]

R = TypeVar("R")


class _Reader:
    """:class:`ProjectionReader` over one keyspace of one read transaction."""

    __slots__ = ("_prefix", "_txn")

    def __init__(self, txn: KVTxn, prefix: bytes) -> None:
        self._txn = txn
        self._prefix = prefix

    def get(self, key: bytes) -> bytes | None:
        return self._txn.get("projections", self._prefix + key)

    def scan(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        start = self._prefix + prefix
        cut = len(self._prefix)
        for key, value in self._txn.scan("projections", start, prefix_end(start)):
            yield key[cut:], value


class KeyspaceSnapshots:
    """Reads of projector ``name``'s keyspace in ``store``: each call one read snapshot."""

    def __init__(self, store: RunStore, name: str) -> None:
        self._read = store.core.backend.read
        self._prefix = name.encode() + b"\x00"

    def read(self, fn: Callable[[ProjectionReader], R]) -> R:
        """Run ``fn(reader)`` in one read transaction (reads that agree with each other)."""
        prefix = self._prefix
        return self._read(lambda txn: fn(_Reader(txn, prefix)))

    def get(self, key: bytes) -> bytes | None:
        """The value at ``key``, or None (one point read)."""
        return self.read(lambda reader: reader.get(key))

    def scan(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """``(key, value)`` pairs under ``prefix``, read in one snapshot."""
        return iter(self.read(lambda reader: list(reader.scan(prefix))))
