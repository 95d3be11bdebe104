"""Raw psycopg: the server's own limit for the PostgreSQL rows, and a round-trip counter.

:class:`RawPg` is what the limit peer does - the least a client can ask of the server for the
same durable work: one ``INSERT`` of the event's encoded bytes per event, each in its own
transaction (an autocommit statement: one round trip, one WAL flush); a batch is one multi-row
``INSERT`` (``unnest`` of two arrays, the shape the store's backend uses) in one transaction; a
replay is one ``SELECT`` of the run's rows; a listing one indexed ``SELECT ... LIMIT 100``. The
table is the store's own layout, ``(k bytea PRIMARY KEY, v bytea NOT NULL)``, keyed by
``run_id + seq`` (as the raw LMDB limit is).

:func:`count_trips` counts, for a block of calls in this process, the queries every psycopg
connection sent and the round trips it waited for (a query outside a pipeline, or a pipeline's
sync), so a row can say how many each peer spends per call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

__all__ = ["RawPg", "Trips", "count_trips", "trips_per_call"]


class RawPg:
    """One connection (autocommit) and one ``(k, v)`` table in ``schema``."""

    def __init__(self, url: str, schema: str, table: str = "events") -> None:
        from benchmarks.pg import connect

        self.conn: psycopg.Connection[Any] = connect()
        self.cur = self.conn.cursor(binary=True)
        t = sql.Identifier(schema, table)
        self.conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        self.conn.execute(
            sql.SQL("CREATE TABLE IF NOT EXISTS {} (k bytea PRIMARY KEY, v bytea NOT NULL)").format(
                t
            )
        )
        self._one = sql.SQL("INSERT INTO {} (k, v) VALUES (%b, %b)").format(t).as_bytes(self.conn)
        self._many = (
            sql.SQL("INSERT INTO {} (k, v) SELECT * FROM unnest(%b::bytea[], %b::bytea[])")
            .format(t)
            .as_bytes(self.conn)
        )
        self._page = (
            sql.SQL("SELECT k, v FROM {} WHERE k > %b ORDER BY k LIMIT %b")
            .format(t)
            .as_bytes(self.conn)
        )
        self._range = (
            sql.SQL("SELECT v FROM {} WHERE k >= %b AND k < %b ORDER BY k")
            .format(t)
            .as_bytes(self.conn)
        )

    def page(self, after: bytes, n: int) -> list[tuple[bytes, bytes]]:
        """The first ``n`` rows with keys after ``after``, in key order (one ``SELECT``)."""
        rows = self.cur.execute(self._page, (after, n), prepare=True).fetchall()
        return [(r[0], r[1]) for r in rows]

    def insert(self, key: bytes, value: bytes) -> None:
        """One row, one transaction."""
        self.cur.execute(self._one, (key, value), prepare=True)

    def insert_many(self, keys: Sequence[bytes], values: Sequence[bytes]) -> None:
        """One multi-row ``INSERT``, one transaction."""
        self.cur.execute(self._many, (list(keys), list(values)), prepare=True)

    def values(self, start: bytes, stop: bytes) -> list[bytes]:
        """The values of the keys in ``[start, stop)`` in key order (one ``SELECT``)."""
        rows = self.cur.execute(self._range, (start, stop), prepare=True).fetchall()
        return [r[0] for r in rows]

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


class Trips:
    """Queries sent and round trips waited for, by every psycopg connection of the process."""

    def __init__(self) -> None:
        self.queries = 0
        self.round_trips = 0
        #: the store's write transactions (its ``BEGIN; SELECT pg_advisory_xact_lock...``)
        self.store_writes = 0
        self.local = threading.local()


@contextmanager
def count_trips() -> Iterator[Trips]:
    """Count psycopg's queries and round trips while the block runs (patches psycopg)."""
    trips = Trips()
    cursor_execute = psycopg.Cursor.execute
    cursor_executemany = psycopg.Cursor.executemany
    conn_pipeline = psycopg.Connection.pipeline
    pipeline_sync = psycopg.Pipeline.sync

    def depth() -> int:
        return int(getattr(trips.local, "depth", 0))

    def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        trips.queries += 1
        if depth() == 0:
            trips.round_trips += 1
        if isinstance(query, bytes) and query.startswith(b"BEGIN; SELECT pg_advisory_xact_lock"):
            trips.store_writes += 1
        return cursor_execute(self, query, *args, **kwargs)

    def executemany(self: Any, query: Any, params_seq: Any, **kwargs: Any) -> Any:
        params = list(params_seq)
        trips.queries += len(params)
        if depth() == 0:
            trips.round_trips += 1
        return cursor_executemany(self, query, params, **kwargs)

    @contextmanager
    def pipeline(self: Any) -> Iterator[Any]:
        with conn_pipeline(self) as p:
            trips.local.depth = depth() + 1
            try:
                yield p
            finally:
                trips.local.depth = depth() - 1
        if depth() == 0:
            trips.round_trips += 1  # the sync at the end of the outermost pipeline

    def sync(self: Any) -> None:
        trips.round_trips += 1
        pipeline_sync(self)

    patches: list[tuple[Any, str, Any, Any]] = [
        (psycopg.Cursor, "execute", execute, cursor_execute),
        (psycopg.Cursor, "executemany", executemany, cursor_executemany),
        (psycopg.Connection, "pipeline", pipeline, conn_pipeline),
        (psycopg.Pipeline, "sync", sync, pipeline_sync),
    ]
    for owner, name, new, _ in patches:
        setattr(owner, name, new)
    try:
        yield trips
    finally:
        for owner, name, _, old in patches:
            setattr(owner, name, old)


def trips_per_call(call: Callable[[int], object], calls: int = 5) -> dict[str, float]:
    """``queries_per_call`` and ``trips_per_call`` of ``calls`` more (untimed) calls."""
    with count_trips() as trips:
        for i in range(calls):
            call(i)
    return {"queries_per_call": trips.queries / calls, "trips_per_call": trips.round_trips / calls}
