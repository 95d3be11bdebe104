"""Commands about runs: runs, show, events, replay, tail (the store loads when a command runs)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from eventlog.cli._common import (
    DEFAULT_DB,
    DbOption,
    JsonFlag,
    NlFlag,
    age,
    console,
    die,
    echo,
    emit,
    event_dict,
    fail_cleanly,
    open_store,
    resolve_run,
    resolve_session,
    summary,
    to_builtins,
    when,
)
from eventlog.cli.render import safe
from eventlog.model.status import RunStatus

if TYPE_CHECKING:
    from eventlog.model.records import EventRecord, RunRecord
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
    limit: Annotated[int, typer.Option(min=0, help="At most this many runs.")] = 20,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many runs first.")] = 0,
    json_out: JsonFlag = False,
    nl: NlFlag = False,
) -> None:
    """List runs, newest first (from the status index).

    Example: eventlog runs --status failed --limit 10
    """
    with fail_cleanly(), open_store(db) as store:
        sid = None if session is None else resolve_session(store, session)
        records = store.list_runs_filtered(
            status=status, session_id=sid, limit=limit, offset=offset
        )
        rows = [_run_row(r, store.get_run_state(r.id)) for r in records]
    emit(
        rows,
        json_out=json_out,
        nl=nl,
        columns=[
            ("run", lambda r: r["id"][:8]),
            ("session", lambda r: r["session_id"][:8]),
            ("status", lambda r: r["status"]),
            ("provider/model", lambda r: f"{r['provider']}/{r['model']}"),
            ("events", lambda r: str(r["event_count"])),
            ("tokens", lambda r: str(r["total_tokens"])),
            ("created", lambda r: r["created_at"][:19].replace("T", " ")),
            ("updated", lambda r: r["updated_at"][:19].replace("T", " ")),
            ("age", lambda r: age(_parse(r["created_at"]))),
        ],
    )


def _parse(text: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def show(
    run: Annotated[str, typer.Argument(help="Run id or a unique prefix.")],
    db: DbOption = DEFAULT_DB,
    json_out: JsonFlag = False,
) -> None:
    """Show a run's record and its folded state.

    Example: eventlog show 3f2a
    """
    with fail_cleanly(), open_store(db) as store:
        rid = resolve_run(store, run)
        record, state = store.get_run(rid), store.get_run_state(rid)
    if record is None or state is None:
        die(f"run {run} not found")
    if json_out:
        typer.echo(json.dumps({"run": to_builtins(record), "state": to_builtins(state)}, indent=2))
        return
    out = console()
    out.print(f"run {record.id}")
    for name in record.__struct_fields__:
        out.print(f"  {name:<18} {getattr(record, name)}")
    out.print("state")
    for name in state.__struct_fields__:
        out.print(f"  {name:<18} {getattr(state, name)}")


def events(
    run: Annotated[str, typer.Argument(help="Run id or a unique prefix.")],
    db: DbOption = DEFAULT_DB,
    after_seq: Annotated[int, typer.Option(min=0, help="Only events after this seq.")] = 0,
    to_seq: Annotated[int | None, typer.Option(min=0, help="Only events up to this seq.")] = None,
    type_: Annotated[
        list[str] | None, typer.Option("--type", help="Only these event types (repeatable).")
    ] = None,
    no_payload: Annotated[bool, typer.Option("--no-payload", help="Leave out the bodies.")] = False,
    json_out: JsonFlag = False,
    nl: NlFlag = False,
) -> None:
    """The run's timeline: seq, position, time, type and a one-line summary.

    Example: eventlog events 3f2a --type ToolCallCompleted --type RunFailed --no-payload
    """
    with fail_cleanly(), open_store(db) as store:
        rid = resolve_run(store, run)
        records = store.list_events(rid, after_seq=after_seq, to_seq=to_seq)
    if type_:
        wanted = set(type_)
        records = [r for r in records if r.type in wanted]
    _print_events(records, json_out=json_out, nl=nl, payload=not no_payload)


def _print_events(
    records: list[EventRecord], *, json_out: bool, nl: bool, payload: bool, with_run: bool = False
) -> None:
    rows = [event_dict(r, payload=payload) | {"_record": r} for r in records]
    columns = [
        ("seq", lambda r: str(r["seq"])),
        ("pos", lambda r: str(r["position"])),
        ("time", lambda r: when(r["_record"].recorded_at)),
        ("type", lambda r: r["type"]),
    ]
    if with_run:
        columns.insert(0, ("run", lambda r: r["run_id"][:8]))
    if payload:
        columns.append(("summary", lambda r: summary(r["_record"])))
    if json_out or nl:
        rows = [{k: v for k, v in r.items() if k != "_record"} for r in rows]
    emit(rows, json_out=json_out, nl=nl, columns=columns)


def replay(
    run: Annotated[str, typer.Argument(help="Run id or a unique prefix.")],
    db: DbOption = DEFAULT_DB,
    to_seq: Annotated[int | None, typer.Option(min=0, help="Stop after this seq.")] = None,
    step: Annotated[bool, typer.Option("--step", help="Show the state after each event.")] = False,
    diff: Annotated[
        bool, typer.Option("--diff", help="Show only the fields that changed.")
    ] = False,
    json_out: JsonFlag = False,
    nl: NlFlag = False,
) -> None:
    """Fold the run event by event (time travel: nothing is re-executed).

    Example: eventlog replay 3f2a --to-seq 12 --diff
    """
    from eventlog.model.state import RunState

    with fail_cleanly(), open_store(db) as store:
        rid = resolve_run(store, run)
        record = store.get_run(rid)
        records = store.list_events(rid, to_seq=to_seq)
    if record is None:
        die(f"run {run} not found")
    state = RunState.initial(record)
    steps: list[dict[str, Any]] = []
    for ev in records:
        before = to_builtins(state)
        state = state.apply(ev)
        after = to_builtins(state)
        changed = {k: v for k, v in after.items() if before.get(k) != v}
        steps.append({"seq": ev.seq, "type": ev.type, "state": after, "changed": changed})
    if not (step or diff):
        final = to_builtins(state)
        if json_out or nl:
            typer.echo(json.dumps(final, indent=None if nl else 2))
            return
        out = console()
        out.print(f"state of run {rid} after seq {state.last_seq}")
        for name, value in final.items():
            out.print(f"  {name:<14} {value}")
        return
    key = "changed" if diff else "state"
    if json_out or nl:
        items = [{"seq": s["seq"], "type": s["type"], key: s[key]} for s in steps]
        if nl:
            for item in items:
                typer.echo(json.dumps(item))
        else:
            typer.echo(json.dumps(items, indent=2))
        return
    out = console()
    for s in steps:
        out.print(f"seq {s['seq']} {s['type']}")
        for name, value in s[key].items():
            out.print(f"  {name:<14} {value}")


def tail(
    run: Annotated[str | None, typer.Argument(help="Only this run (id or prefix).")] = None,
    db: DbOption = DEFAULT_DB,
    lines: Annotated[int, typer.Option("--lines", "-n", min=0, help="Start with the last N.")] = 10,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events.")
    ] = False,
    interval: Annotated[
        float,
        typer.Option(min=0.01, hidden=True, help="Ignored: commits wake the tail."),
    ] = 0.2,
    json_out: JsonFlag = False,
    nl: NlFlag = False,
) -> None:
    """Print the last events (of all runs or one), and with --follow every new one as it lands.

    --follow subscribes to the log: it sleeps until a commit (of any process) wakes it, so an
    idle tail costs no CPU, and it prints every event once, in position order.

    Example: eventlog tail --follow --nl | jq .type
    """
    if follow and json_out:
        die("--follow streams JSON Lines: use --nl (not --json) with --follow", 2)
    with fail_cleanly(), open_store(db) as store:
        rid = None if run is None else resolve_run(store, run)
        last = store.last_position()
        backlog = store.last_events(lines, run_id=rid)
        _print_tail(backlog, json_out=json_out, nl=nl)
        if not follow:
            return
        try:
            with store.subscribe(after_position=last, run_id=rid) as sub:
                for record in sub:
                    _print_tail([record], json_out=False, nl=nl)
        except KeyboardInterrupt:
            return


def _print_tail(records: list[EventRecord], *, json_out: bool, nl: bool) -> None:
    if nl or json_out:
        if json_out and not nl:
            typer.echo(json.dumps([event_dict(r) for r in records], indent=2))
            return
        for r in records:
            typer.echo(json.dumps(event_dict(r)))
        return
    for r in records:
        echo(
            f"{str(r.run_id)[:8]} {r.seq:>5} {r.position:>7} {when(r.recorded_at)} "
            f"{safe(r.type):<26} {summary(r, 70)}"
        )


def register(app: typer.Typer) -> None:
    """Add the run commands to ``app``."""
    for fn in (runs, show, events, replay, tail):
        app.command()(fn)
