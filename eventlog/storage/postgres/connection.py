"""PostgreSQL connections of a backend: the pool, rolling a connection back, driver errors.

:func:`open_pool` opens the pool every transaction takes a connection from; :func:`rollback`
hands a connection back clean; :func:`driver_cause` finds the ``psycopg`` error behind an
exception, so that :class:`eventlog.storage.postgres.backend.PostgresBackend` converts every
driver error into a :class:`~eventlog.errors.StoreError` at its boundary.
"""

from __future__ import annotations

from typing import Any

import psycopg
import psycopg_pool

from eventlog.errors import StoreError
from eventlog.storage.config import PostgresConfig

__all__ = ["connect_error", "driver_cause", "open_pool", "rollback"]


def driver_cause(exc: BaseException) -> psycopg.Error | psycopg_pool.PoolTimeout | None:
    """The driver error behind ``exc`` (a projector may have wrapped it), or None."""
    current: BaseException | None = exc
    for _ in range(8):
        if current is None:
            return None
        if isinstance(current, psycopg.Error | psycopg_pool.PoolTimeout):
            return current
        current = current.__cause__ or current.__context__
    return None


def _cause(exc: psycopg.Error, timeout: int) -> str:
    """The server's or the network's reason in ``exc``, one line, without libpq's framing."""
    text = str(exc).strip()
    if "timeout expired" in text:
        return (
            f"no answer within {timeout} s (the connect timeout: set connect_timeout=N in the "
            "URL or EVENTLOG_CONNECT_TIMEOUT)"
        )
    first = text.splitlines()[0] if text else type(exc).__name__
    reason = first.rsplit(" failed: ", 1)[-1]
    for prefix in ("FATAL:", "ERROR:", "connection failed:"):
        reason = reason.removeprefix(prefix).strip()
    if reason.lower() == "connection refused":
        return "connection refused (is the server running on that host and port?)"
    return reason


def connect_error(exc: psycopg.Error, display: str | None, timeout: int) -> StoreError:
    """One line naming the store and the real cause, e.g. ``database "x" does not exist``."""
    return StoreError(f"cannot connect to PostgreSQL at {display}: {_cause(exc, timeout)}")


def open_pool(
    config: PostgresConfig, application_name: str, display: str | None
) -> psycopg_pool.ConnectionPool[Any]:
    """The store's connection pool, opened (``StoreError`` if the server cannot be reached).

    Every connection is in autocommit (the backend sends its own BEGIN), names the store in
    ``pg_stat_activity`` and, in fast mode, commits without waiting for the WAL flush. One
    connection is tried first, directly: a wrong database, user, host or port fails at once
    with the server's reason (the pool would retry until its timeout, logging each attempt).
    """
    fast = config.durability == "fast"
    kwargs: dict[str, Any] = {
        "autocommit": True,
        "connect_timeout": config.connect_timeout,
        # names the store in pg_stat_activity (unless the URL sets its own)
        "application_name": application_name,
    }
    try:
        psycopg.connect(config.conninfo, **kwargs).close()
    except psycopg.Error as exc:
        raise connect_error(exc, display, config.connect_timeout) from exc

    def configure(conn: psycopg.Connection[Any]) -> None:
        # bytea literals of the commit query rely on it (the default since PostgreSQL 9.1)
        conn.execute("SET standard_conforming_strings = on")
        if fast:  # commits return before the WAL is flushed (store.flush() waits for it)
            conn.execute("SET synchronous_commit = off")

    pool: psycopg_pool.ConnectionPool[Any] = psycopg_pool.ConnectionPool(
        config.conninfo,
        min_size=1,
        max_size=config.pool_size,
        kwargs=kwargs,
        configure=configure,
        open=False,
        name=application_name,
        timeout=config.connect_timeout + 5,
    )
    try:
        pool.open(wait=True, timeout=config.connect_timeout + 1)
    except psycopg_pool.PoolTimeout as exc:
        pool.close()
        raise StoreError(
            f"cannot connect to PostgreSQL at {display}: check that the server runs and "
            "the URL (user, host, port, database) is right"
        ) from exc
    return pool


def rollback(conn: psycopg.Connection[Any]) -> None:
    """End the connection's open transaction, if any (the pool gets it back clean)."""
    if conn.closed or conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
        return
    try:
        conn.execute(b"ROLLBACK")
    except psycopg.Error:
        conn.close()  # the pool replaces a broken connection
