"""Test support for the PostgreSQL backend: the server, a schema per test, cleanup.

Tests talk to a real server (``EVENTLOG_TEST_POSTGRES``, default the local one with trust
auth, database ``test``). Without a reachable server they skip with a one-line reason,
unless ``EVENTLOG_REQUIRE_POSTGRES=1`` (set by ``.ci/run``), which makes them fail instead.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ADMIN_URL = os.environ.get("EVENTLOG_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@functools.cache
def unavailable() -> str | None:
    """Why the PostgreSQL tests cannot run here (None: they can)."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'agent-eventlog[postgres]')"
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"no PostgreSQL at {ADMIN_URL}: {str(exc).strip().splitlines()[0]}"
    return None


def require_server() -> None:
    """Skip (or fail, with EVENTLOG_REQUIRE_POSTGRES=1) when no server is reachable."""
    reason = unavailable()
    if reason is None:
        return
    if os.environ.get("EVENTLOG_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"EVENTLOG_REQUIRE_POSTGRES=1 but {reason}")
    pytest.skip(reason)


def schema_for(path: Path | str) -> str:
    """A schema name of its own for the test directory ``path``."""
    return "t_" + hashlib.blake2b(str(path).encode(), digest_size=10).hexdigest()


_used: set[str] = set()  # schemas handed out since the last cleanup


def url_for(path: Path | str) -> str:
    """The store URL of the test directory ``path`` (its own schema, dropped after the test)."""
    schema = schema_for(path)
    _used.add(schema)
    sep = "&" if "?" in ADMIN_URL else "?"
    return f"{ADMIN_URL}{sep}schema={schema}"


def drop_schema(schema: str) -> None:
    """Drop ``schema`` and everything in it (no error if absent)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def pg_schemas() -> Iterator[set[str]]:
    """Every schema that ``url_for`` hands out during the test is dropped after it."""
    require_server()
    yield _used
    for schema in sorted(_used):
        drop_schema(schema)
    _used.clear()


@contextmanager
def statements() -> Iterator[list[bytes]]:
    """The statements this thread sends while the block runs (their first 60 bytes)."""
    import psycopg

    sent: list[bytes] = []
    me = threading.get_ident()
    original = psycopg.Cursor.execute

    def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() == me:
            text = query if isinstance(query, bytes) else str(query).encode()
            sent.append(text[:60])
        return original(self, query, *args, **kwargs)

    psycopg.Cursor.execute = execute  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        psycopg.Cursor.execute = original  # type: ignore[method-assign]
