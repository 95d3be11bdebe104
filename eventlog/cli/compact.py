"""``eventlog compact``: give a store's free space back (LMDB rewrite, PostgreSQL VACUUM).

A few lines over :func:`eventlog.tools.compact.compact_store`.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from eventlog.cli._common import DEFAULT_DB, DbOption, JsonFlag, fail_cleanly, to_builtins
from eventlog.cli.render import safe

__all__ = ["register"]


def _size(n: int) -> str:
    size = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if size < 1024 or unit == "GiB":
            return f"{size:.1f} {unit}"
    return f"{n} B"


def compact(
    db: DbOption = DEFAULT_DB,
    wait: Annotated[
        float,
        typer.Option(
            min=0,
            help="LMDB: wait up to SECONDS for other processes to close the store (default: "
            "refuse at once while any has it open).",
        ),
    ] = 0.0,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="PostgreSQL: VACUUM FULL (returns space to the OS; locks each table while "
            "it is rewritten).",
        ),
    ] = False,
    json_out: JsonFlag = False,
) -> None:
    """Rewrite the store to reclaim the space deleted data left, and print bytes before/after.

    LMDB reuses freed pages but never shrinks its file: compact writes a copy without the
    free pages and renames it into place, while no other process has the store open (it
    refuses, or waits with --wait, while one does; processes that open the store meanwhile
    wait for it). Killed at any point, the store is whole: the old file or the new one.
    PostgreSQL: VACUUM (ANALYZE) of the store's tables (--full: VACUUM FULL).

    Example: eventlog compact --db ./data --wait 30
    """
    from eventlog.tools.compact import compact_store

    with fail_cleanly():
        report = compact_store(db, wait=wait, full=full)
    if json_out:
        typer.echo(json.dumps(to_builtins(report), indent=2))
        return
    saved = report.bytes_before - report.bytes_after
    what = "VACUUM FULL" if report.full else "VACUUM" if report.backend == "postgresql" else ""
    typer.echo(f"compacted {safe(report.location)}{f' ({what})' if what else ''}")
    typer.echo(f"  before  {report.bytes_before} bytes ({_size(report.bytes_before)})")
    typer.echo(f"  after   {report.bytes_after} bytes ({_size(report.bytes_after)})")
    typer.echo(f"  saved   {saved} bytes in {report.seconds:.2f}s")


def register(app: typer.Typer) -> None:
    """Add ``compact`` to ``app``."""
    app.command()(compact)
