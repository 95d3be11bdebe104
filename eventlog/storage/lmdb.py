"""The LMDB backend: one environment per store directory, opened once per process.

- Named sub-databases, one per table of :data:`eventlog.storage.kv.TABLES`.
- ``with env.begin(write=True)`` per public call, never a transaction held on ``self``.
- The map starts small and grows on ``MapFullError``: abort, grow with no transaction open in
  this process (a gate that every transaction holds shared and the growth holds exclusive),
  retry; past ``max_map_size`` the write raises :class:`StoreFullError`.
- A map grown by another process shows up as ``MapResizedError``: adopt the new size, retry.
- A store opened before ``os.fork()`` refuses to work in the child (clear ``StoreError``).
- Reader slots left by killed processes are cleared on open, at most every
  :data:`READER_CHECK_INTERVAL` seconds by a writing process, and before the map grows: a dead
  reader's slot would otherwise pin its snapshot and make the file grow without bound.
- Permissions are checked before LMDB opens the files, so the error says what to do.
- No ``lmdb`` exception escapes: they are converted to :class:`StoreError` here.

This module holds the backend: the per-process registry of environments, the fork guard, the
transactions (read, write, group commit) and map growth. Opening an environment, its layout
and its gate are in :mod:`eventlog.storage.lmdb_env`; the key-value transaction over LMDB's
databases is :class:`eventlog.storage.lmdb_txn.LmdbTxn`.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import lmdb

from eventlog.errors import StoreClosedError, StoreError, StoreFullError
from eventlog.log import get_logger
from eventlog.storage.config import StoreConfig
from eventlog.storage.lmdb_env import LAYOUT as LAYOUT  # re-exported: the benchmarks' raw peer
from eventlog.storage.lmdb_env import SharedEnv, check_access
from eventlog.storage.lmdb_txn import LmdbTxn
from eventlog.storage.wakeup import Wakeup

__all__ = ["LmdbBackend"]

T = TypeVar("T")

#: Seconds between two checks of the reader table by a process that writes
#: (``mdb_reader_check``: a scan of the slots, ~1 microsecond here; see tests/RELIABILITY.md).
READER_CHECK_INTERVAL = 1.0

log = get_logger("eventlog.lmdb")


_registry: dict[str, SharedEnv] = {}
_registry_lock = threading.Lock()
_live: weakref.WeakSet[LmdbBackend] = weakref.WeakSet()
_leaked_in_child: list[Any] = []
_inherited: dict[str, int] = {}  # realpath -> pid of the parent that opened it

_FORK_ADVICE = (
    "an LMDB environment cannot be shared with a child process, and py-lmdb cannot open it a "
    "second time in the child: open the store only after the fork (close it in the parent "
    "before os.fork()), or start workers with multiprocessing's 'spawn' method"
)


def _after_fork_in_child() -> None:
    # The child must never use (nor close: closing would clear the parent's reader slots) an
    # environment opened by its parent. Mark every backend as forked and keep the envs alive.
    for backend in list(_live):
        backend.mark_forked()
    for shared in _registry.values():
        _leaked_in_child.append(shared.env)
        _inherited[shared.realpath] = shared.pid
    _registry.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def open_in_this_process(realpath: str) -> bool:
    """Whether this process has the store at ``realpath`` open (``eventlog compact`` asks)."""
    with _registry_lock:
        return realpath in _registry


def _lmdb_cause(exc: BaseException) -> lmdb.Error | None:
    """The LMDB error at the root of ``exc``'s cause chain, if any.

    ``raise ... from None`` ends the chain: such an error says LMDB was not the cause (a key
    that LMDB refused is the request's fault).
    """
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 20:
        if isinstance(current, lmdb.Error):
            return current
        context = None if current.__suppress_context__ else current.__context__
        current = current.__cause__ or context
        seen += 1
    return None


class _Again:
    """What a transaction body returns to be aborted and run again."""


_AGAIN = _Again()


class _Failed(Exception):
    """The first request of a group failed: nothing to commit, its exception to report."""

    def __init__(self, exc: Exception) -> None:
        super().__init__()
        self.exc = exc


class LmdbBackend:
    """A store directory on LMDB."""

    def __init__(self, config: StoreConfig) -> None:
        path = Path(config.path).expanduser()
        check_access(path, config.readonly)
        if config.readonly or not config.create:
            if not (path / "data.mdb").is_file():
                raise StoreError(
                    f"no eventlog store at {path}: check the path (or create the store first, "
                    "for example with `eventlog demo --db PATH`)"
                )
        else:
            try:
                path.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create store directory {path}: {exc}") from exc
        realpath = os.path.realpath(path)
        if realpath in _inherited:
            raise StoreError(
                f"store {realpath} was opened in process {_inherited[realpath]} before "
                f"os.fork(), so this child process cannot open it; {_FORK_ADVICE}"
            )
        with _registry_lock:
            shared = _registry.get(realpath)
            if shared is None:
                shared = SharedEnv(config, realpath, READER_CHECK_INTERVAL)
                _registry[realpath] = shared
                log.info("store_opened", path=realpath, durability=config.durability)
            elif shared.config.readonly and not config.readonly:
                raise StoreError(
                    f"store {realpath} is already open read-only in this process; close it "
                    "before opening it for writing"
                )
            elif shared.config.durability != config.durability and not config.readonly:
                raise StoreError(
                    f"store {realpath} is already open in this process with durability="
                    f"{shared.config.durability!r}; open it with the same durability "
                    "(one LMDB environment per directory and process)"
                )
            shared.refs += 1
        self._shared: SharedEnv | None = shared
        self._env = shared.env
        self._dbs = shared.dbs
        self._gate = shared.gate
        self._cache = shared.cache  # what the last write transaction of this process left known
        self._max_map_size = max(config.max_map_size, shared.config.max_map_size)
        self._forked = False
        self.readonly = config.readonly
        self.path: str | None = realpath
        self.on_commit: Callable[[], None] | None = None
        _live.add(self)

    # -- guards --------------------------------------------------------------------------
    def mark_forked(self) -> None:
        """Refuse every later call: this is a forked child (internal: the fork hook)."""
        self._forked = True

    def _check(self) -> None:
        if self._shared is None:
            raise StoreClosedError(f"store {self.path} is closed; open it again with RunStore.open")
        if self._forked:
            raise StoreError(
                f"store {self.path} was opened in process {self._shared.pid} before os.fork() "
                f"and cannot be used in this child process; {_FORK_ADVICE}"
            )

    # -- transactions -------------------------------------------------------------------
    def _begin(self, write: bool) -> Any:
        """Enter the gate and begin a transaction; None when the map must be adopted first.

        On success the caller owns one ``gate.leave()``; on None or an error the gate is left.
        """
        gate = self._gate
        gate.enter()
        try:
            return self._env.begin(write=write)
        except lmdb.MapResizedError:
            gate.leave()
            self._adopt_map_size()  # another process grew the map: take its size, retry
            return None
        except lmdb.Error as exc:
            gate.leave()
            kind = "write" if write else "read"
            raise StoreError(f"store {self.path}: cannot begin a {kind}: {exc}") from exc

    def read(self, fn: Callable[[LmdbTxn], T]) -> T:
        self._check()
        gate = self._gate
        while True:
            txn = self._begin(write=False)
            if txn is None:
                continue
            try:
                return fn(LmdbTxn(txn, self._dbs))
            except lmdb.ReadonlyError as exc:
                raise StoreError(
                    f"store {self.path}: a read transaction cannot write: write in "
                    "backend.write(fn)"
                ) from exc
            except lmdb.Error as exc:
                log.error("lmdb_read_failed", path=self.path, error=str(exc))
                raise StoreError(f"store {self.path}: read failed: {exc}") from exc
            finally:
                txn.abort()
                gate.leave()

    def get(self, table: str, key: bytes) -> bytes | None:
        """One key in a short read transaction (the fast path of point reads)."""
        self._check()
        db, prefix = self._dbs[table]
        gate = self._gate
        while True:
            txn = self._begin(write=False)
            if txn is None:
                continue
            try:
                value: bytes | None = txn.get(prefix + key, db=db)
                return value
            except lmdb.BadValsizeError:  # an empty or too long key: never stored
                return None
            except lmdb.Error as exc:
                raise StoreError(f"store {self.path}: read failed: {exc}") from exc
            finally:
                txn.abort()
                gate.leave()

    def _check_writable(self) -> None:
        self._check()
        self._check_readers_now_and_then()
        if self.readonly:
            raise StoreError(
                f"store {self.path} is open read-only; open it without readonly=True to write"
            )

    def write(self, fn: Callable[[LmdbTxn], T]) -> T:
        self._check_writable()
        dbs, cache = self._dbs, self._cache
        return self._transact(lambda txn: fn(LmdbTxn(txn, dbs, cache)))

    def write_group(
        self, fns: Sequence[Callable[[LmdbTxn], Any]], max_bytes: int
    ) -> list[tuple[bool, Any]]:
        """Group commit's step: ``fns`` in one transaction, one commit (see kv.py).

        Optimistic: every request writes straight into the group's transaction. When one
        raises (its own fault: a conflict, an unknown run, a projector's error), the
        transaction is aborted, the requests before it run again in a fresh one and commit,
        the failed one runs again alone (failing again, nothing of it is written; its
        exception is its result) and the rest follow in another transaction. No nested
        transactions: the write cache (``WriteCache``) then holds exactly what committed.
        """
        self._check_writable()  # a closed or read-only store raises: the slots are the fns'
        out: list[tuple[bool, Any]] = []
        budget = max_bytes
        while len(out) < len(fns):
            rest = fns[len(out) :]
            if len(rest) == 1:  # one request: its own exception is its result
                try:
                    out.append((True, self.write(rest[0])))
                except Exception as exc:
                    out.append((False, exc))
                break
            results, written = self._group_once(rest, budget)
            out += results
            budget -= written
            if budget <= 0:
                break
        return out

    def _group_once(
        self, fns: Sequence[Callable[[LmdbTxn], Any]], max_bytes: int
    ) -> tuple[list[tuple[bool, Any]], int]:
        """Commit the longest prefix of ``fns`` that succeeds (or report the first's failure).

        Returns the results and the bytes written; shorter than ``fns`` when a request failed
        (the caller runs it again first) or the byte cap was reached.
        """
        limit = [len(fns)]
        written = [0]

        def body(txn: Any) -> list[tuple[bool, Any]] | _Again:
            wrapper = LmdbTxn(txn, self._dbs, self._cache)  # one wrapper for the group
            results, failure = self._run_group(wrapper, fns[: limit[0]], max_bytes)
            if failure is None:
                written[0] = wrapper.written
                return results
            if not results:  # the first request failed: report it, write nothing
                raise _Failed(failure)
            limit[0] = len(results)  # rerun the requests before the failed one, commit them
            return _AGAIN

        try:
            return self._transact(body), written[0]
        except _Failed as failed:
            return [(False, failed.exc)], 0

    def _transact(self, body: Callable[[Any], T | _Again]) -> T:
        """Run ``body`` in a write transaction and commit it.

        The one place that handles LMDB's write failures: a full map grows (with no
        transaction open) and ``body`` runs again, another process's growth is adopted,
        ``_AGAIN`` aborts and reruns, any other LMDB error becomes a ``StoreError``; the commit
        hook runs after each commit.
        """
        gate = self._gate
        while True:
            txn = self._begin(write=True)
            if txn is None:
                continue
            full = False
            try:
                txn_id = txn.id()
                self._cache.begin(txn_id)
                result = body(txn)
                if isinstance(result, _Again):
                    txn.abort()
                    continue
                txn.commit()
                self._cache.committed(txn_id)
                if self.on_commit is not None:
                    self.on_commit()
                return result
            except lmdb.MapFullError:
                txn.abort()
                full = True
            except lmdb.Error as exc:
                txn.abort()
                log.error("lmdb_write_failed", path=self.path, error=str(exc))
                raise StoreError(f"store {self.path}: write failed: {exc}") from exc
            except BaseException as exc:
                txn.abort()
                # an LMDB error raised under a projector (wrapped as ProjectionError) is still
                # the storage's: grow the map, or report a store error - never blame the projector
                cause = _lmdb_cause(exc)
                if isinstance(cause, lmdb.MapFullError):
                    full = True
                elif cause is not None:
                    log.error("lmdb_write_failed", path=self.path, error=str(cause))
                    raise StoreError(f"store {self.path}: write failed: {cause}") from cause
                else:
                    raise
            finally:
                gate.leave()
            if full:
                self._grow()

    @staticmethod
    def _run_group(
        wrapper: LmdbTxn, fns: Sequence[Callable[[LmdbTxn], Any]], max_bytes: int
    ) -> tuple[list[tuple[bool, Any]], Exception | None]:
        """Run ``fns`` until the byte cap; (results, the exception that stopped them or None).

        A storage error (LMDB's own, even raised under a projector) propagates: the
        transaction fails as a whole (a full map grows and the group reruns).
        """
        results: list[tuple[bool, Any]] = []
        for fn in fns:
            try:
                result = fn(wrapper)
            except lmdb.Error:
                raise  # the storage's own failure (MapFullError: grow and rerun the group)
            except Exception as exc:
                cause = _lmdb_cause(exc)
                if cause is not None:
                    raise cause from exc  # never blame the request for the storage
                return results, exc
            results.append((True, result))
            if wrapper.written >= max_bytes:
                break
        return results, None

    def _check_readers_now_and_then(self) -> None:
        shared = self._shared
        assert shared is not None
        now = time.monotonic()
        if now >= shared.next_reader_check:
            shared.next_reader_check = now + READER_CHECK_INTERVAL
            self.clear_stale_readers()

    def clear_stale_readers(self) -> int:
        """Free the reader slots of processes that died holding a read transaction."""
        try:
            cleared = int(self._env.reader_check())
        except lmdb.Error as exc:
            raise StoreError(f"store {self.path}: cannot check the reader table: {exc}") from exc
        if cleared:
            log.warning("stale_readers_cleared", path=self.path, slots=cleared)
        return cleared

    def _adopt_map_size(self) -> None:
        self._gate.enter_exclusive()
        try:
            self._env.set_mapsize(0)  # take the size another process grew the map to
        except lmdb.Error as exc:
            raise StoreError(f"store {self.path}: cannot adopt the new map size: {exc}") from exc
        finally:
            self._gate.leave_exclusive()

    def _grow(self) -> None:
        self._gate.enter_exclusive()
        try:
            if self.clear_stale_readers():
                return  # dead readers pinned old pages: retry before growing the map
            current = int(self._env.info()["map_size"])
            if current >= self._max_map_size:
                log.error("store_full", path=self.path, map_size=current)
                raise StoreFullError(
                    f"store {self.path} is full: it reached max_map_size={self._max_map_size} "
                    "bytes; nothing of the failed write was kept - reopen the store with a "
                    "larger max_map_size (RunStore.open(path, max_map_size=...)). Deleting runs "
                    "may need free space too (LMDB copies pages on write): if it fails, raise "
                    "the cap first, then delete; freed pages are reused before the file grows"
                )
            new = min(current * 2, self._max_map_size)
            self._env.set_mapsize(new)
            log.info("map_grown", path=self.path, old_size=current, new_size=new)
        except lmdb.Error as exc:
            raise StoreError(f"store {self.path}: cannot grow the map: {exc}") from exc
        finally:
            self._gate.leave_exclusive()

    # -- misc ---------------------------------------------------------------------------
    def flush(self) -> None:
        self._check()
        try:
            self._env.sync(True)
        except lmdb.Error as exc:
            raise StoreError(f"store {self.path}: flush failed: {exc}") from exc

    def make_wakeup(self) -> Wakeup:
        return Wakeup(self.path, readonly=self.readonly)

    def health_check(self) -> None:
        self._check()
        try:
            self._env.reader_check()
        except lmdb.Error as exc:
            raise StoreError(f"store {self.path} is unhealthy: {exc}") from exc
        self.read(lambda txn: txn.get("meta", b"format"))

    def info(self) -> dict[str, int]:
        """Map size, used bytes and reader slots (for stats and tests)."""
        self._check()
        info = self._env.info()
        stat = self._env.stat()
        try:
            # the bytes on disk: the file is sparse, extended to the map size (MDB_WRITEMAP)
            file_bytes = os.stat(os.path.join(str(self.path), "data.mdb")).st_blocks * 512
        except OSError:
            file_bytes = 0
        return {
            "map_size": int(info["map_size"]),
            "used_bytes": int((info["last_pgno"] + 1) * stat["psize"]),
            "file_bytes": file_bytes,
            "max_readers": int(info["max_readers"]),
            "num_readers": int(info["num_readers"]),
        }

    def close(self) -> None:
        shared = self._shared
        if shared is None:
            return
        self._shared = None
        _live.discard(self)
        if self._forked:
            return  # never touch the parent's environment from a child
        with _registry_lock:
            shared.refs -= 1
            if shared.refs > 0:
                return
            _registry.pop(shared.realpath, None)
        shared.gate.enter_exclusive()
        try:
            shared.env.close()
        finally:
            shared.open_lock.release()  # after the close: then nothing of ours maps the file
            shared.gate.leave_exclusive()
        log.info("store_closed", path=shared.realpath)
