"""The PostgreSQL schema of a store, managed by versioned migrations.

A store lives in one PostgreSQL schema (``eventlog`` unless told otherwise), so several stores
share a database. Each migration is a list of statements applied in one transaction (DDL is
transactional in PostgreSQL) under a transaction-scoped advisory lock, and recorded in the
schema's ``eventlog_migrations`` table; two processes migrating at once therefore apply each
migration once.

The layout is the engine's key-value interface (:data:`eventlog.storage.kv.TABLES`): one table
per KV table, ``(k bytea PRIMARY KEY, v bytea NOT NULL)``. ``bytea`` compares bytewise (memcmp, then
length), the same order as LMDB's keys, so every engine rule - dense positions, stream numbers,
index layouts - is the same code on both backends, and a store copies between them key for key.
One more table, ``eventlog_writer``, holds the token of the last committing writer (see
``eventlog.storage.postgres.backend``).

psycopg is imported by the functions that talk to the server, so that ``eventlog --version``
reads :data:`SCHEMA_VERSION` where the ``postgres`` extra is not installed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eventlog.errors import ConfigError, StoreError

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "DEFAULT_SCHEMA",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Migration",
    "applied_version",
    "check_schema_name",
    "drop_store_schema",
    "lock_key",
    "migrate",
    "schema_exists",
]

DEFAULT_SCHEMA = "eventlog"
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,47}")


@dataclass(frozen=True)
class Migration:
    """One step of the schema: its version, what it does, and its statements."""

    version: int
    description: str
    statements: tuple[str, ...]  # ``{schema}`` is replaced by the quoted schema name


#: The key-value tables of migration 1 (store format 3). Spelled out, not read from
#: eventlog.storage.kv.TABLES: a table added to the engine later needs a migration of its own
#: (tests/test_postgres.py checks that every KV table is created by some migration).
_FORMAT_3_TABLES = (
    "meta",
    "sessions",
    "runs",
    "session_runs",
    "streams",
    "stream_ids",
    "events",
    "positions",
    "event_ids",
    "client_requests",
    "projections",
    "projector_meta",
    "consumers",
    "stream_records",
    "stream_kinds",
)


def _kv_tables(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(
        f"CREATE TABLE {{schema}}.{name} (k bytea PRIMARY KEY, v bytea NOT NULL)" for name in names
    )


#: Every migration, in order. Never edit a released one: add the next.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "key-value tables of store format 3, and the writer token",
        (
            *_kv_tables(_FORMAT_3_TABLES),
            "CREATE TABLE {schema}.eventlog_writer (id int PRIMARY KEY, token bytea NOT NULL)",
            "INSERT INTO {schema}.eventlog_writer VALUES (1, '\\x00'::bytea)",
        ),
    ),
    Migration(2, "the blobs table of artifacts", _kv_tables(("blobs",))),
    Migration(3, "the forks table (fork bases and each stream's forks)", _kv_tables(("forks",))),
)
#: The schema version this eventlog creates and expects: its latest migration.
SCHEMA_VERSION = MIGRATIONS[-1].version


def check_schema_name(schema: str) -> str:
    """Return ``schema`` if it is a plain lowercase identifier, else raise ``ConfigError``."""
    if not isinstance(schema, str) or not _NAME.fullmatch(schema):
        raise ConfigError(
            f"invalid schema name {schema!r}: use 1-48 lowercase letters, digits or "
            "underscores, starting with a letter or underscore (for example 'eventlog_tenant1')"
        )
    return schema


def lock_key(schema: str, purpose: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``purpose`` in ``schema``."""
    digest = hashlib.blake2b(f"eventlog:{schema}:{purpose}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def applied_version(conn: psycopg.Connection[Any], schema: str) -> int | None:
    """The highest migration applied to ``schema`` (None: no store schema there)."""
    from psycopg import sql

    row = conn.execute(
        "SELECT to_regclass(%s) IS NOT NULL", (f'"{schema}".eventlog_migrations',)
    ).fetchone()
    if row is None or not row[0]:
        return None
    query = sql.SQL("SELECT coalesce(max(version), 0) FROM {}.eventlog_migrations").format(
        sql.Identifier(schema)
    )
    found = conn.execute(query).fetchone()
    return int(found[0]) if found is not None else 0


def migrate(
    conn: psycopg.Connection[Any],
    schema: str,
    *,
    migrations: tuple[Migration, ...] = MIGRATIONS,
    target: int | None = None,
) -> list[int]:
    """Apply the pending migrations to ``schema`` (up to ``target``); return the versions applied.

    ``conn`` must be in autocommit mode; the migrations run in one transaction of their own.
    """
    from psycopg import sql

    check_schema_name(schema)
    latest = migrations[-1].version if migrations else 0
    target = latest if target is None else target
    quoted = sql.Identifier(schema).as_string(conn)
    applied: list[int] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(schema, "migrate"),))
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}.eventlog_migrations (version int PRIMARY KEY, "
                "description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            ).format(sql.Identifier(schema))
        )
        current = applied_version(conn, schema) or 0
        if current > latest:
            raise StoreError(
                f"schema {schema!r} is at migration {current}, newer than this eventlog knows "
                f"({latest}); upgrade eventlog"
            )
        for step in migrations:
            if current < step.version <= target:
                for statement in step.statements:
                    conn.execute(statement.replace("{schema}", quoted).encode())
                conn.execute(
                    sql.SQL(
                        "INSERT INTO {}.eventlog_migrations (version, description) VALUES (%s, %s)"
                    ).format(sql.Identifier(schema)),
                    (step.version, step.description),
                )
                applied.append(step.version)
    return applied


def schema_exists(url: str) -> bool:
    """Whether the schema of the store at ``url`` exists (``StoreError`` if unreachable)."""
    import psycopg

    from eventlog.storage.config import PostgresConfig

    config = PostgresConfig.build(url=url)
    try:
        with psycopg.connect(
            config.conninfo, autocommit=True, connect_timeout=config.connect_timeout
        ) as conn:
            row = conn.execute(
                "SELECT 1 FROM pg_namespace WHERE nspname = %s", (config.schema_name,)
            ).fetchone()
    except psycopg.Error as exc:
        raise StoreError(f"cannot look up schema {config.schema_name!r}: {exc}") from exc
    return row is not None


def drop_store_schema(url: str) -> None:
    """Drop the schema of the store at ``url`` and everything in it (a failed import's).

    ``StoreError`` if the server cannot be reached.
    """
    import psycopg
    from psycopg import sql

    from eventlog.storage.config import PostgresConfig

    config = PostgresConfig.build(url=url)
    statement = sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
        sql.Identifier(config.schema_name)
    )
    try:
        with psycopg.connect(
            config.conninfo, autocommit=True, connect_timeout=config.connect_timeout
        ) as conn:
            conn.execute(statement)
    except psycopg.Error as exc:
        raise StoreError(f"cannot drop schema {config.schema_name!r}: {exc}") from exc
