"""``eventlog --version``: what a bug report needs to say about this installation."""

from __future__ import annotations

import platform

__all__ = ["version_report"]


def _psycopg() -> str:
    try:
        import psycopg
    except ModuleNotFoundError as exc:
        if exc.name != "psycopg":
            return f"unavailable ({exc})"
        return "not installed (PostgreSQL stores need it: pip install 'agent-eventlog[postgres]')"
    except ImportError as exc:  # installed, but its libpq wrapper cannot load
        return f"unavailable ({exc})"
    return str(psycopg.__version__)


def version_report() -> str:
    """The package version, the store formats it reads and writes, and the libraries under it.

    One ``name: value`` line each, after a first line ``eventlog VERSION``.
    """
    import lmdb

    import eventlog
    from eventlog.storage.keys import FORMAT_VERSION
    from eventlog.storage.postgres.schema import SCHEMA_VERSION

    lines = [
        f"eventlog {eventlog.__version__}",
        f"store format: {FORMAT_VERSION}",
        f"PostgreSQL schema: {SCHEMA_VERSION}",
        f"LMDB: {'.'.join(map(str, lmdb.version()))} (py-lmdb {lmdb.__version__})",
        f"psycopg: {_psycopg()}",
        f"Python: {platform.python_version()} ({platform.python_implementation()})",
    ]
    return "\n".join(lines)
