"""The in-memory backend: the same contract as LMDB with no disk, for users' own unit tests.

Each table is a dict plus its keys in order (a chunked
:class:`~eventlog.storage.sorted_keys.SortedKeys`, so an insert does not move every key after
it); a write transaction records an undo log and rolls it back when the engine raises, so a
failed append leaves nothing behind - exactly as on LMDB. One lock serializes transactions
(readers included): simple, and plenty for tests. Only the thread holding it can open another
transaction inside one; the reads stay snapshots even then (a write begun under an open read
copies the tables first, a read begun under an open write sees the tables as the write's undo
log would leave them).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from eventlog.errors import StoreClosedError, StoreError
from eventlog.storage.kv import TABLES, follow_by_gets, get_range_by_scan
from eventlog.storage.sorted_keys import SortedKeys
from eventlog.storage.wakeup import Wakeup

__all__ = ["MemoryBackend"]

T = TypeVar("T")
_MISSING = object()


class _Table:
    __slots__ = ("data", "keys")

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.keys = SortedKeys()

    def copy(self) -> _Table:
        other = _Table()
        other.data, other.keys = dict(self.data), self.keys.copy()
        return other

    def restore(self, key: bytes, old: object) -> None:
        """Undo one change of ``key`` (``old``: its previous value, or _MISSING)."""
        if old is _MISSING:
            del self.data[key]
            self.keys.remove(key)
        else:
            if key not in self.data:
                self.keys.add(key)
            self.data[key] = old  # type: ignore[assignment]


def _refuse(what: str) -> StoreError:
    return StoreError(f"{what} in a read transaction: write in backend.write(fn) instead")


class _MemoryTxn:
    __slots__ = ("_tables", "_undo", "_write", "written")

    def __init__(self, tables: dict[str, _Table], write: bool) -> None:
        self._tables = tables
        self._write = write
        self._undo: list[tuple[_Table, bytes, object]] = []
        self.written = 0  # bytes of values put (group commit's byte cap)

    def get(self, table: str, key: bytes) -> bytes | None:
        return self._tables[table].data.get(key)

    def put(self, table: str, key: bytes, value: bytes, *, append: bool = False) -> None:
        if not self._write:
            raise _refuse("put")
        if not key:
            raise StoreError(f"table {table}: an empty key cannot be stored (keys are 1+ bytes)")
        t = self._tables[table]
        old = t.data.get(key, _MISSING)
        if old is _MISSING:
            t.keys.add(key)
        t.data[key] = bytes(value)
        self.written += len(value)
        self._undo.append((t, key, old))

    def put_many(
        self, table: str, items: list[tuple[bytes, bytes]], *, append: bool = False
    ) -> None:
        for key, value in items:
            self.put(table, key, value, append=append)

    def last_key(self, table: str, below: bytes | None = None) -> bytes | None:
        return self._tables[table].keys.last_below(below)

    def values(self, table: str, start: bytes, n: int) -> tuple[list[bytes], bytes | None]:
        t = self._tables[table]
        keys = t.keys.take(start, n) if n > 0 else []
        data = t.data
        return [data[k] for k in keys], (keys[-1] if keys else None)

    def delete(self, table: str, key: bytes) -> bool:
        if not self._write:
            raise _refuse("delete")
        t = self._tables[table]
        old = t.data.pop(key, _MISSING)
        if old is _MISSING:
            return False
        t.keys.remove(key)
        self._undo.append((t, key, old))
        return True

    def prefetch(self, table: str, keys: Sequence[bytes]) -> None:
        return None  # a get is already a memory lookup

    def discard(self, table: str, key: bytes) -> None:
        self.delete(table, key)

    # a scan and gets: every one costs no round trip here
    follow = follow_by_gets
    get_range = get_range_by_scan

    def scan(
        self, table: str, start: bytes, stop: bytes | None = None, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        t = self._tables[table]
        keys = t.keys.range(start, stop)  # a snapshot: the caller may write while iterating
        if reverse:
            keys.reverse()
        data = t.data
        return iter([(k, data[k]) for k in keys])

    def savepoint(self) -> tuple[int, int]:
        return len(self._undo), self.written

    def rollback(self, to: tuple[int, int] = (0, 0)) -> None:
        mark, self.written = to
        while len(self._undo) > mark:
            t, key, old = self._undo.pop()
            t.restore(key, old)

    def committed(self) -> dict[str, _Table]:
        """Copies of the tables as they were before this transaction (for a nested read)."""
        copies = {id(t): t.copy() for t in self._tables.values()}
        for t, key, old in reversed(self._undo):
            copies[id(t)].restore(key, old)
        return {name: copies[id(t)] for name, t in self._tables.items()}


class MemoryBackend:
    """A process-local, non-persistent backend."""

    path: str | None = None
    readonly = False

    def __init__(self) -> None:
        self._tables = {name: _Table() for name in TABLES}
        self._lock = threading.RLock()
        self._closed = False
        self._reading = 0  # reads open in the thread holding the lock
        self._writing: _MemoryTxn | None = None  # the write open in that thread
        self.on_commit: Callable[[], None] | None = None

    def _check(self) -> None:
        if self._closed:
            raise StoreClosedError("in-memory store is closed; create a new one")

    def _snapshot(self) -> dict[str, _Table]:
        """The committed tables (call with the lock held)."""
        return self._tables if self._writing is None else self._writing.committed()

    def read(self, fn: Callable[[_MemoryTxn], T]) -> T:
        with self._lock:
            self._check()
            txn = _MemoryTxn(self._snapshot(), write=False)
            self._reading += 1
            try:
                return fn(txn)
            finally:
                self._reading -= 1

    def _begin(self) -> _MemoryTxn:
        """A write transaction (call with the lock held)."""
        self._check()
        if self._writing is not None:
            raise StoreError(
                "in-memory store: a write transaction is already open in this thread; "
                "nest no write in a write (other backends would deadlock)"
            )
        if self._reading:  # an open read of this thread keeps the tables it has
            self._tables = {name: t.copy() for name, t in self._tables.items()}
        self._writing = _MemoryTxn(self._tables, write=True)
        return self._writing

    def write(self, fn: Callable[[_MemoryTxn], T]) -> T:
        with self._lock:
            txn = self._begin()
            try:
                result = fn(txn)
            except BaseException:
                txn.rollback()
                raise
            finally:
                self._writing = None
        if self.on_commit is not None:
            self.on_commit()
        return result

    def write_group(
        self, fns: Sequence[Callable[[_MemoryTxn], Any]], max_bytes: int
    ) -> list[tuple[bool, Any]]:
        with self._lock:
            txn = self._begin()
            out: list[tuple[bool, Any]] = []
            try:
                for fn in fns:
                    mark = txn.savepoint()
                    try:
                        out.append((True, fn(txn)))
                    except Exception as exc:
                        txn.rollback(mark)
                        out.append((False, exc))
                    if txn.written >= max_bytes:
                        break
            except BaseException:
                txn.rollback()
                raise
            finally:
                self._writing = None
        if self.on_commit is not None:
            self.on_commit()
        return out

    def get(self, table: str, key: bytes) -> bytes | None:
        with self._lock:
            self._check()
            return self._snapshot()[table].data.get(key)

    def flush(self) -> None:
        self._check()

    def make_wakeup(self) -> Wakeup:
        return Wakeup(None, readonly=False)

    def health_check(self) -> None:
        self._check()

    def close(self) -> None:
        self._closed = True
