"""The in-memory backend: the same contract as LMDB with no disk, for users' own unit tests.

Each table is a dict plus a sorted key list; a write transaction records an undo log and rolls
it back when the engine raises, so a failed append leaves nothing behind - exactly as on LMDB.
One lock serializes transactions (readers included): simple, and plenty for tests.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from eventlog.errors import StoreClosedError
from eventlog.storage.kv import TABLES
from eventlog.storage.wakeup import Wakeup

__all__ = ["MemoryBackend"]

T = TypeVar("T")
_MISSING = object()


class _Table:
    __slots__ = ("data", "keys")

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.keys: list[bytes] = []


class _MemoryTxn:
    __slots__ = ("_tables", "_undo", "_write")

    def __init__(self, tables: dict[str, _Table], write: bool) -> None:
        self._tables = tables
        self._write = write
        self._undo: list[tuple[_Table, bytes, object]] = []

    def get(self, table: str, key: bytes) -> bytes | None:
        return self._tables[table].data.get(key)

    def put(self, table: str, key: bytes, value: bytes, *, append: bool = False) -> None:
        if not self._write:
            raise RuntimeError("put in a read transaction")
        t = self._tables[table]
        old = t.data.get(key, _MISSING)
        if old is _MISSING:
            bisect.insort(t.keys, key)
        t.data[key] = bytes(value)
        self._undo.append((t, key, old))

    def put_many(
        self, table: str, items: list[tuple[bytes, bytes]], *, append: bool = False
    ) -> None:
        for key, value in items:
            self.put(table, key, value, append=append)

    def last_key(self, table: str, below: bytes | None = None) -> bytes | None:
        keys = self._tables[table].keys
        i = len(keys) if below is None else bisect.bisect_left(keys, below)
        return keys[i - 1] if i else None

    def values(self, table: str, start: bytes, n: int) -> tuple[list[bytes], bytes | None]:
        t = self._tables[table]
        lo = bisect.bisect_left(t.keys, start)
        keys = t.keys[lo : lo + max(n, 0)]
        data = t.data
        return [data[k] for k in keys], (keys[-1] if keys else None)

    def delete(self, table: str, key: bytes) -> bool:
        if not self._write:
            raise RuntimeError("delete in a read transaction")
        t = self._tables[table]
        old = t.data.pop(key, _MISSING)
        if old is _MISSING:
            return False
        del t.keys[bisect.bisect_left(t.keys, key)]
        self._undo.append((t, key, old))
        return True

    def prefetch(self, table: str, keys: Sequence[bytes]) -> None:
        return None  # a get is already a memory lookup

    def discard(self, table: str, key: bytes) -> None:
        self.delete(table, key)

    def scan(
        self, table: str, start: bytes, stop: bytes | None = None, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        t = self._tables[table]
        lo = bisect.bisect_left(t.keys, start)
        hi = len(t.keys) if stop is None else bisect.bisect_left(t.keys, stop)
        keys = t.keys[lo:hi]  # a snapshot: the caller may write while iterating
        if reverse:
            keys.reverse()
        data = t.data
        return iter([(k, data[k]) for k in keys])

    def savepoint(self) -> int:
        return len(self._undo)

    def rollback(self, to: int = 0) -> None:
        while len(self._undo) > to:
            t, key, old = self._undo.pop()
            if old is _MISSING:
                del t.data[key]
                del t.keys[bisect.bisect_left(t.keys, key)]
            else:
                if key not in t.data:
                    bisect.insort(t.keys, key)
                t.data[key] = old  # type: ignore[assignment]


class MemoryBackend:
    """A process-local, non-persistent backend."""

    path: str | None = None
    readonly = False

    def __init__(self) -> None:
        self._tables = {name: _Table() for name in TABLES}
        self._lock = threading.RLock()
        self._closed = False
        self.on_commit: Callable[[], None] | None = None

    def _check(self) -> None:
        if self._closed:
            raise StoreClosedError("in-memory store is closed; create a new one")

    def read(self, fn: Callable[[_MemoryTxn], T]) -> T:
        with self._lock:
            self._check()
            return fn(_MemoryTxn(self._tables, write=False))

    def write(self, fn: Callable[[_MemoryTxn], T]) -> T:
        with self._lock:
            self._check()
            txn = _MemoryTxn(self._tables, write=True)
            try:
                result = fn(txn)
            except BaseException:
                txn.rollback()
                raise
        if self.on_commit is not None:
            self.on_commit()
        return result

    def write_group(
        self, fns: Sequence[Callable[[_MemoryTxn], Any]], max_bytes: int
    ) -> list[tuple[bool, Any]]:
        with self._lock:
            self._check()
            txn = _MemoryTxn(self._tables, write=True)
            out: list[tuple[bool, Any]] = []
            try:
                for fn in fns:
                    mark = txn.savepoint()
                    try:
                        out.append((True, fn(txn)))
                    except Exception as exc:
                        txn.rollback(mark)
                        out.append((False, exc))
            except BaseException:
                txn.rollback()
                raise
        if self.on_commit is not None:
            self.on_commit()
        return out

    def get(self, table: str, key: bytes) -> bytes | None:
        with self._lock:
            self._check()
            return self._tables[table].data.get(key)

    def flush(self) -> None:
        self._check()

    def make_wakeup(self) -> Wakeup:
        return Wakeup(None, readonly=False)

    def health_check(self) -> None:
        self._check()

    def close(self) -> None:
        self._closed = True
