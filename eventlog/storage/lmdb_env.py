"""The LMDB environment of one store directory: opening it, its layout, its gate.

- :class:`SharedEnv`: one open environment per directory and process, its named databases
  opened per :data:`LAYOUT` (a missing table of a read-only store reads as empty).
- :class:`Gate`: transactions enter shared, map growth and close exclusive, so a transaction
  never overlaps a ``set_mapsize``.
- :func:`check_access`: permissions are checked before LMDB opens the files, so the error says
  what to do.

The backend that uses them (registry, fork guard, transactions, map growth) is
:mod:`eventlog.storage.lmdb`.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path
from typing import Any

import lmdb

from eventlog.errors import StoreError
from eventlog.storage.config import StoreConfig
from eventlog.storage.keys import prefix_end
from eventlog.storage.kv import TABLES
from eventlog.storage.open_lock import OpenLock

__all__ = [
    "ACCESS_ADVICE",
    "LAYOUT",
    "TABLE_END",
    "WRITEMAP",
    "WriteCache",
    "Gate",
    "SharedEnv",
    "check_access",
    "open_env",
]


#: Open writable environments with ``MDB_WRITEMAP``: OFF. It makes commits much cheaper (pages
#: change in place in the shared map: a fast commit of an append's operations 12 -> 4 us), but
#: LMDB then ``ftruncate``s the file to each process's map size, so a process that opens (or
#: adopts the map) with a smaller size than another process's current map cuts the file under
#: that process, which dies of SIGBUS on its next write there (found by the chaos campaign:
#: writers opening while others grow the map). Safe only with one map size for every process.
WRITEMAP = False


class Gate:
    """Shared/exclusive gate: transactions enter shared, map growth and close exclusive.

    The shared path is two atomic list operations and one flag read (no lock): a transaction
    publishes a token, then checks whether an exclusive section is pending; the exclusive
    section raises the flag, then waits until no token is left. Whichever comes second sees
    the other, so a transaction never overlaps a ``set_mapsize``.
    """

    __slots__ = ("_blocked", "_cond", "_serial", "_tokens")

    def __init__(self) -> None:
        self._tokens: list[None] = []  # one per open transaction; append/pop are atomic
        self._blocked = False
        self._cond = threading.Condition(threading.Lock())
        self._serial = threading.Lock()  # one exclusive section at a time

    def enter(self) -> None:
        tokens = self._tokens
        while True:
            tokens.append(None)
            if not self._blocked:
                return
            self.leave()  # back off until the exclusive section is over
            with self._cond:
                while self._blocked:
                    self._cond.wait()

    def leave(self) -> None:
        self._tokens.pop()
        if self._blocked:
            with self._cond:
                self._cond.notify_all()

    def enter_exclusive(self) -> None:
        self._serial.acquire()
        with self._cond:
            self._blocked = True
            while self._tokens:
                self._cond.wait()

    def leave_exclusive(self) -> None:
        with self._cond:
            self._blocked = False
            self._cond.notify_all()
        self._serial.release()


class WriteCache:
    """What this process's last write transaction left known, for the next one to reuse.

    ``tail``: a table's greatest key; ``streams``: values of the ``streams`` table (a stream's
    number and kind, read by every append). Both are kept exact by the transaction's own
    writes. They are valid for a write transaction only if it directly follows the one that
    left them: LMDB numbers the write transactions that change something, so a transaction
    whose id is not the one after ours (another process, or a path that bypasses this cache,
    committed in between; ours aborted, or changed nothing and so took no id) starts afresh.
    """

    __slots__ = ("dirty", "next_id", "streams", "tail")

    #: at most this many ``streams`` values are kept (then the cache starts afresh)
    MAX_STREAMS = 4096

    def __init__(self) -> None:
        self.tail: dict[str, bytes] = {}
        self.streams: dict[bytes, bytes | None] = {}
        self.next_id: int | None = None
        self.dirty = False  # the current transaction changed something (so it takes its id)

    def begin(self, txn_id: int) -> None:
        """A write transaction ``txn_id`` begins: keep what is known only if it follows ours."""
        if self.next_id != txn_id or len(self.streams) > self.MAX_STREAMS:
            self.tail.clear()
            self.streams.clear()
        self.next_id = None  # until this transaction commits
        self.dirty = False

    def committed(self, txn_id: int) -> None:
        """Write transaction ``txn_id`` committed: what it left is valid for ``txn_id + 1``."""
        self.next_id = txn_id + 1 if self.dirty else None


class SharedEnv:
    """One open LMDB environment, shared by every LmdbBackend of this process on that path.

    The transactions of this process enter ``gate`` shared; map growth and close enter it
    exclusive. ``next_reader_check`` is when a writer next clears stale reader slots.
    """

    def __init__(self, config: StoreConfig, realpath: str, reader_check_interval: float) -> None:
        self.realpath = realpath
        self.config = config
        self.refs = 0
        self.gate = Gate()
        #: what this process's last write transaction left known (its writers share it)
        self.cache = WriteCache()
        self.pid = os.getpid()
        self.next_reader_check = time.monotonic() + reader_check_interval
        durable = config.durability == "durable"
        options = {
            "map_size": config.map_size,
            "max_dbs": config.max_dbs,
            "max_readers": config.max_readers,
            "sync": durable,
            "metasync": durable,
            "mode": 0o600,
            "subdir": True,
            "create": not config.readonly,
            "readonly": config.readonly,
            "lock": True,
            "readahead": False,
            "meminit": False,
            "writemap": WRITEMAP and not config.readonly,  # off: see WRITEMAP
        }
        #: held shared while this process has the environment open (see open_lock.py)
        self.open_lock = OpenLock(realpath)
        try:
            self.env = open_env(realpath, options)
            self.env.reader_check()  # free slots left by killed reader processes
            handles, missing = self._open_dbs(config.readonly)
            # a missing table reads as empty: an unused prefix of the `log` database
            self.dbs = {
                t: (handles["log"], _EMPTY_PREFIX) if db in missing else (handles[db], prefix)
                for t, (db, prefix) in LAYOUT.items()
            }
        except lmdb.Error as exc:
            self.open_lock.release()
            hint = ""
            if "Permission denied" in str(exc) or "Read-only file system" in str(exc):
                hint = f"; {ACCESS_ADVICE}"
            raise StoreError(f"cannot open LMDB store at {realpath}: {exc}{hint}") from exc
        except BaseException:
            self.open_lock.release()
            raise

    def _open_dbs(self, readonly: bool) -> tuple[dict[str, Any], set[str]]:
        """The named databases, and (read-only) the tables this store does not have yet.

        Another process may grow the map between lmdb.open() and here (MDB_MAP_RESIZED):
        adopt its size and retry. No transaction of this process is open yet.
        """
        while True:
            try:
                handles: dict[str, Any] = {}
                missing: set[str] = set()
                for name in _DB_NAMES:
                    try:
                        handles[name] = self.env.open_db(name.encode(), create=not readonly)
                    except lmdb.NotFoundError:
                        if not readonly:
                            raise
                        missing.add(name)  # a table newer than the store's last writer
                return handles, missing
            except lmdb.MapResizedError:
                self.env.set_mapsize(0)


def open_env(realpath: str, options: dict[str, Any]) -> Any:
    """``lmdb.open``, retried while another process grows the map under it.

    py-lmdb begins a transaction inside ``open``; if another process grew the map between
    reading its size and that transaction, LMDB says MDB_MAP_RESIZED (found by the chaos run:
    writers opening while others grow the map). A fresh open reads the new size.
    """
    for _ in range(99):
        try:
            return lmdb.open(realpath, **options)
        except lmdb.MapResizedError:
            continue
    return lmdb.open(realpath, **options)


ACCESS_ADVICE = (
    "run as the store's owner, ask them to grant you access, or open it read-only "
    "(RunStore.open(path, readonly=True); the CLI's read commands do)"
)


def _who_owns(path: Path) -> str:
    try:
        st = path.stat()
    except OSError:
        return "unknown owner"
    return f"owner uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):04o}"


def check_access(path: Path, readonly: bool) -> None:
    """Refuse, with advice, a store this user cannot read (or write, unless ``readonly``).

    LMDB records every reader in ``lock.mdb``, so even a read-only open needs write access to
    that file. Root passes every check (the kernel lets it).
    """
    try:
        exists = (path / "data.mdb").is_file()
    except PermissionError:
        raise StoreError(
            f"permission denied: cannot enter the store directory {path} ({_who_owns(path)}); "
            "run as its owner or ask them to grant you access"
        ) from None
    if not exists:
        return
    data, lock = path / "data.mdb", path / "lock.mdb"
    if not os.access(data, os.R_OK):
        raise StoreError(
            f"permission denied: cannot read {data} ({_who_owns(data)}); run as its owner or "
            "ask them to grant you read access"
        )
    if lock.exists() and not os.access(lock, os.R_OK | os.W_OK):
        raise StoreError(
            f"permission denied: {lock} is not writable ({_who_owns(lock)}), and LMDB records "
            "every reader in it - even a read-only open needs write access to lock.mdb; ask "
            "the store's owner to grant it (chmod o+rw lock.mdb) or to export the store for you"
        )
    if not readonly and not os.access(data, os.W_OK):
        raise StoreError(
            f"permission denied: cannot write {data} ({_who_owns(data)}); {ACCESS_ADVICE}"
        )


#: Where each engine table lives. The tables every append writes share one named database
#: (``log``) under one-byte prefixes, so a commit updates one sub-database record in LMDB's main
#: database instead of four (measured: ~20% more appends/s in fast mode, fewer pages synced in
#: durable mode). The others get their own named database.
_IN_LOG = {"meta": b"\x00", "projections": b"\x01", "positions": b"\x03"}
LAYOUT: dict[str, tuple[str, bytes]] = {
    **{t: ("log", p) for t, p in _IN_LOG.items()},
    **{t: (t, b"") for t in TABLES if t not in _IN_LOG},
}
#: In a read-only store whose writer predates a table: an unused prefix of ``log`` (reads as empty).
_EMPTY_PREFIX = b"\x7f"
_DB_NAMES = sorted({db for db, _ in LAYOUT.values()})
TABLE_END = {t: (prefix_end(p) if p else None) for t, (_, p) in LAYOUT.items()}
