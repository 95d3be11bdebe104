"""Commands over whole stores and backends: ``migrate`` (PostgreSQL schema) and ``copy``.

Each command imports what it uses (psycopg, the copier, rich's progress bar) when it runs.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from eventlog.cli._common import DEFAULT_DB, DbOption, JsonFlag, die, fail_cleanly

__all__ = ["register"]


def migrate(
    db: DbOption = DEFAULT_DB,
    schema: Annotated[
        str | None, typer.Option(help="PostgreSQL schema (default: the URL's, else eventlog).")
    ] = None,
    status: Annotated[
        bool, typer.Option("--status", help="Only show the applied and pending migrations.")
    ] = False,
) -> None:
    """Create or upgrade the PostgreSQL schema of a store (versioned migrations).

    Safe to run from several machines at once: each migration is applied once.
    LMDB stores have no schema and need no migration.

    Example: eventlog migrate --db postgresql://postgres@127.0.0.1/test?schema=agents
    """
    from eventlog.storage.config import PostgresConfig, is_postgres_url

    if not is_postgres_url(db):
        typer.echo(f"{db} is an LMDB store: it has no schema and needs no migration")
        return
    with fail_cleanly():
        try:
            import psycopg

            from eventlog.storage.postgres.connection import connect_error
            from eventlog.storage.postgres.schema import MIGRATIONS, applied_version
            from eventlog.storage.postgres.schema import migrate as apply
        except ImportError:  # pragma: no cover - the postgres extra is missing
            die("PostgreSQL stores need psycopg 3: pip install 'agent-eventlog[postgres]'")
        config = PostgresConfig.build(url=db, schema=schema)
        try:
            conn = psycopg.connect(
                config.conninfo, autocommit=True, connect_timeout=config.connect_timeout
            )
        except psycopg.Error as exc:
            die(str(connect_error(exc, config.display, config.connect_timeout)))
        try:
            with conn:
                current = applied_version(conn, config.schema_name) or 0
                latest = MIGRATIONS[-1].version
                if status:
                    pending = [m for m in MIGRATIONS if m.version > current]
                    typer.echo(
                        f"schema {config.schema_name}: at migration {current} of {latest}"
                        + "".join(f"\n  pending {m.version}: {m.description}" for m in pending)
                    )
                    return
                done = apply(conn, config.schema_name)
        except psycopg.Error as exc:
            die(f"cannot migrate {config.display}: {str(exc).strip()}")
    if done:
        typer.echo(
            f"schema {config.schema_name}: applied migration(s) {', '.join(map(str, done))}; "
            f"now at {latest}"
        )
    else:
        typer.echo(f"schema {config.schema_name}: up to date (migration {latest})")


def copy(
    source: Annotated[
        str, typer.Option("--from", help="The store to copy: a directory or a PostgreSQL URL.")
    ],
    destination: Annotated[
        str, typer.Option("--to", help="A new, empty store: a directory or a PostgreSQL URL.")
    ],
    json_out: JsonFlag = False,
) -> None:
    """Copy a whole store between backends (LMDB <-> PostgreSQL), then check it.

    Everything comes along: runs, sessions, events with their seq, position, time and id,
    views, idempotency keys and consumer positions. The source is read in one snapshot (it may
    keep serving writes). At the end every table's row count and a SHA-256 of all rows are
    compared; exit code 1 if they differ.

    Example: eventlog copy --from ./data --to postgresql://postgres@127.0.0.1/test?schema=agents
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from eventlog.tools.copy_store import copy_store

    with (
        fail_cleanly(),
        Progress(
            TextColumn("copying"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rows"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=False,
        ) as progress,
    ):
        task = progress.add_task("copy", total=None)

        def report(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        result = copy_store(source, destination, progress=report)
    if json_out:
        typer.echo(
            json.dumps(
                {
                    "rows": result.rows,
                    "total_rows": result.total_rows,
                    "bytes": result.bytes,
                    "sha256": result.checksum,
                    "seconds": round(result.seconds, 3),
                },
                indent=2,
            )
        )
        return
    events = result.rows.get("events", 0)
    typer.echo(
        f"copied {result.total_rows:,} rows ({events:,} events, {result.bytes:,} bytes) in "
        f"{result.seconds:.1f} s; counts and sha256 {result.checksum[:16]}… match"
    )


def register(app: typer.Typer) -> None:
    """Add the store-wide backend commands to ``app``."""
    app.command()(migrate)
    app.command()(copy)
