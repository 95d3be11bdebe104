"""The LMDB key-value transaction: the engine's tables over LMDB's named databases.

:class:`LmdbTxn` wraps one ``lmdb.Transaction`` (begun, committed and aborted by
:class:`eventlog.storage.lmdb.LmdbBackend`) and maps each table onto its database and key prefix
(:data:`eventlog.storage.lmdb_env.LAYOUT`). A key LMDB refuses (empty, or over its 511-byte
limit) is the request's fault: a ``StoreError`` raised ``from None``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import islice
from typing import Any

import lmdb

from eventlog.errors import StoreError
from eventlog.storage.keys import prefix_end
from eventlog.storage.kv import follow_by_gets, get_range_by_scan
from eventlog.storage.lmdb_env import LAYOUT, TABLE_END, WriteCache

__all__ = ["LMDB_MAX_KEY", "LmdbTxn", "bad_key", "seek_last_below"]


def seek_last_below(cur: Any, hi: bytes | None) -> bool:
    """Position ``cur`` on the last key < ``hi`` (the last key when ``hi`` is None)."""
    if hi is None:
        return bool(cur.last())
    if cur.set_range(hi):
        return bool(cur.prev())
    return bool(cur.last())


#: LMDB's key size limit (``mdb_env_get_maxkeysize``), prefix included.
LMDB_MAX_KEY = 511


def bad_key(table: str, key: bytes) -> StoreError:
    """The error for a key LMDB cannot store in ``table`` (empty, or over its size limit)."""
    return StoreError(
        f"table {table}: cannot store a key of {len(key)} bytes (keys are 1 to "
        f"{LMDB_MAX_KEY - len(LAYOUT[table][1])} bytes on LMDB; {key[:16]!r}...)"
    )


#: not in the streams cache (None there means: known to be absent)
_UNKNOWN = object()


def _refuse_empty(table: str) -> bytes:
    raise bad_key(table, b"")


class LmdbTxn:
    """The KV transaction (:class:`eventlog.storage.kv.KVTxn`) over one LMDB transaction."""

    __slots__ = ("_cache", "_cursors", "_dbs", "_streams", "_tail", "_txn", "written")

    def __init__(
        self, txn: Any, dbs: dict[str, tuple[Any, bytes]], cache: WriteCache | None = None
    ) -> None:
        self._txn = txn
        self._dbs = dbs
        self._cursors: dict[str, Any] = {}  # one reusable cursor per table, for last_key()
        # a table's greatest key, known from an append=True put or a last_key() (a group's
        # requests, and the next write transaction, find the last position without a cursor
        # step); a write transaction shares them with the next one through `cache`
        self._cache = cache
        self._tail: dict[str, bytes] = {} if cache is None else cache.tail
        self._streams: dict[bytes, bytes | None] | None = None if cache is None else cache.streams
        self.written = 0  # bytes of values put (group commit's byte cap)

    def get(self, table: str, key: bytes) -> bytes | None:
        streams = self._streams
        if streams is not None and table == "streams":
            known = streams.get(key, _UNKNOWN)
            if known is not _UNKNOWN:
                return known  # type: ignore[return-value]
            value = self._get(table, key)
            streams[key] = value
            return value
        return self._get(table, key)

    def _get(self, table: str, key: bytes) -> bytes | None:
        db, prefix = self._dbs[table]
        try:
            value: bytes | None = self._txn.get(prefix + key, db=db)
        except lmdb.BadValsizeError:  # an empty or too long key: never stored
            return None
        return value

    def get_many(self, table: str, keys: Sequence[bytes]) -> list[bytes | None]:
        """``get`` of each of ``keys``, in order, in one py-lmdb call (``Cursor.getmulti``)."""
        db, prefix = self._dbs[table]
        full = [prefix + k for k in keys] if prefix else list(keys)
        try:
            pairs = self._txn.cursor(db=db).getmulti(full)
        except lmdb.BadValsizeError:  # an empty or too long key: never stored
            return [self.get(table, k) for k in keys]
        if len(pairs) == len(full):
            return [v for _, v in pairs]
        found = dict(pairs)  # some are missing (getmulti leaves them out)
        return [found.get(k) for k in full]

    def put(self, table: str, key: bytes, value: bytes, *, append: bool = False) -> None:
        db, prefix = self._dbs[table]
        if not key:  # LMDB refuses it in a database of its own: refuse it everywhere
            raise bad_key(table, key)
        self.written += len(value)
        if append:
            self._tail[table] = key
        elif self._tail:
            self._tail.pop(table, None)
        # MDB_APPEND needs the key to sort after every key of the *database*: only valid for
        # tables that own their database or hold its highest prefix.
        try:
            self._txn.put(prefix + key, value, db=db, append=append and prefix in (b"", b"\x03"))
        except lmdb.BadValsizeError:
            raise bad_key(table, key) from None  # the request's fault, not the storage's
        cache = self._cache
        if cache is not None:
            cache.dirty = True
            if table == "streams":
                cache.streams[key] = bytes(value)

    def put_many(
        self, table: str, items: list[tuple[bytes, bytes]], *, append: bool = False
    ) -> None:
        db, prefix = self._dbs[table]
        self.written += sum([len(v) for _, v in items])
        if append and items:
            self._tail[table] = items[-1][0]
        elif self._tail:
            self._tail.pop(table, None)
        given = items
        if prefix:  # (`k or`: an empty key would store the bare prefix - refuse it)
            items = [(prefix + (k or _refuse_empty(table)), v) for k, v in items]
        cur = self._txn.cursor(db=db)
        try:
            cur.putmulti(items, append=append and prefix in (b"", b"\x03"))
        except lmdb.BadValsizeError:
            bad = next(k for k, _ in items if not 0 < len(k) <= LMDB_MAX_KEY)
            raise bad_key(table, bad[len(prefix) :]) from None
        cache = self._cache
        if cache is not None and given:
            cache.dirty = True
            if table == "streams":
                cache.streams.update((k, bytes(v)) for k, v in given)

    def delete(self, table: str, key: bytes) -> bool:
        db, prefix = self._dbs[table]
        if self._tail:
            self._tail.pop(table, None)
        try:
            deleted: bool = self._txn.delete(prefix + key, db=db)
        except lmdb.BadValsizeError:  # an empty or too long key: never stored
            return False
        cache = self._cache
        if cache is not None:
            if deleted:
                cache.dirty = True
            if table == "streams":
                cache.streams[key] = None
        return deleted

    def prefetch(self, table: str, keys: Sequence[bytes]) -> None:
        return None  # a get is already a memory lookup

    def discard(self, table: str, key: bytes) -> None:
        self.delete(table, key)

    def last_key(self, table: str, below: bytes | None = None) -> bytes | None:
        if below is None:
            tail = self._tail.get(table)
            if tail is not None:
                return tail
        cur = self._cursors.get(table)
        db, prefix = self._dbs[table]
        if cur is None:
            cur = self._cursors[table] = self._txn.cursor(db=db)
        if not seek_last_below(cur, TABLE_END[table] if below is None else prefix + below):
            return None
        key: bytes = cur.key()
        if prefix:
            if not key.startswith(prefix):
                return None
            key = key[len(prefix) :]
        if below is None:
            self._tail[table] = key
        return key

    def values(self, table: str, start: bytes, n: int) -> tuple[list[bytes], bytes | None]:
        db, prefix = self._dbs[table]
        cur = self._txn.cursor(db=db)
        if n <= 0 or not cur.set_range(prefix + start):
            return [], None
        out = list(islice(cur.iternext(keys=False), n))
        if len(out) == n:  # the cursor stands on the n-th key
            key: bytes = cur.key()
            if key.startswith(prefix):
                return out, key[len(prefix) :]
        # the database ended, or the table (its prefix) did, before n values: key by key
        pairs = list(islice(self.scan(table, start), n))
        return [v for _, v in pairs], pairs[-1][0] if pairs else None

    def items(self, table: str, start: bytes, n: int) -> list[tuple[bytes, bytes]]:
        """The first ``n`` items with keys ``>= start``, read in one C loop (a rebuild's walk)."""
        db, prefix = self._dbs[table]
        if prefix:
            return list(islice(self.scan(table, start), n))
        cur = self._txn.cursor(db=db)
        if n <= 0 or not cur.set_range(start):
            return []
        return list(islice(cur.iternext(), n))

    # a scan and gets: every one costs no round trip here
    follow = follow_by_gets
    get_range = get_range_by_scan

    def scan(
        self, table: str, start: bytes, stop: bytes | None = None, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        db, prefix = self._dbs[table]
        n = len(prefix)
        lo = prefix + start
        hi = prefix + stop if stop is not None else prefix_end(prefix) if prefix else None
        cur = self._txn.cursor(db=db)
        if not reverse:
            if not cur.set_range(lo):
                return
            for key, value in cur:
                if hi is not None and key >= hi:
                    return
                yield key[n:], value
            return
        if not seek_last_below(cur, hi):
            return
        for key, value in cur.iterprev():
            if key < lo:
                return
            yield key[n:], value
