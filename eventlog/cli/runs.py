"""The ``runs`` listing and its filters (the store loads when the command runs).

The story of one run (show, replay, diff) is in :mod:`eventlog.cli.story`; its events
(events, event, tail, grep) in :mod:`eventlog.cli.inspect`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from eventlog.cli._common import (
    DEFAULT_DB,
    DbOption,
    JsonFlag,
    NlFlag,
    age,
    die,
    emit,
    fail_cleanly,
    open_store,
    resolve_session,
    to_builtins,
)
from eventlog.cli.render import safe
from eventlog.cli.timeline import SinceOption, UntilOption, note, parse_times
from eventlog.model.status import RunStatus

if TYPE_CHECKING:
    from eventlog.model.records import RunRecord
    from eventlog.model.state import RunState

__all__ = ["register"]


def _run_row(run: RunRecord, state: RunState | None) -> dict[str, Any]:
    row: dict[str, Any] = to_builtins(run)
    row["event_count"] = 0 if state is None else state.event_count
    row["total_tokens"] = 0 if state is None else state.total_usage.total_tokens
    return row


def runs(
    db: DbOption = DEFAULT_DB,
    status: Annotated[RunStatus | None, typer.Option(help="Only runs in this status.")] = None,
    session: Annotated[
        str | None, typer.Option(help="Only runs of this session (id prefix).")
    ] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    model: Annotated[str | None, typer.Option(help="Only runs of this model.")] = None,
    provider: Annotated[str | None, typer.Option(help="Only runs of this provider.")] = None,
    metadata: Annotated[
        list[str] | None,
        typer.Option(help="Only runs whose metadata has key=value (repeatable; all must match)."),
    ] = None,
    limit: Annotated[int, typer.Option(min=0, help="At most this many runs.")] = 20,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many runs first.")] = 0,
    unresolved: Annotated[
        bool,
        typer.Option(
            "--unresolved",
            help="Only runs with tool calls that started and have no result (effects unknown).",
        ),
    ] = False,
    json_out: JsonFlag = False,
    nl: NlFlag = False,
) -> None:
    """List runs, newest first (from the status index); --since/--until filter on created_at.

    --unresolved lists the runs a crash left with tool calls executing and no result (from
    the tool ledger's index) and adds their count; `eventlog show RUN` names the calls.

    Example: eventlog runs --status failed --since 2h --provider openai --metadata user=ada
    """
    from eventlog.errors import QueryError
    from eventlog.tools.search import filter_runs, metadata_filter

    start, end = parse_times(since, until)
    try:
        wanted = metadata_filter(metadata or [])
    except QueryError as exc:
        die(str(exc), 2)
    with fail_cleanly(), open_store(db) as store:
        sid = None if session is None else resolve_session(store, session)
        records = filter_runs(
            store,
            status=status,
            session_id=sid,
            since=start,
            until=end,
            model=model,
            provider=provider,
            metadata=wanted,
            limit=limit,
            offset=offset,
            unresolved=unresolved,
        )
        rows = [_run_row(r, store.get_run_state(r.id)) for r in records]
        if unresolved:
            for row, r in zip(rows, records, strict=True):
                row["unresolved_tool_calls"] = len(store.unresolved_tool_calls(r.id))
    extra = [("unresolved", lambda r: str(r["unresolved_tool_calls"]))] if unresolved else []
    emit(
        rows,
        json_out=json_out,
        nl=nl,
        columns=[
            ("run", lambda r: r["id"][:8]),
            ("session", lambda r: r["session_id"][:8]),
            ("status", lambda r: r["status"]),
            ("provider/model", lambda r: safe(f"{r['provider']}/{r['model']}")),
            ("events", lambda r: str(r["event_count"])),
            ("tokens", lambda r: str(r["total_tokens"])),
            ("created", lambda r: r["created_at"][:19].replace("T", " ")),
            ("updated", lambda r: r["updated_at"][:19].replace("T", " ")),
            ("age", lambda r: age(_parse(r["created_at"]))),
            *extra,
        ],
    )
    if not rows:
        given = [
            f"{name} {value}"
            for name, value in (
                ("--status", status),
                ("--session", session),
                ("--since", since),
                ("--until", until),
                ("--model", model),
                ("--provider", provider),
            )
            if value is not None
        ] + [f"--metadata {m}" for m in metadata or []]
        if unresolved:
            given.append("--unresolved")
        if offset:
            given.append(f"--offset {offset}")
        note("no runs match " + safe(" ".join(given)) if given else "the store has no runs")


def _parse(text: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def register(app: typer.Typer) -> None:
    """Add the run commands to ``app``."""
    for fn in (runs,):
        app.command()(fn)
