"""The PostgreSQL backend: the engine's key-value interface on a shared server.

The engine is the same code as on LMDB: this module maps :class:`eventlog.storage.kv.KVTxn` onto SQL
over the tables of :mod:`eventlog.storage.postgres.schema`.

**One writer at a time, like LMDB.** Every write transaction starts with
``pg_advisory_xact_lock(<the schema's key>)`` in READ COMMITTED: writers on every machine take
turns, and each statement after the lock sees every transaction committed before it. Positions
(and stream numbers, seq numbers) are therefore assigned in commit order and dense. PostgreSQL
makes a transaction visible before it releases its locks, so a reader whose snapshot contains
position N also contains every position below N: a subscriber never skips an event that commits
later with a lower position (the high-water-mark bug class), because that cannot happen.
The price is serialized writers, which group commit offsets (many requests per transaction).

**Few round trips.** A write transaction sends ``BEGIN; lock; read the writer token`` as one
simple query, buffers its puts and deletes (a read sees them), and sends them at commit in one
simple query with the token update, ``pg_notify`` and ``COMMIT``. Values read or written are kept in
a process cache that is valid while the writer token read after the lock is the one this backend
wrote last - no other writer has committed since - so a process that appends alone reads almost
nothing back from the server. Read transactions run in REPEATABLE READ READ ONLY (one snapshot).

No ``psycopg`` exception escapes: they become :class:`~eventlog.errors.StoreError`.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import psycopg
import psycopg_pool
from psycopg import sql

from eventlog.errors import StoreClosedError, StoreError
from eventlog.storage.config import PostgresConfig
from eventlog.storage.kv import TABLES
from eventlog.storage.postgres import schema as pg_schema
from eventlog.storage.postgres.schema import applied_version, lock_key, migrate
from eventlog.storage.postgres.wakeup import PgWakeup

__all__ = ["PostgresBackend"]

T = TypeVar("T")

_PAGE = 512  # rows per page of a scan
_BEGIN_READ = b"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
_CACHE_MAX = 50_000  # cached keys before the cache is emptied (tens of MB at most)
_TAILS_MAX = 16_384  # known gaps per table before it is forgotten (~3 MB at most)
#: Tables whose values are not cached: events are written once and rarely read back in a write.
_UNCACHED = frozenset({"events", "positions"})


_UPSERT_TAIL = b" ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v;"


def _literal(value: bytes) -> bytes:
    """``value`` as a bytea literal (standard_conforming_strings is on: see configure)."""
    return b"'\\x" + value.hex().encode() + b"'::bytea"


def _max_of(
    key: bytes | None, pending: dict[bytes, bytes | None] | None, below: bytes | None
) -> bytes | None:
    """The greater of ``key`` and the buffered puts' keys below ``below``."""
    if pending:
        mine = [k for k, v in pending.items() if v is not None and (below is None or k < below)]
        if mine:
            top = max(mine)
            return top if key is None or top > key else key
    return key


def _cause(exc: BaseException) -> psycopg.Error | psycopg_pool.PoolTimeout | None:
    """The driver error behind ``exc`` (a projector may have wrapped it), or None."""
    current: BaseException | None = exc
    for _ in range(8):
        if current is None:
            return None
        if isinstance(current, psycopg.Error | psycopg_pool.PoolTimeout):
            return current
        current = current.__cause__ or current.__context__
    return None


class _Queries:
    """The SQL of one table, composed once."""

    def __init__(self, schema: str, table: str) -> None:
        name = sql.Identifier(schema, table).as_string(None)

        def q(text: str) -> bytes:
            return text.replace("{}", name).encode()

        self.get = q("SELECT v FROM {} WHERE k = %b")
        self.get_many = q("SELECT k, v FROM {} WHERE k = ANY(%b::bytea[])")
        self.upsert_head = q("INSERT INTO {} (k, v) VALUES ")
        self.delete_head = q("DELETE FROM {} WHERE k IN (")
        self.last = q("SELECT k FROM {} ORDER BY k DESC LIMIT 1")
        self.last_below = q("SELECT k FROM {} WHERE k < %b ORDER BY k DESC LIMIT 1")
        self.last_both = q(
            "SELECT (SELECT k FROM {} WHERE k < %b ORDER BY k DESC LIMIT 1), "
            "(SELECT k FROM {} ORDER BY k DESC LIMIT 1)"
        )
        self.fwd = q("SELECT k, v FROM {} WHERE k >= %b ORDER BY k LIMIT %b")
        self.fwd_after = q("SELECT k, v FROM {} WHERE k > %b ORDER BY k LIMIT %b")
        self.rev = q("SELECT k, v FROM {} WHERE k < %b ORDER BY k DESC LIMIT %b")
        self.rev_all = q("SELECT k, v FROM {} ORDER BY k DESC LIMIT %b")


