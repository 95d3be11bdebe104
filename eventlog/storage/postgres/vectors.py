"""The pgvector index of a PostgreSQL store's embeddings: a derived table with its checkpoint.

``embedding_vectors (label bigint primary key, v vector(n))`` with an HNSW index
(``vector_cosine_ops``), and ``embedding_vectors_meta`` holding the log position the table
reflects. A catch-up locks the meta row, reads the changes after that position (the caller's
function, from the store's own tables in a fresh snapshot), writes them and the new position
in one transaction: crash safe, and processes that catch up at once take turns. Used only
when the server has the ``vector`` extension (``available``); otherwise search is exact.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import psycopg

from eventlog.storage.postgres.backend import PostgresBackend

__all__ = ["PgVectorIndex", "available"]

#: pgvector's HNSW search visits at most this many candidates (hnsw.ef_search's maximum)
MAX_CANDIDATES = 1000


def available(backend: PostgresBackend) -> bool:
    """Whether the server has the ``vector`` extension (created here when it can be)."""

    def probe(conn: psycopg.Connection[Any]) -> bool:
        row = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
        if row.fetchone() is None:
            return False
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except psycopg.Error:  # no privilege: usable only if someone created it
            conn.rollback()
            installed = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'")
            return installed.fetchone() is not None
        return True

    if (
        backend.readonly or backend.pool_size < 2
    ):  # a catch-up holds one connection, reads on another
        return False
    return backend.run_sql(probe, "pgvector check")


def _literal(vec: Any) -> str:
    return "[" + ",".join(repr(float(x)) for x in vec) + "]"


class PgVectorIndex:
    """The derived pgvector table of one store (the interface of the in-process indexes)."""

    kind = "pgvector"

    def __init__(self, backend: PostgresBackend, dimension: int) -> None:
        self.backend = backend
        self.dimension = dimension
        schema = backend.schema
        self.table = f'"{schema}".embedding_vectors'
        self.meta = f'"{schema}".embedding_vectors_meta'
        self.position = 0
        self.saved_position = 0
        self._count = 0

        def create(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction():
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {self.table} "
                    f"(label bigint PRIMARY KEY, v vector({int(dimension)}) NOT NULL)"
                )
                conn.execute(
                    f"CREATE INDEX IF NOT EXISTS embedding_vectors_hnsw ON {self.table} "
                    "USING hnsw (v vector_cosine_ops)"
                )
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {self.meta} "
                    "(id int PRIMARY KEY, position bigint NOT NULL)"
                )
                conn.execute(f"INSERT INTO {self.meta} VALUES (1, 0) ON CONFLICT (id) DO NOTHING")

        backend.run_sql(create, "pgvector index creation")
        self._refresh()

    def _refresh(self) -> None:
        def read(conn: psycopg.Connection[Any]) -> tuple[int, int]:
            position = conn.execute(f"SELECT position FROM {self.meta} WHERE id = 1").fetchone()
            count = conn.execute(f"SELECT count(*) FROM {self.table}").fetchone()
            return (position[0] if position else 0), (count[0] if count else 0)

        self.position, self._count = self.backend.run_sql(read, "pgvector index read")
        self.saved_position = self.position

    def __len__(self) -> int:
        return self._count

    def catch_up(self, changes_after: Callable[[int], tuple[int, Mapping[int, Any]]]) -> None:
        """Apply the changes after the table's checkpoint, under its lock."""

        def work(conn: psycopg.Connection[Any]) -> tuple[int, int]:
            with conn.transaction():
                row = conn.execute(
                    f"SELECT position FROM {self.meta} WHERE id = 1 FOR UPDATE"
                ).fetchone()
                after = row[0] if row else 0
                position, items = changes_after(after)
                if position > after:
                    self._write(conn, items)
                    conn.execute(f"UPDATE {self.meta} SET position = %s WHERE id = 1", (position,))
                count = conn.execute(f"SELECT count(*) FROM {self.table}").fetchone()
                return max(position, after), (count[0] if count else 0)

        self.position, self._count = self.backend.run_sql(work, "pgvector index catch-up")
        self.saved_position = self.position

    def apply(self, changes: tuple[int, Mapping[int, Any]]) -> None:
        """Drop or replace labels (stale ones a search found); the checkpoint stays."""

        def work(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction():
                self._write(conn, changes[1])

        self.backend.run_sql(work, "pgvector index update")
        self._refresh()

    def _write(self, conn: psycopg.Connection[Any], items: Mapping[int, Any]) -> None:
        gone = [label for label, vec in items.items() if vec is None]
        live = [(label, _literal(vec)) for label, vec in items.items() if vec is not None]
        with conn.cursor() as cur:
            if gone:
                cur.execute(f"DELETE FROM {self.table} WHERE label = ANY(%s)", (gone,))
            if live:
                cur.executemany(
                    f"INSERT INTO {self.table} (label, v) VALUES (%s, %s::vector) "
                    "ON CONFLICT (label) DO UPDATE SET v = EXCLUDED.v",
                    live,
                )

    def search(self, query: Any, k: int) -> list[int]:
        """About the ``k`` nearest labels by cosine distance (at most 1000), best first."""
        want = min(k, MAX_CANDIDATES)

        def work(conn: psycopg.Connection[Any]) -> list[int]:
            with conn.transaction():
                conn.execute(f"SET LOCAL hnsw.ef_search = {max(40, want)}")
                rows = conn.execute(
                    f"SELECT label FROM {self.table} ORDER BY v <=> %s::vector LIMIT %s",
                    (_literal(query), want),
                ).fetchall()
            return [int(r[0]) for r in rows]

        return self.backend.run_sql(work, "pgvector search")

    def labels(self) -> set[int]:
        """Every label in the table (for ``verify``)."""

        def work(conn: psycopg.Connection[Any]) -> set[int]:
            return {int(r[0]) for r in conn.execute(f"SELECT label FROM {self.table}")}

        return self.backend.run_sql(work, "pgvector index read")
