"""``fork`` and ``lineage``: fork a run at a seq (zero-copy) and show where a run comes from.

The store loads when a command runs (``eventlog --help`` stays fast).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from eventlog.cli._common import (
    DEFAULT_DB,
    DbOption,
    JsonFlag,
    emit,
    fail_cleanly,
    open_store,
    resolve_run,
    to_builtins,
)

if TYPE_CHECKING:
    from eventlog.store.run_store import RunStore

__all__ = ["fork_lines", "register"]

RunArg = Annotated[str, typer.Argument(help="Run id or a unique prefix.")]


def fork(
    run: RunArg,
    at_seq: Annotated[
        int, typer.Option("--at-seq", help="The last shared seq (0: an empty fork).")
    ],
    db: DbOption = DEFAULT_DB,
    json_out: JsonFlag = False,
) -> None:
    """Fork a run at a seq: a new run in its session sharing events 1..N (nothing copied).

    Example: eventlog fork 3f2a --at-seq 12
    """
    with fail_cleanly(), open_store(db, write=True) as store:
        parent = resolve_run(store, run)
        record = store.fork_run(parent, at_seq)
    if json_out:
        typer.echo(json.dumps(to_builtins(record), indent=2))
        return
    typer.echo(f"forked run {record.id} from {parent} at seq {at_seq}")


def lineage(run: RunArg, db: DbOption = DEFAULT_DB, json_out: JsonFlag = False) -> None:
    """A run's ancestors up to the root, with the seq each fork starts after.

    Example: eventlog lineage 3f2a
    """
    with fail_cleanly(), open_store(db) as store:
        rid = resolve_run(store, run)
        rows: list[dict[str, Any]] = [to_builtins(link) for link in store.lineage(rid)]
    if not rows and not json_out:
        typer.echo(f"run {rid} is no fork (it is a root)")
        return
    emit(
        rows,
        json_out=json_out,
        nl=False,
        columns=[
            ("run", lambda r: r["id"]),
            ("forks", lambda r: r["parent_id"]),
            ("at seq", lambda r: str(r["fork_seq"])),
        ],
    )


def fork_lines(store: RunStore, run_id: Any) -> tuple[list[str], dict[str, Any]]:
    """``show``'s lines about a run's parent and forks, and the same as JSON fields."""
    record = store.get_run(run_id)
    forks = store.list_forks(run_id)
    lines: list[str] = []
    if record is not None and record.parent_run_id is not None:
        lines.append(f"  forked from {record.parent_run_id} at seq {record.fork_seq}")
    if forks:
        lines.append(f"  forks       {len(forks)}: " + ", ".join(str(f.id) for f in forks[:10]))
    doc = {"forks": [{"id": str(f.id), "fork_seq": f.fork_seq} for f in forks]}
    return lines, doc


def register(app: typer.Typer) -> None:
    """Add the fork commands to ``app``."""
    for fn in (fork, lineage):
        app.command()(fn)