class _Tails:
    """What is known of one table's keys, for ``last_key``: empty gaps between known keys.

    A gap ``(lo, hi)`` says: ``lo`` is a key (None: no key at all below ``hi``) and no key lies
    strictly between ``lo`` and ``hi`` (None: above ``lo``, i.e. ``lo`` is the greatest key,
    the tail). The largest key below ``b`` is then ``lo`` for any ``lo < b <= hi``. Gaps never
    overlap (they are intervals of the same key set), so a question or a put is one bisection;
    a put splits the gap it lands in. A new stream's head falls in the tail's gap, a stream that
    another put went past keeps its own gap: neither needs the server.
    """

    __slots__ = ("his", "known", "los", "none_hi", "tail")

    def __init__(self) -> None:
        self.los: list[bytes] = []  # sorted
        self.his: dict[bytes, bytes | None] = {}
        self.none_hi: bytes | _Unknown | None = _UNKNOWN  # the gap below the smallest key
        self.known = False  # the tail's gap is known
        self.tail: bytes | None = None

    def answer(self, below: bytes | None) -> tuple[bool, bytes | None]:
        if below is None:
            return self.known, self.tail
        los = self.los
        i = bisect.bisect_left(los, below) - 1
        if i >= 0:
            hi = self.his[los[i]]
            return (True, los[i]) if hi is None or below <= hi else (False, None)
        none_hi = self.none_hi
        if not isinstance(none_hi, _Unknown) and (none_hi is None or below <= none_hi):
            return True, None
        return False, None

    def learn(self, below: bytes | None, key: bytes | None) -> None:
        """The server (and the buffered puts) said: the last key below ``below`` is ``key``."""
        if key is None:
            old = self.none_hi
            if isinstance(old, _Unknown) or (old is not None and (below is None or below > old)):
                self.none_hi = below
            if below is None:
                self.known, self.tail = True, None
            return
        if key not in self.his:
            if len(self.los) >= _TAILS_MAX:
                self.__init__()  # type: ignore[misc]  # start again: a bounded memory
            bisect.insort(self.los, key)
            self.his[key] = below
        else:
            old_hi = self.his[key]
            if old_hi is not None and (below is None or below > old_hi):
                self.his[key] = below
        if below is None:
            self.known, self.tail = True, key

    def put(self, key: bytes) -> None:
        """``key`` now exists: split the gap it fell into."""
        los = self.los
        i = bisect.bisect_left(los, key) - 1
        if i >= 0:
            lo = los[i]
            hi = self.his[lo]
            if hi is None or key < hi:
                self.his[lo] = key
                self.learn(hi, key)
            return
        none_hi = self.none_hi
        if not isinstance(none_hi, _Unknown) and (none_hi is None or key < none_hi):
            self.none_hi = key
            self.learn(none_hi, key)


class _Unknown:
    """Marks a gap bound that is not known."""


_UNKNOWN = _Unknown()


class _Cache:
    """Values and ``last_key`` answers known to be the server's committed state."""

    __slots__ = ("tails", "values")

    def __init__(self) -> None:
        self.values: dict[tuple[str, bytes], bytes | None] = {}
        self.tails: dict[str, _Tails] = {}

    def clear(self) -> None:
        self.values.clear()
        self.tails.clear()


class _Mark:
    """What a savepoint must restore of the client-side transaction state."""

    __slots__ = ("seen", "written")

    def __init__(self, seen: dict[tuple[str, bytes], bytes | None], written: int) -> None:
        self.seen = seen
        self.written = written


