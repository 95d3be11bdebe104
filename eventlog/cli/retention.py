"""Retention: ``eventlog prune`` removes what a policy names and prints the report.

A thin layer over :meth:`eventlog.RunStore.prune`: the options are its arguments, the output
its :class:`~eventlog.model.retention.PruneReport` (a table, or ``--json``), with a progress
bar on stderr when stderr is a terminal.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from eventlog.cli._common import DEFAULT_DB, DbOption, JsonFlag, console, fail_cleanly, open_store
from eventlog.cli.render import safe

__all__ = ["register"]

_KEPT = [
    ("kept_non_terminal", "not in a terminal status"),
    ("kept_recent", "active after --older-than"),
    ("kept_latest_per_session", "among the session's newest (--keep-last-per-session)"),
    ("kept_forked", "a fork reads its prefix"),
    ("kept_changed", "changed since the selection (checked again in its batch)"),
    ("kept_latest_checkpoint", "LangGraph threads: latest checkpoints kept"),
]


def prune(
    db: DbOption = DEFAULT_DB,
    older_than: Annotated[
        str | None,
        typer.Option(help="Only what was last active before this: 30d, 12h, or an ISO date."),
    ] = None,
    status: Annotated[
        list[str] | None,
        typer.Option(help="Terminal status to prune (repeatable; default all three)."),
    ] = None,
    keep_last_per_session: Annotated[
        int | None, typer.Option(min=0, help="Keep each session's N newest runs.")
    ] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option(help="What to prune: run (default) or a stream kind (repeatable)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would go; change nothing.")
    ] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="Runs per transaction.")] = 100,
    json_out: JsonFlag = False,
) -> None:
    """Remove terminal runs (and streams) a retention policy names, in atomic batches.

    Never removes a running run, a prefix a fork reads, or a LangGraph thread's latest
    checkpoint. Subscribers crossing the removed positions are told (Subscription.pruned).

    Example: eventlog prune --older-than 30d --keep-last-per-session 5 --dry-run
    """
    from eventlog.model.status import TERMINAL_STATUSES
    from eventlog.tools.timespec import parse_time

    with fail_cleanly():
        cutoff = None if older_than is None else parse_time(older_than, option="--older-than")
        with open_store(db, write=not dry_run) as store:
            kwargs: dict[str, Any] = {
                "older_than": cutoff,
                "statuses": status or TERMINAL_STATUSES,
                "keep_last_per_session": keep_last_per_session,
                "kinds": kind or None,
                "dry_run": dry_run,
                "batch_size": batch_size,
            }
            if sys.stderr.isatty() and not dry_run and not json_out:
                report = _with_progress(store, kwargs)
            else:
                report = store.prune(**kwargs)
    from eventlog.cli._common import to_builtins

    data = to_builtins(report)
    if json_out:
        typer.echo(json.dumps(data, indent=2))
        return
    _print_report(data)


def _with_progress(store: Any, kwargs: dict[str, Any]) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn

    with Progress(
        TextColumn("pruning"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        console=Console(stderr=True),
    ) as bar:
        task = bar.add_task("prune", total=1)

        def report(done: int, total: int) -> None:
            bar.update(task, completed=done, total=max(total, 1))

        return store.prune(progress=report, **kwargs)


def _print_report(data: dict[str, Any]) -> None:
    from rich.table import Table

    verb = "would remove" if data["dry_run"] else "removed"
    table = Table(title=f"prune: {verb}")
    table.add_column("what")
    table.add_column("count", justify="right")
    for name in ("runs", "streams", "events", "bytes", "checkpoints"):
        table.add_row(name, f"{data[name]:,}")
    for name, why in _KEPT:
        if data[name]:
            table.add_row(f"kept: {why}", f"{data[name]:,}")
    if not data["dry_run"]:
        table.add_row("batches", str(data["batches"]))
    out = console()
    out.print(table)
    shown = data["run_ids"][:20]
    if shown:
        out.print(safe(f"runs {verb}: " + ", ".join(str(r)[:8] for r in shown)))
        if len(data["run_ids"]) > len(shown):
            out.print(f"... and {len(data['run_ids']) - len(shown)} more (--json lists all)")


def register(app: typer.Typer) -> None:
    """Add ``prune`` to ``app``."""
    app.command()(prune)
