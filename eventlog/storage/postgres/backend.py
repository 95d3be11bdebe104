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

This module holds the backend class (transactions, group commit, the writer token); the
key-value transaction is :mod:`eventlog.storage.postgres.txn`, its process cache
:mod:`eventlog.storage.postgres.cache`, the connection pool and driver errors
:mod:`eventlog.storage.postgres.connection`.
"""

from __future__ import annotations

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
from eventlog.storage.postgres.cache import Cache, Tails
from eventlog.storage.postgres.connection import driver_cause, open_pool, rollback
from eventlog.storage.postgres.schema import applied_version, lock_key, migrate
from eventlog.storage.postgres.txn import NeedsSnapshot, PgTxn, Queries, literal
from eventlog.storage.postgres.wakeup import PgWakeup

__all__ = ["PostgresBackend"]

T = TypeVar("T")


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
        self._queries = {name: Queries(self.schema, name) for name in TABLES}
        self._cache = Cache()
        self._write_lock = threading.Lock()
        self._token = b"\x00"  # the writer token this backend committed last
        self._begin = (
            f"BEGIN; SELECT pg_advisory_xact_lock({lock_key(self.schema, 'write')}); "
            f'SELECT token FROM "{self.schema}".eventlog_writer WHERE id = 1; '
            f'SELECT k FROM "{self.schema}".positions ORDER BY k DESC LIMIT 1'
        ).encode()
        writer = sql.Identifier(self.schema, "eventlog_writer").as_string(None).encode()
        self._set_token = b"UPDATE " + writer + b" SET token = %TOKEN% WHERE id = 1;"
        self._keep_token = b"UPDATE " + writer + b" SET token = token WHERE id = 1"
        self._notify = f"SELECT pg_notify('eventlog_{self.schema}', ''); COMMIT".encode()
        self.channel = f"eventlog_{self.schema}"
        self.application_name = f"eventlog:{self.schema}"
        self._pool = open_pool(config, self.application_name, self.path)
        try:
            self._prepare_schema()
        except BaseException:
            self._pool.close()
            raise

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

    # -- connections ---------------------------------------------------------------------
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
            cause = driver_cause(exc)
            if cause is not None:
                raise self._fail(what, cause) from cause
            raise

    @property
    def pool_size(self) -> int:
        """The most connections this backend opens."""
        return self._config.pool_size

    def run_sql(self, fn: Callable[[psycopg.Connection[Any]], T], what: str) -> T:
        """Run ``fn`` on a pooled connection (autocommit; driver errors become ``StoreError``).

        For derived tables beside the store's own (the pgvector index of embeddings).
        """
        self._check()
        with self._converting(what), self._connection() as conn:
            try:
                return fn(conn)
            finally:
                rollback(conn)

    def read(self, fn: Callable[[PgTxn], T]) -> T:
        """Run ``fn`` in one snapshot; a read of one page is one autocommit statement.

        The transaction begins lazily (see :class:`~eventlog.storage.postgres.txn.PgTxn`):
        ``BEGIN`` on its own, then prepared statements (measured faster here than sending
        ``BEGIN`` with an inlined first query, which is parsed and planned anew), unless
        ``fn`` starts with a page read, which then goes alone. A connection that died idle in
        the pool fails on the first statement: the read runs again on another.
        """
        self._check()
        attempts = self._config.pool_size + 1
        with self._converting("read"):
            for attempt in range(attempts):
                with self._connection() as conn:
                    txn = PgTxn(conn.cursor(binary=True), self._queries, None, single=True)
                    try:
                        return fn(txn)
                    except NeedsSnapshot:
                        pass  # it needs more than its one statement: again, in a snapshot
                    except psycopg.OperationalError:
                        if conn.closed and txn.sent <= 1 and attempt + 1 < attempts:
                            continue
                        raise
                    finally:
                        rollback(conn)
                    try:
                        return fn(PgTxn(conn.cursor(binary=True), self._queries, None))
                    finally:
                        rollback(conn)
        raise AssertionError("unreachable")  # pragma: no cover

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

    def write(self, fn: Callable[[PgTxn], T]) -> T:
        self._check_writable()
        return self._transact(lambda txn, cur: fn(txn))

    def write_group(
        self, fns: Sequence[Callable[[PgTxn], Any]], max_bytes: int
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
        txn: PgTxn,
        cur: psycopg.Cursor[Any],
        fns: Sequence[Callable[[PgTxn], Any]],
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
                if driver_cause(exc) is not None:
                    raise  # the storage's failure, not the request's
                if not savepoints:
                    raise _GroupFailed from exc
                cur.execute(b"ROLLBACK TO SAVEPOINT eventlog_request")
                txn.restore(mark)
                results.append((False, exc))
            if txn.written >= max_bytes:
                break
        return results

    def _transact(self, body: Callable[[PgTxn, psycopg.Cursor[Any]], T]) -> T:
        """One write transaction: lock, ``body``, then writes + token + notify + COMMIT."""
        committing = False
        try:
            # one write transaction at a time per backend object (the group committer's, an
            # async projector's, a consumer's ack): the server would serialize them anyway,
            # and the cache and token must never be seen half-updated by another thread.
            # Then a simple query (four statements, text results): BEGIN, the lock, the token
            # and the last position
            with self._write_lock, self._begun(self._begin, binary=False) as begin:
                begin.nextset()
                begin.nextset()
                row = begin.fetchone()
                token = None if row is None else bytes(row[0])
                begin.nextset()
                row = begin.fetchone()
                conn = begin.connection
                cur = conn.cursor(binary=True)
                if token != self._token:  # another writer committed: forget what we knew
                    self._cache.clear()
                    # the log's last position, read after the lock in the same round trip:
                    # every append asks for it
                    self._cache.tails["positions"] = tails = Tails()
                    tails.learn(None, None if row is None else bytes(row[0]))
                txn = PgTxn(cur, self._queries, self._cache)
                try:
                    result = body(txn, cur)
                    new_token = secrets.token_bytes(12)
                    committing = True
                    # one round trip: the writes, the token, the wake-up, the commit
                    conn.execute(
                        txn.commit_sql()
                        + self._set_token.replace(b"%TOKEN%", literal(new_token))
                        + self._notify,
                        prepare=False,
                    )
                except BaseException:
                    rollback(conn)
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
            cause = driver_cause(exc)
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
                rollback(cur.connection)  # only if the COMMIT was not reached

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

    def vacuum(self, *, full: bool = False) -> None:
        """``VACUUM (ANALYZE)`` every table of the store's schema (``eventlog compact``).

        Plain VACUUM makes dead rows' space reusable without blocking readers or writers;
        ``full=True`` rewrites each table to give the space back to the operating system,
        holding an ACCESS EXCLUSIVE lock on it meanwhile (readers and writers wait).
        """
        self._check()
        options = sql.SQL("FULL, ANALYZE" if full else "ANALYZE")
        with self._converting("vacuum"), self._connection() as conn:
            rows = conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relkind = 'r' ORDER BY c.relname",
                (self.schema,),
            ).fetchall()
            for (table,) in rows:
                conn.execute(
                    sql.SQL("VACUUM ({}) {}").format(options, sql.Identifier(self.schema, table))
                )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if os.getpid() == self._pid:
            self._pool.close()


class _GroupFailed(Exception):
    """A request of an optimistic group raised: rerun the group with savepoints."""