class _PgTxn:
    """One transaction: buffered writes, reads through the cache (write transactions only)."""

    __slots__ = (
        "_cache",
        "_cur",
        "_pending",
        "_q",
        "_seen",
        "_write",
        "written",
    )

    def __init__(
        self,
        cur: psycopg.Cursor[Any],
        queries: dict[str, _Queries],
        cache: _Cache | None,
    ) -> None:
        self._cur = cur
        self._q = queries
        self._write = cache is not None
        self._cache = cache if cache is not None else _Cache()
        self._pending: dict[str, dict[bytes, bytes | None]] = {}
        self._seen: dict[tuple[str, bytes], bytes | None] = {}  # read from the server
        self.written = 0

    # -- reads ---------------------------------------------------------------------------
    def _rows(self, query: bytes, params: tuple[object, ...] = ()) -> list[Any]:
        return self._cur.execute(query, params).fetchall()

    def get(self, table: str, key: bytes) -> bytes | None:
        pending = self._pending.get(table)
        if pending is not None and key in pending:
            return pending[key]
        ck = (table, key)
        seen = self._seen
        if ck in seen:
            return seen[ck]
        values = self._cache.values
        if ck in values:
            return values[ck]
        rows = self._rows(self._q[table].get, (key,))
        value = bytes(rows[0][0]) if rows else None
        if self._write and table not in _UNCACHED:
            seen[ck] = value
        return value

    def _writes(self, table: str) -> bytes:
        """The SQL of ``table``'s buffered writes (bytea literals), and forget them.

        Literals, not parameters: the whole commit then travels as one simple query - one
        round trip, no per-statement protocol overhead. Hex literals cannot inject anything.
        """
        pending = self._pending.pop(table, None)
        if not pending:
            return b""
        q = self._q[table]
        gone = [k for k, v in pending.items() if v is None]
        keep = [(k, v) for k, v in pending.items() if v is not None]
        parts = []
        if gone:
            parts.append(q.delete_head + b",".join(map(_literal, gone)) + b");")
        if keep:
            rows = b",".join(b"(" + _literal(k) + b"," + _literal(v) + b")" for k, v in keep)
            parts.append(q.upsert_head + rows + _UPSERT_TAIL)
        if table not in _UNCACHED:
            seen = self._seen
            for k, v in pending.items():
                seen[(table, k)] = v
        return b"".join(parts)

    def prefetch(self, table: str, keys: Sequence[bytes]) -> None:
        """Read the values of ``keys`` not known yet in one query (listings: one per page)."""
        if self._write and table in _UNCACHED:
            return  # what a write reads is merged into the cache, and these tables are not kept
        pending = self._pending.get(table) or {}
        seen, values = self._seen, self._cache.values
        wanted = list(
            {
                k: None
                for k in keys
                if k not in pending and (table, k) not in seen and (table, k) not in values
            }
        )
        if len(wanted) < 2:
            return
        found = dict(self._rows(self._q[table].get_many, (wanted,)))
        for k in wanted:
            v = found.get(k)
            seen[(table, k)] = None if v is None else bytes(v)

    def _flush(self, table: str) -> None:
        """Send ``table``'s buffered writes now (before a range read of it)."""
        statements = self._writes(table)
        if statements:  # a simple query (several statements): through a text cursor
            self._cur.connection.execute(statements, prepare=False)

    def commit_sql(self) -> bytes:
        """Every buffered write, as statements to send with the commit."""
        return b"".join([self._writes(table) for table in list(self._pending)])

    def _tails_of(self, table: str) -> _Tails:
        # a write transaction updates the cached answers in place (it holds the backend's
        # write lock); a failed transaction empties the whole cache, a rolled-back savepoint
        # the answers (see _Mark)
        tails = self._cache.tails.get(table)
        if tails is None:
            tails = self._cache.tails[table] = _Tails()
        return tails

    def last_key(self, table: str, below: bytes | None = None) -> bytes | None:
        if not self._write:
            return self._server_last(table, below)
        tails = self._tails_of(table)
        known, key = tails.answer(below)
        if known:
            return key
        pending = self._pending.get(table)
        if pending is not None and None in pending.values():
            self._flush(table)  # a delete may have removed the server's answer
            pending = None
        if below is not None and not tails.known:
            # learn the table's greatest key in the same round trip: it answers every later
            # question above it (a new stream's head) without asking the server again
            q = self._q[table]
            row = self._rows(q.last_both, (below,))[0]
            key = None if row[0] is None else bytes(row[0])
            tails.learn(None, _max_of(None if row[1] is None else bytes(row[1]), pending, None))
        else:
            key = self._server_last(table, below)
        key = _max_of(key, pending, below)  # the buffered puts count too
        tails.learn(below, key)
        return key

    def _server_last(self, table: str, below: bytes | None) -> bytes | None:
        q = self._q[table]
        rows = self._rows(q.last) if below is None else self._rows(q.last_below, (below,))
        return bytes(rows[0][0]) if rows else None

    def values(self, table: str, start: bytes, n: int) -> tuple[list[bytes], bytes | None]:
        if n <= 0:
            return [], None
        self._flush(table)
        rows = self._rows(self._q[table].fwd, (start, n))
        if not rows:
            return [], None
        return [bytes(v) for _, v in rows], bytes(rows[-1][0])

    def scan(
        self, table: str, start: bytes, stop: bytes | None = None, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        q = self._q[table]
        if not reverse:
            self._flush(table)
            rows = self._rows(q.fwd, (start, _PAGE))
            while rows:
                for k, v in rows:
                    key = bytes(k)
                    if stop is not None and key >= stop:
                        return
                    yield key, bytes(v)
                if len(rows) < _PAGE:
                    return
                self._flush(table)  # the caller may write while it iterates
                rows = self._rows(q.fwd_after, (key, _PAGE))
            return
        self._flush(table)
        rows = self._rows(q.rev_all, (_PAGE,)) if stop is None else self._rows(q.rev, (stop, _PAGE))
        while rows:
            for k, v in rows:
                key = bytes(k)
                if key < start:
                    return
                yield key, bytes(v)
            if len(rows) < _PAGE:
                return
            self._flush(table)
            rows = self._rows(q.rev, (key, _PAGE))

    # -- writes ------------------------------------------------------------------------
    def put(self, table: str, key: bytes, value: bytes, *, append: bool = False) -> None:
        if not self._write:
            raise StoreError("put in a read transaction: write in backend.write(fn) instead")
        if not key:  # LMDB cannot store one: a store here must stay copyable there
            raise StoreError(f"table {table}: an empty key cannot be stored (keys are 1+ bytes)")
        value = bytes(value)
        self.written += len(value)
        pending = self._pending.get(table)
        if pending is None:
            pending = self._pending[table] = {}
        pending[key] = value
        self._raise_tails(table, key)

    def put_many(
        self, table: str, items: list[tuple[bytes, bytes]], *, append: bool = False
    ) -> None:
        for key, value in items:
            self.put(table, key, value)

    def _raise_tails(self, table: str, key: bytes) -> None:
        """Keep the remembered ``last_key`` answers of ``table`` true after a put of ``key``."""
        tails = self._cache.tails.get(table)
        if tails is not None:
            tails.put(key)

    def delete(self, table: str, key: bytes) -> bool:
        existed = self.get(table, key) is not None
        self.discard(table, key)
        return existed

    def discard(self, table: str, key: bytes) -> None:
        if not self._write:
            raise StoreError("delete in a read transaction: write in backend.write(fn) instead")
        pending = self._pending.get(table)
        if pending is None:
            pending = self._pending[table] = {}
        pending[key] = None
        self._cache.tails[table] = _Tails()  # forget the answers (a delete may move them)

    # -- commit --------------------------------------------------------------------------
    def mark(self) -> _Mark:
        """What :meth:`restore` needs to undo the writes and reads after a savepoint."""
        return _Mark(dict(self._seen), self.written)

    def restore(self, mark: _Mark) -> None:
        """Forget what happened after ``mark`` (the server rolled back to its savepoint)."""
        self._pending.clear()
        self._seen = mark.seen
        self._cache.tails.clear()  # the failed request may have moved answers: forget them
        self.written = mark.written

    def merge_into_cache(self) -> None:
        """After a commit: what this transaction read and wrote is the committed state."""
        cache = self._cache
        if len(cache.values) > _CACHE_MAX:
            cache.values.clear()
        cache.values.update(self._seen)


class PostgresBackend:
    """A store in one schema of a PostgreSQL database."""

    remote = True  # every call is a round trip: the async API keeps them off the loop

    def __init__(self, config: PostgresConfig) -> None:
        self._config = config
        self.schema = config.schema_name
        self.readonly = config.readonly
        self.path: str | None = config.display
        self.on_commit: Callable[[], None] | None = None
        self._pid = os.getpid()
        self._closed = False
        self._queries = {name: _Queries(self.schema, name) for name in TABLES}
        self._cache = _Cache()
        self._write_lock = threading.Lock()
        self._token = b"\x00"  # the writer token this backend committed last
        self._begin = (
            f"BEGIN; SELECT pg_advisory_xact_lock({lock_key(self.schema, 'write')}); "
            f'SELECT token FROM "{self.schema}".eventlog_writer WHERE id = 1'
        ).encode()
        writer = sql.Identifier(self.schema, "eventlog_writer").as_string(None).encode()
        self._set_token = b"UPDATE " + writer + b" SET token = %TOKEN% WHERE id = 1;"
        self._keep_token = b"UPDATE " + writer + b" SET token = token WHERE id = 1"
        self._notify = f"SELECT pg_notify('eventlog_{self.schema}', ''); COMMIT".encode()
        self.channel = f"eventlog_{self.schema}"
        self.application_name = f"eventlog:{self.schema}"
        self._pool = self._open_pool()
        try:
            self._prepare_schema()
        except BaseException:
            self._pool.close()
            raise

    # -- connections ---------------------------------------------------------------------
    def _open_pool(self) -> psycopg_pool.ConnectionPool[Any]:
        config = self._config
        fast = config.durability == "fast"

        def configure(conn: psycopg.Connection[Any]) -> None:
            # bytea literals of the commit query rely on it (the default since PostgreSQL 9.1)
            conn.execute("SET standard_conforming_strings = on")
            if fast:  # commits return before the WAL is flushed (store.flush() waits for it)
                conn.execute("SET synchronous_commit = off")

        pool: psycopg_pool.ConnectionPool[Any] = psycopg_pool.ConnectionPool(
            config.conninfo,
            min_size=1,
            max_size=config.pool_size,
            kwargs={
                "autocommit": True,
                "connect_timeout": config.connect_timeout,
                # names the store in pg_stat_activity (unless the URL sets its own)
                "application_name": self.application_name,
            },
            configure=configure,
            open=False,
            name=f"eventlog:{self.schema}",
            timeout=config.connect_timeout + 5,
        )
        try:
            pool.open(wait=True, timeout=config.connect_timeout + 1)
        except psycopg_pool.PoolTimeout as exc:
            pool.close()
            raise StoreError(
                f"cannot connect to PostgreSQL at {self.path}: check that the server runs and "
                "the URL (user, host, port, database) is right"
            ) from exc
        return pool

    def _prepare_schema(self) -> None:
        config = self._config
        migrations = pg_schema.MIGRATIONS
        latest = migrations[-1].version
        with self._connection() as conn:
            version = applied_version(conn, self.schema)
            if version is None or version == 0:
                if config.readonly or not config.create:
                    raise StoreError(
                        f"no eventlog store in schema {self.schema!r} at {self.path}: create it "
                        "with `eventlog migrate --db URL` (or open it with create=True)"
                    )
                migrate(conn, self.schema, migrations=migrations)
            elif version < latest:
                if config.readonly or not config.migrate:
                    raise StoreError(
                        f"the store in schema {self.schema!r} is at migration {version}, this "
                        f"eventlog needs {latest}: run `eventlog migrate --db URL` (or open it "
                        "with migrate=True)"
                    )
                migrate(conn, self.schema, migrations=migrations)
            elif version > latest:
                raise StoreError(
                    f"the store in schema {self.schema!r} is at migration {version}, newer than "
                    f"this eventlog knows ({latest}); upgrade eventlog"
                )

    def _check(self) -> None:
        if self._closed:
            raise StoreClosedError(f"store {self.path} is closed; open it again with RunStore.open")
        if os.getpid() != self._pid:
            raise StoreError(
                f"store {self.path} was opened in process {self._pid} before os.fork(); open "
                "it again in this process (connections cannot be shared across a fork)"
            )

    def _connection(self) -> Any:
        try:
            return self._pool.connection()
        except psycopg_pool.PoolClosed as exc:
            raise StoreClosedError(f"store {self.path} is closed") from exc

    @contextlib.contextmanager
    def _begun(
        self, first: bytes, params: tuple[object, ...] = (), *, binary: bool
    ) -> Iterator[psycopg.Cursor[Any]]:
        """A cursor on a pooled connection that has run its ``first`` statement.

        A connection that died while idle in the pool (server restart, killed backend) fails
        on its first statement, before anything was done: it is dropped and another taken.
        """
        attempts = self._config.pool_size + 1
        for attempt in range(attempts):
            with self._connection() as conn:
                cur = conn.cursor(binary=binary)
                try:
                    cur.execute(first, params or None, prepare=None if params else False)
                except psycopg.OperationalError:
                    if conn.closed and attempt + 1 < attempts:
                        continue
                    raise
                yield cur
                return

    def _fail(self, what: str, exc: BaseException) -> StoreError:
        if isinstance(exc, psycopg_pool.PoolTimeout):
            return StoreError(
                f"store {self.path}: no connection to PostgreSQL within "
                f"{self._config.connect_timeout + 5} s for a {what}; check the server and "
                "pool_size"
            )
        if isinstance(exc, psycopg.OperationalError):
            return StoreError(
                f"store {self.path}: the connection to PostgreSQL failed during a {what}: "
                f"{str(exc).strip()}; check the server, then retry"
            )
        return StoreError(f"store {self.path}: {what} failed: {str(exc).strip()}")

    # -- transactions -------------------------------------------------------------------
    @contextlib.contextmanager
    def _converting(self, what: str) -> Iterator[None]:
        """Driver errors raised inside (also wrapped, by a projector) become ``StoreError``."""
        try:
            yield
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            raise self._fail(what, exc) from exc
        except StoreError:
            raise
        except BaseException as exc:
            cause = _cause(exc)
            if cause is not None:
                raise self._fail(what, cause) from cause
            raise

    def read(self, fn: Callable[[_PgTxn], T]) -> T:
        self._check()
        # BEGIN on its own, then prepared statements: measured faster here than sending
        # BEGIN with an inlined first query (a simple query is parsed and planned anew)
        with self._converting("read"), self._begun(_BEGIN_READ, binary=True) as cur:
            try:
                return fn(_PgTxn(cur, self._queries, None))
            finally:
                _rollback(cur.connection)

    def get(self, table: str, key: bytes) -> bytes | None:
        self._check()
        with (
            self._converting("read"),
            self._begun(self._queries[table].get, (key,), binary=True) as cur,
        ):
            row = cur.fetchone()
            return None if row is None else bytes(row[0])

    def _check_writable(self) -> None:
        self._check()
        if self.readonly:
            raise StoreError(
                f"store {self.path} is open read-only; open it without readonly=True to write"
            )

    def write(self, fn: Callable[[_PgTxn], T]) -> T:
        self._check_writable()
        return self._transact(lambda txn, cur: fn(txn))

    def write_group(
        self, fns: Sequence[Callable[[_PgTxn], Any]], max_bytes: int
    ) -> list[tuple[bool, Any]]:
        """Group commit's step (see kv.py): optimistic, rerun with savepoints on a failure."""
        self._check_writable()  # a closed or read-only store raises: the slots are the fns'
        if len(fns) == 1:
            try:
                return [(True, self.write(fns[0]))]
            except Exception as exc:
                return [(False, exc)]
        try:
            return self._transact(lambda txn, cur: self._run_group(txn, cur, fns, max_bytes))
        except _GroupFailed:
            return self._transact(
                lambda txn, cur: self._run_group(txn, cur, fns, max_bytes, savepoints=True)
            )

    def _run_group(
        self,
        txn: _PgTxn,
        cur: psycopg.Cursor[Any],
        fns: Sequence[Callable[[_PgTxn], Any]],
        max_bytes: int,
        *,
        savepoints: bool = False,
    ) -> list[tuple[bool, Any]]:
        results: list[tuple[bool, Any]] = []
        for fn in fns:
            if savepoints:
                cur.connection.execute(
                    txn.commit_sql() + b"SAVEPOINT eventlog_request", prepare=False
                )
                mark = txn.mark()
            try:
                results.append((True, fn(txn)))
            except Exception as exc:
                if _cause(exc) is not None:
                    raise  # the storage's failure, not the request's
                if not savepoints:
                    raise _GroupFailed from exc
                cur.execute(b"ROLLBACK TO SAVEPOINT eventlog_request")
                txn.restore(mark)
                results.append((False, exc))
            if txn.written >= max_bytes:
                break
        return results

    def _transact(self, body: Callable[[_PgTxn, psycopg.Cursor[Any]], T]) -> T:
        """One write transaction: lock, ``body``, then writes + token + notify + COMMIT."""
        committing = False
        try:
            # one write transaction at a time per backend object (the group committer's, an
            # async projector's, a consumer's ack): the server would serialize them anyway,
            # and the cache and token must never be seen half-updated by another thread.
            # Then a simple query (three statements, text results): BEGIN, the lock, the token
            with self._write_lock, self._begun(self._begin, binary=False) as begin:
                begin.nextset()
                begin.nextset()
                row = begin.fetchone()
                token = None if row is None else bytes(row[0])
                conn = begin.connection
                cur = conn.cursor(binary=True)
                if token != self._token:  # another writer committed: forget what we knew
                    self._cache.clear()
                txn = _PgTxn(cur, self._queries, self._cache)
                try:
                    result = body(txn, cur)
                    new_token = secrets.token_bytes(12)
                    committing = True
                    # one round trip: the writes, the token, the wake-up, the commit
                    conn.execute(
                        txn.commit_sql()
                        + self._set_token.replace(b"%TOKEN%", _literal(new_token))
                        + self._notify,
                        prepare=False,
                    )
                except BaseException:
                    _rollback(conn)
                    self._cache.clear()
                    self._token = b"\x00"
                    raise
                txn.merge_into_cache()
                self._token = new_token
        except _GroupFailed:
            raise
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            raise self._commit_failure(exc, committing) from exc
        except BaseException as exc:
            cause = _cause(exc)
            if cause is not None:
                raise self._commit_failure(cause, committing) from cause
            raise
        if self.on_commit is not None:
            self.on_commit()
        return result

    def _commit_failure(self, exc: BaseException, committing: bool) -> StoreError:
        if committing and isinstance(exc, psycopg.OperationalError):
            return StoreError(
                f"store {self.path}: the connection failed while committing, so whether the "
                f"write was kept is unknown ({str(exc).strip()}); read the run back, or retry "
                "with event ids (idempotency keys) so a retry cannot write twice"
            )
        return self._fail("write", exc)

    # -- the rest of the backend interface ------------------------------------------------
    def flush(self) -> None:
        """Wait until every commit of this backend's connections is durable (fast mode)."""
        self._check()
        if self._config.durability == "durable":
            return
        # a durable commit waits for the WAL up to its own record, so for every
        # asynchronous commit written before it; the UPDATE (the token is kept) gives the
        # commit a WAL record to wait for
        with self._converting("flush"), self._begun(b"BEGIN", binary=False) as cur:
            try:
                cur.execute(b"SET LOCAL synchronous_commit = on")
                cur.execute(self._keep_token)
                cur.execute(b"COMMIT")
            finally:
                _rollback(cur.connection)  # only if the COMMIT was not reached

    def health_check(self) -> None:
        self._check()
        with self._converting("health check"), self._begun(b"SELECT 1", binary=False):
            pass

    def make_wakeup(self) -> PgWakeup:
        """LISTEN on the schema's channel: the wake-up of subscribers on every machine."""
        return PgWakeup(self._config.conninfo, self.channel, self._config.connect_timeout)

    def info(self) -> dict[str, int]:
        """Bytes the store's tables take on the server, indexes and TOAST included."""
        self._check()
        with (
            self._converting("size query"),
            self._begun(
                b"SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                b"JOIN pg_namespace n ON n.oid = c.relnamespace "
                b"WHERE n.nspname = %s AND c.relkind = 'r'",
                (self.schema,),
                binary=False,
            ) as cur,
        ):
            row = cur.fetchone()
        size = int(row[0]) if row is not None else 0
        return {"map_size": 0, "used_bytes": size, "file_bytes": size}

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if os.getpid() == self._pid:
            self._pool.close()


def _rollback(conn: psycopg.Connection[Any]) -> None:
    """End the connection's open transaction, if any (the pool gets it back clean)."""
    if conn.closed or conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
        return
    try:
        conn.execute(b"ROLLBACK")
    except psycopg.Error:
        conn.close()  # the pool replaces a broken connection


class _GroupFailed(Exception):
    """A request of an optimistic group raised: rerun the group with savepoints."""
