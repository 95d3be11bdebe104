"""Raw py-lmdb: the limit, and "raw LMDB doing exactly the operations the store does".

:func:`open_env` opens an environment the way the store does (same flags), with a map
large enough never to grow, so the raw peer pays for nothing but LMDB.

:class:`OpsRecorder` runs the real store on a recording backend and keeps, per write
transaction, every key-value operation the engine made (gets, cursor seeks to a table's last
key, puts, deletes, scans). :class:`OpsReplayer` then replays those operations - the same
keys, the same bytes, in the store's database layout - with raw py-lmdb calls and nothing
else, less what the store's LMDB transactions answer from their write cache (a stream's
record, a table's last key known from the previous transaction), as the store does. The
difference between the store and this replay is the store's Python cost; the difference
between this replay and one put per transaction is what the store's layout and projections
cost in LMDB.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from itertools import islice
from typing import Any, TypeVar

import lmdb

from eventlog.storage.keys import prefix_end
from eventlog.storage.kv import KVBackend, KVTxn, follow_by_gets, get_range_by_scan
from eventlog.storage.lmdb import LAYOUT
from eventlog.storage.lmdb_env import WRITEMAP
from eventlog.storage.wakeup import Wakeup

__all__ = ["OpsRecorder", "OpsReplayer", "Txn", "open_env"]

T = TypeVar("T")

#: one recorded operation: (opcode, table, key, value, append)
Op = tuple[str, str, bytes, bytes, bool]
#: one write transaction's operations
Txn = list[Op]

MAP_SIZE = 64 << 30  # sparse: never grown during a benchmark


def open_env(path: str, *, durable: bool, max_dbs: int = 0) -> Any:
    """An LMDB environment with the store's flags (``sync``/``metasync`` = durable, and
    ``writemap`` as the store sets it: :data:`eventlog.storage.lmdb_env.WRITEMAP`)."""
    return lmdb.open(
        path,
        map_size=MAP_SIZE,
        max_dbs=max_dbs,
        sync=durable,
        metasync=durable,
        writemap=WRITEMAP,
        readahead=False,
        meminit=False,
    )


class _RecordingTxn:
    """A :class:`KVTxn` that forwards to the real one and records what it was asked."""

    __slots__ = ("_ops", "_txn")

    def __init__(self, txn: KVTxn, ops: Txn) -> None:
        self._txn = txn
        self._ops = ops

    def get(self, table: str, key: bytes) -> bytes | None:
        self._ops.append(("get", table, bytes(key), b"", False))
        return self._txn.get(table, key)

    def put(self, table: str, key: bytes, value: bytes, *, append: bool = False) -> None:
        self._ops.append(("put", table, bytes(key), bytes(value), append))
        self._txn.put(table, key, value, append=append)

    def put_many(
        self, table: str, items: list[tuple[bytes, bytes]], *, append: bool = False
    ) -> None:
        for key, value in items:
            self._ops.append(("put", table, bytes(key), bytes(value), append))
        self._txn.put_many(table, items, append=append)

    def last_key(self, table: str, below: bytes | None = None) -> bytes | None:
        self._ops.append(("last_key", table, below or b"", b"", below is None))
        return self._txn.last_key(table, below)

    def values(self, table: str, start: bytes, n: int) -> tuple[list[bytes], bytes | None]:
        self._ops.append(("values", table, bytes(start), n.to_bytes(8, "big"), False))
        return self._txn.values(table, start, n)

    def delete(self, table: str, key: bytes) -> bool:
        self._ops.append(("delete", table, bytes(key), b"", False))
        return self._txn.delete(table, key)

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
        items = list(self._txn.scan(table, start, stop, reverse=reverse))
        self._ops.append(("scan", table, bytes(start), stop or b"", reverse))
        return iter(items)


class OpsRecorder:
    """A backend wrapper: every write transaction's operations are kept in :attr:`txns`."""

    def __init__(self, inner: KVBackend) -> None:
        self._inner = inner
        self.path = inner.path
        self.readonly = inner.readonly
        self.on_commit: Callable[[], None] | None = None  # no subscribers in a benchmark
        self.txns: list[Txn] = []

    def read(self, fn: Callable[[KVTxn], T]) -> T:
        return self._inner.read(fn)

    def get(self, table: str, key: bytes) -> bytes | None:
        return self._inner.get(table, key)

    def write(self, fn: Callable[[KVTxn], T]) -> T:
        ops: Txn = []
        self.txns.append(ops)
        return self._inner.write(lambda txn: fn(_RecordingTxn(txn, ops)))

    def write_group(
        self, fns: Sequence[Callable[[KVTxn], Any]], max_bytes: int
    ) -> list[tuple[bool, Any]]:
        ops: Txn = []
        self.txns.append(ops)

        def recorded(fn: Callable[[KVTxn], Any]) -> Callable[[KVTxn], Any]:
            return lambda txn: fn(_RecordingTxn(txn, ops))

        return self._inner.write_group([recorded(fn) for fn in fns], max_bytes)

    def flush(self) -> None:
        self._inner.flush()

    def health_check(self) -> None:
        self._inner.health_check()

    def make_wakeup(self) -> Wakeup:
        return self._inner.make_wakeup()

    def close(self) -> None:
        self._inner.close()

    def take(self) -> list[Txn]:
        """The transactions recorded since the last call."""
        out, self.txns = self.txns, []
        return out


