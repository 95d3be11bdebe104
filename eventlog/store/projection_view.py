"""Read-only access to one projector's keyspace, for query objects outside a transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

from eventlog.engine.projectors import reader
from eventlog.engine.protocols import ProjectionReader
from eventlog.storage.kv import KVBackend

__all__ = ["ProjectionView"]

T = TypeVar("T")


class ProjectionView:
    """Read-only access to one projector's keyspace; each call is one short read.

    What ``store.projection(name)`` hands a projector's ``query(reader)`` (or returns, for a
    projector without one).
    """

    def __init__(self, backend: KVBackend, name: str) -> None:
        self._backend = backend
        self._name = name
        self._prefix = name.encode() + b"\x00"

    def get(self, key: bytes) -> bytes | None:
        """The value at ``key`` in this keyspace, or None (one point read)."""
        if not isinstance(key, bytes):
            raise TypeError(f"projection keys are bytes, got {type(key).__name__}")
        return self._backend.get("projections", self._prefix + key)

    def scan(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """``(key, value)`` pairs whose key starts with ``prefix``, read in one snapshot."""
        return iter(self._backend.read(lambda txn: list(reader(txn, self._name).scan(prefix))))

    def read(self, fn: Callable[[ProjectionReader], T]) -> T:
        """Run ``fn(reader)`` in one read snapshot of this keyspace (reads that agree)."""
        return self._backend.read(lambda txn: fn(reader(txn, self._name)))
