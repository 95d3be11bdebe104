"""The PostgreSQL server the PostgreSQL rows run on: reachability, a schema per peer, cleanup.

The server is ``EVENTLOG_BENCH_POSTGRES`` (else ``EVENTLOG_TEST_POSTGRES``, else the local one
with trust auth, database ``test``). Without a reachable server the PostgreSQL workloads are
skipped with a one-line reason, unless ``EVENTLOG_REQUIRE_POSTGRES=1``, which makes the run
fail instead (as the tests do).

Every peer of every round works in schemas of its own: the runner puts a prefix unique to the
job in the worker's environment (:data:`PREFIX_ENV`), :func:`schema_for` derives one schema per
store from it, and the runner drops every schema with the job's prefix once the worker has
exited (:func:`drop_job_schemas`), so nothing is left on the server even if a worker is killed.
"""

from __future__ import annotations

import functools
import hashlib
import os
from typing import Any

__all__ = [
    "PREFIX_ENV",
    "URL",
    "connect",
    "create_schema",
    "drop_job_schemas",
    "job_prefix",
    "schema_for",
    "server_version",
    "skip_reason",
    "store_url",
]

URL = os.environ.get("EVENTLOG_BENCH_POSTGRES") or os.environ.get(
    "EVENTLOG_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
#: the worker's environment variable holding its job's schema prefix
PREFIX_ENV = "EVENTLOG_BENCH_SCHEMA_PREFIX"


@functools.cache
def _unavailable() -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (the bench extra installs it: pip install -e '.[bench]')"
    try:
        import eventsourcing.postgres  # noqa: F401
    except ImportError as exc:
        return f"eventsourcing's PostgreSQL persistence cannot be imported ({exc})"
    try:
        with psycopg.connect(URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"no PostgreSQL at {URL}: {str(exc).strip().splitlines()[0]}"
    return None


def skip_reason() -> str | None:
    """Why the PostgreSQL rows cannot run here (None: they can).

    With ``EVENTLOG_REQUIRE_POSTGRES=1`` an unreachable server stops the run instead.
    """
    reason = _unavailable()
    if reason is not None and os.environ.get("EVENTLOG_REQUIRE_POSTGRES") == "1":
        raise SystemExit(f"EVENTLOG_REQUIRE_POSTGRES=1 but {reason}")
    return reason


def job_prefix(workdir: str) -> str:
    """The schema prefix of the job whose data directory is ``workdir``."""
    return "eb_" + hashlib.blake2b(os.path.abspath(workdir).encode(), digest_size=6).hexdigest()


def schema_for(path: str) -> str:
    """The schema of the store at ``path`` (a directory under the job's workdir)."""
    prefix = os.environ.get(PREFIX_ENV) or job_prefix(os.path.dirname(path))
    digest = hashlib.blake2b(os.path.abspath(path).encode(), digest_size=4).hexdigest()
    return f"{prefix}_{digest}"


def store_url(schema: str) -> str:
    """The store URL of ``schema`` on the benchmark server."""
    return f"{URL}{'&' if '?' in URL else '?'}schema={schema}"


def connect() -> Any:
    """An autocommit connection to the benchmark server (durable: ``synchronous_commit=on``)."""
    import psycopg

    conn = psycopg.connect(URL, autocommit=True)
    row = conn.execute("SHOW synchronous_commit").fetchone()
    if row is None or row[0] != "on":
        conn.close()
        raise RuntimeError(f"the server's synchronous_commit is {row}: the rows need it on")
    return conn


def create_schema(schema: str) -> None:
    """Create ``schema`` (for the peers that do not create their own)."""
    from psycopg import sql

    with connect() as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))


def drop_job_schemas(workdir: str) -> list[str]:
    """Drop every schema of the job whose data directory is ``workdir``; their names."""
    if _unavailable() is not None:
        return []
    from psycopg import sql

    prefix = job_prefix(workdir)
    with connect() as conn:
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)", (prefix + "_",)
        ).fetchall()
        names = [str(r[0]) for r in rows]
        for name in names:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
    return names


def server_version() -> str:
    """``PostgreSQL 15.x`` and its durability settings, or why it is not known."""
    reason = _unavailable()
    if reason is not None:
        return f"not measured ({reason})"
    with connect() as conn:
        got = {}
        for name in ("server_version", "synchronous_commit", "fsync", "wal_sync_method"):
            row = conn.execute(f"SHOW {name}").fetchone()
            got[name] = "?" if row is None else str(row[0])
    return (
        f"PostgreSQL {got['server_version']} (synchronous_commit={got['synchronous_commit']}, "
        f"fsync={got['fsync']}, wal_sync_method={got['wal_sync_method']})"
    )