#: a replayable operation: (opcode, db handle, full key, value or upper bound, flag)
_Compiled = tuple[int, Any, bytes, bytes | None, bool]
_GET, _PUT, _DELETE, _LAST, _SCAN, _VALUES = range(6)


class OpsReplayer:
    """Replays recorded transactions on a raw environment laid out like the store's."""

    def __init__(self, path: str, *, durable: bool) -> None:
        self.env = open_env(path, durable=durable, max_dbs=32)
        names = sorted({db for db, _ in LAYOUT.values()})
        handles = {name: self.env.open_db(name.encode()) for name in names}
        self._dbs = {table: (handles[db], prefix) for table, (db, prefix) in LAYOUT.items()}
        # the store's write cache (eventlog.storage.lmdb_env.WriteCache), mirrored: what the
        # store's LMDB transactions do not ask LMDB again, the replay does not either
        self._known_streams: set[bytes] = set()
        self._tails: set[str] = set()

    def _cached(self, code: str, table: str, key: bytes, flag: bool) -> bool:
        """Whether the store answers this operation from its write cache (and track it)."""
        if code == "get" and table == "streams":
            if key in self._known_streams:
                return True
            self._known_streams.add(key)
        elif code == "last_key" and flag:  # the table's greatest key
            if table in self._tails:
                return True
            self._tails.add(table)
        elif code == "put":
            if flag:
                self._tails.add(table)
            else:
                self._tails.discard(table)
            if table == "streams":
                self._known_streams.add(key)
        elif code == "delete":
            self._tails.discard(table)
            if table == "streams":
                self._known_streams.add(key)
        return False

    def compile(self, txns: Sequence[Txn]) -> list[list[_Compiled]]:
        """Translate tables to (database, prefixed key) once, outside any timing."""
        out: list[list[_Compiled]] = []
        for txn in txns:
            ops: list[_Compiled] = []
            for code, table, key, value, flag in txn:
                if self._cached(code, table, key, flag):
                    continue
                db, prefix = self._dbs[table]
                full = prefix + key
                if code == "get":
                    ops.append((_GET, db, full, None, False))
                elif code == "put":
                    # the store's rule: MDB_APPEND only where the table's keys are the db's last
                    ops.append((_PUT, db, full, value, flag and prefix in (b"", b"\x03")))
                elif code == "delete":
                    ops.append((_DELETE, db, full, None, False))
                elif code == "last_key":  # the greatest key below `key` (flag: no bound)
                    hi = None if flag else full
                    if hi is None and prefix:
                        hi = prefix_end(prefix)
                    ops.append((_LAST, db, b"", hi, False))
                elif code == "values":
                    ops.append((_VALUES, db, full, value, False))
                else:  # scan: walk the same range
                    stop = (prefix + value) if value else (prefix_end(prefix) if prefix else None)
                    ops.append((_SCAN, db, full, stop, flag))
            if not any(code in ("put", "delete") for code, *_ in txn):
                self._known_streams.clear()  # a transaction that wrote nothing takes no id:
                self._tails.clear()  # the store trusts nothing of it in the next one
            out.append(ops)
        return out

    def replay(self, txns: Sequence[list[_Compiled]]) -> int:
        """Run each transaction with raw py-lmdb calls; returns how many were committed."""
        env = self.env
        for ops in txns:
            with env.begin(write=True) as txn:
                for code, db, key, arg, flag in ops:
                    if code == _GET:
                        txn.get(key, db=db)
                    elif code == _PUT:
                        txn.put(key, arg, db=db, append=flag)
                    elif code == _LAST:
                        cur = txn.cursor(db=db)
                        if arg is None:
                            found = cur.last()
                        elif cur.set_range(arg):
                            found = cur.prev()
                        else:
                            found = cur.last()
                        if found:
                            cur.key()
                            cur.value()
                    elif code == _DELETE:
                        txn.delete(key, db=db)
                    elif code == _VALUES:
                        cur = txn.cursor(db=db)
                        if arg and cur.set_range(key):
                            list(islice(cur.iternext(keys=False), int.from_bytes(arg, "big")))
                    else:
                        _scan(txn, db, key, arg, flag)
        return len(txns)

    def close(self) -> None:
        """Close the environment."""
        self.env.close()


def _scan(txn: Any, db: Any, lo: bytes, hi: bytes | None, reverse: bool) -> None:
    cur = txn.cursor(db=db)
    if reverse:
        ok = cur.last() if hi is None or not cur.set_range(hi) else cur.prev()
        while ok and cur.key() >= lo:
            ok = cur.prev()
        return
    if not cur.set_range(lo):
        return
    for key, _ in cur:
        if hi is not None and key >= hi:
            return
