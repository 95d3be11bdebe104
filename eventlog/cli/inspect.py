"""Commands that read events: events, event, tail, grep, streams (any kind of stream).

Tables show event times to the millisecond (UTC) with the time since the row before, and
fold consecutive text deltas into one row; ``--json``/``--nl`` print every event as stored.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from eventlog.cli._common import (
    DEFAULT_DB,
    DbOption,
    JsonFlag,
    NlFlag,
    die,
    emit,
    event_dict,
    fail_cleanly,
    open_store,
    to_builtins,
)
from eventlog.cli.render import safe
from eventlog.cli.timeline import (
    SinceOption,
    UntilOption,
    clock,
    explain_empty,
    fmt_ms,
    line_summary,
    note,
    parse_times,
    resolve_stream,
    table_console,
)

if TYPE_CHECKING:
    from eventlog.model.records import EventRecord

__all__ = ["register"]

StreamArg = Annotated[
    str,
    typer.Argument(
        help="A run or session id (or a unique prefix), a stream's id, or a LangGraph thread / "
        "Agents SDK session name."
    ),
]
TypeOption = Annotated[
    list[str] | None, typer.Option("--type", help="Only these event types (repeatable).")
]


def _in_time(record: EventRecord, since: datetime | None, until: datetime | None) -> bool:
    return (since is None or record.recorded_at >= since) and (
        until is None or record.recorded_at < until
    )


class _Row:
    """A table row: one event, or consecutive text deltas folded together."""

    def __init__(self, first: EventRecord) -> None:
        self.first = first
        self.last = first
        self.count = 1
        self.text = ""

    def label(self) -> str:
        name = safe(self.first.type)
        return f"{name} x{self.count}" if self.count > 1 else name

    def seq(self) -> str:
        if self.count > 1:
            return f"{self.first.seq}-{self.last.seq}"
        return str(self.first.seq)


def _rows(records: list[EventRecord], raw: bool) -> list[_Row]:
    from eventlog.model.events import TextDelta

    rows: list[_Row] = []
    for record in records:
        prev = rows[-1] if rows else None
        delta = isinstance(record.event, TextDelta)
        if (
            not raw
            and delta
            and prev is not None
            and isinstance(prev.last.event, TextDelta)
            and prev.last.seq == record.seq - 1
            and prev.last.run_id == record.run_id
        ):
            prev.last = record
            prev.count += 1
            assert isinstance(record.event, TextDelta)
            prev.text += record.event.delta
            continue
        row = _Row(record)
        if isinstance(record.event, TextDelta):
            row.text = record.event.delta
        rows.append(row)
    return rows


def print_timeline(
    records: list[EventRecord], *, raw: bool, payload: bool, title: str | None, with_stream: bool
) -> None:
    """The events, one per line: seq, time (ms), +delta, type, summary; deltas folded.

    The summary follows the type when it fits the terminal; otherwise it goes on the lines
    below, indented. A narrow terminal (< 120 columns) shows at most three summary lines
    per event; a wide one shows it whole.
    """
    import textwrap

    from eventlog.tools.story import event_time

    out = table_console()
    width = out.width
    wide = width >= 120
    rows = _rows(records, raw)
    days = sorted({event_time(r).date() for r in records})
    many_days = len(days) > 1
    cells: list[tuple[list[str], str]] = []
    previous = None
    for row in rows:
        at = event_time(row.first)
        step = None if previous is None else (at - previous).total_seconds() * 1000
        previous = event_time(row.last)
        line = [row.seq()]
        if with_stream:
            line.insert(0, str(row.first.run_id)[:8])
        if wide:
            line.append(str(row.first.position))
        line += [clock(at, date=many_days), "" if step is None else "+" + fmt_ms(step)]
        line.append(row.label())
        text = ""
        if payload:
            if row.count > 1:
                text = safe(json.dumps(row.text, ensure_ascii=False))
            else:
                text = line_summary(row.first)
        cells.append((line, text))
    head = ["seq"]
    if with_stream:
        head.insert(0, "stream")
    if wide:
        head.append("pos")
    head += ["time (UTC)", "+Δ", "type"]
    right = {"seq", "pos", "+Δ"}
    widths = [max(len(h), *(len(c[0][i]) for c in cells)) for i, h in enumerate(head)]

    def joined(values: list[str]) -> str:
        return "  ".join(
            v.rjust(w) if h in right else v.ljust(w)
            for h, v, w in zip(head, values, widths, strict=True)
        )

    if title is not None:
        span = f"  ({days[0]:%Y-%m-%d})" if days and not many_days else ""
        out.print(safe(title) + span)
    out.print((joined(head) + ("  summary" if payload else "")).rstrip())
    indent = 8
    for line, text in cells:
        prefix = joined(line) + "  "
        avail = width - len(prefix)
        if not text:
            out.print(prefix.rstrip())
        elif len(text) <= avail:
            out.print(prefix + text)
        elif avail >= 40:
            parts = textwrap.wrap(text, avail, drop_whitespace=False) or [""]
            if not wide and len(parts) > 3:
                parts = [*parts[:2], parts[2][: avail - 1] + "…"]
            out.print(prefix + parts[0])
            for part in parts[1:]:
                out.print(" " * len(prefix) + part)
        else:
            out.print(prefix.rstrip())
            parts = textwrap.wrap(text, width - indent, drop_whitespace=False) or [""]
            if not wide and len(parts) > 3:
                parts = [*parts[:2], parts[2][: width - indent - 1] + "…"]
            for part in parts:
                out.print(" " * indent + part)


def _emit_json(records: list[EventRecord], *, json_out: bool, nl: bool, payload: bool) -> None:
    if json_out and nl:
        die("choose one of --json and --nl", 2)
    rows = [event_dict(r, payload=payload) for r in records]
    if json_out:
        typer.echo(json.dumps(rows, indent=2, default=str))
    else:
        for row in rows:
            typer.echo(json.dumps(row, default=str))


def events(
    stream: StreamArg,
    db: DbOption = DEFAULT_DB,
    after_seq: Annotated[int, typer.Option(min=0, help="Only events after this seq.")] = 0,
    to_seq: Annotated[int | None, typer.Option(min=0, help="Only events up to this seq.")] = None,
    type_: TypeOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    raw: Annotated[
        bool, typer.Option("--raw", help="One row per text delta (default: folded).")
    ] = False,
    no_payload: Annotated[bool, typer.Option("--no-payload", help="Leave out the bodies.")] = False,
    json_out: JsonFlag = False,
    nl: NlFlag = False,
) -> None:
    """A stream's timeline (run, session, thread...): seq, time, +Δ, type, summary.

    Times are the events' own timestamps in UTC to the millisecond; +Δ is the time since the
    row before. Consecutive text deltas are one row (--raw: one each); --json and --nl print
    every event as stored. An empty result says why on stderr (exit status 0).

    Example: eventlog events 3f2a --type ToolExecutionFinished --type RunFailed
    """
    start, end = parse_times(since, until)
    with fail_cleanly(), open_store(db) as store:
        sid, kind = resolve_stream(store, stream)
        records: list[EventRecord] = []
        if to_seq is None or to_seq > after_seq:
            records = store.read_stream(sid, after_seq=after_seq, to_seq=to_seq)
        if type_:
            wanted = set(type_)
            records = [r for r in records if r.type in wanted]
        records = [r for r in records if _in_time(r, start, end)]
        why = (
            explain_empty(
                store,
                sid,
                kind,
                after_seq=after_seq,
                to_seq=to_seq,
                types=type_,
                since=start,
                until=end,
            )
            if not records
            else None
        )
    if json_out or nl:
        _emit_json(records, json_out=json_out, nl=nl, payload=not no_payload)
    elif records:
        print_timeline(
            records, raw=raw, payload=not no_payload, title=f"{kind} {sid}", with_stream=False
        )
    if why is not None:
        note(why)


def event(
    stream: StreamArg,
    seq: Annotated[int, typer.Argument(min=1, help="The event's seq in the stream.")],
    db: DbOption = DEFAULT_DB,
    json_out: JsonFlag = False,
) -> None:
    """One event in full: its place (seq, position, times, id) and every payload field.

    Example: eventlog event 3f2a 17
    """
    with fail_cleanly(), open_store(db) as store:
        sid, kind = resolve_stream(store, stream)
        found = store.read_stream(sid, after_seq=seq - 1, to_seq=seq)
        last = store.read_stream(sid, reverse=True, limit=1) if not found else []
    if not found:
        top = last[0].seq if last else 0
        die(
            f"{kind} {sid} has no event with seq {seq}: its seqs are 1-{top}"
            if top
            else f"{kind} {sid} has no events yet"
        )
    record = found[0]
    data = event_dict(record)
    if json_out:
        typer.echo(json.dumps(data, indent=2, default=str))
        return
    from eventlog.tools.story import event_time

    out = table_console()
    out.print(f"{safe(record.type)}  seq {record.seq} of {kind} {sid}")
    out.print(f"  position     {record.position}")
    out.print(f"  time         {clock(event_time(record), date=True)} UTC")
    out.print(f"  recorded_at  {clock(record.recorded_at, date=True)} UTC")
    out.print(f"  event_id     {record.event_id or '-'}")
    out.print(f"  version      {record.version}")
    out.print("payload")
    body = json.dumps(data["payload"], indent=2, ensure_ascii=False, default=str)
    for line in body.splitlines():
        out.print("  " + safe(line))


def tail(
    stream: Annotated[
        str | None,
        typer.Argument(help="Only this stream: a run, a session, a thread (id, prefix or name)."),
    ] = None,
    db: DbOption = DEFAULT_DB,
    lines: Annotated[int, typer.Option("--lines", "-n", min=0, help="Start with the last N.")] = 10,
    since: SinceOption = None,
    until: UntilOption = None,
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
    """Print the last events (of all streams or one), and with --follow every new one as it lands.

    --follow subscribes to the log: it sleeps until a commit (of any process) wakes it, so an
    idle tail costs no CPU, and it prints every event once, in position order. --since and
    --until filter the last N events by the time they were stored.

    Example: eventlog tail --follow --nl | jq .type
    """
    if follow and json_out:
        die("--follow streams JSON Lines: use --nl (not --json) with --follow", 2)
    if follow and until is not None:
        die("--until cannot be used with --follow (a followed tail has no end)", 2)
    start, end = parse_times(since, until)
    with fail_cleanly(), open_store(db) as store:
        sid = None if stream is None else resolve_stream(store, stream)[0]
        last = store.last_position()
        if sid is None:
            backlog = store.last_events(lines, run_id=None)
        else:
            backlog = (
                list(reversed(store.read_stream(sid, reverse=True, limit=lines))) if lines else []
            )
        backlog = [r for r in backlog if _in_time(r, start, end)]
        _print_tail(backlog, json_out=json_out, nl=nl)
        if not backlog and not follow and (start or end):
            note("none of the last events was stored in that time range")
        if not follow:
            return
        try:
            with store.subscribe(after_position=last, run_id=sid) as sub:
                for record in sub:
                    _print_tail([record], json_out=False, nl=nl)
        except KeyboardInterrupt:
            return


def _print_tail(records: list[EventRecord], *, json_out: bool, nl: bool) -> None:
    from eventlog.tools.story import event_time

    if nl or json_out:
        if json_out and not nl:
            typer.echo(json.dumps([event_dict(r) for r in records], indent=2, default=str))
            return
        for r in records:
            typer.echo(json.dumps(event_dict(r), default=str), nl=True)
        return
    for r in records:
        typer.echo(
            f"{str(r.run_id)[:8]} {r.seq:>5} {r.position:>7} {clock(event_time(r), date=True)} "
            f"{safe(r.type):<22} {line_summary(r, 200)}"
        )


def grep(
    pattern: Annotated[str, typer.Argument(help="A Python regular expression (re.search).")],
    db: DbOption = DEFAULT_DB,
    type_: TypeOption = None,
    run: Annotated[
        list[str] | None,
        typer.Option("--run", help="Only this run or stream (id, prefix or name; repeatable)."),
    ] = None,
    session: Annotated[
        str | None,
        typer.Option(help="Only this session's runs and its own stream (id prefix)."),
    ] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    ignore_case: Annotated[bool, typer.Option("--ignore-case", "-i", help="Ignore case.")] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="Stop after this many hits.")] = None,
    json_out: JsonFlag = False,
    nl: NlFlag = False,
) -> None:
    """Search event payloads with a regular expression: every string value is searched.

    Example: eventlog grep 'timed out' --type ToolExecutionFinished --since 2h
    """
    from eventlog.errors import QueryError
    from eventlog.tools.search import compile_pattern, search_events

    try:
        compiled = compile_pattern(pattern, ignore_case=ignore_case)
    except QueryError as exc:
        die(str(exc), 2)
    start, end = parse_times(since, until)
    with fail_cleanly(), open_store(db) as store:
        streams: list[Any] | None = None
        if run or session:
            streams = [resolve_stream(store, r)[0] for r in run or []]
            if session is not None:
                from eventlog.cli._common import resolve_session

                sid = resolve_session(store, session)
                streams += [r.id for r in store.list_runs(sid)] + [sid]
        hits = list(
            search_events(
                store,
                compiled,
                types=type_,
                stream_ids=streams,
                since=start,
                until=end,
                limit=limit,
            )
        )
    rows = [event_dict(h.record) | {"field": h.field, "match": h.text} for h in hits]
    emit(
        rows,
        json_out=json_out,
        nl=nl,
        columns=[
            ("stream", lambda r: r["run_id"][:8]),
            ("seq", lambda r: str(r["seq"])),
            ("type", lambda r: safe(r["type"])),
            ("field", lambda r: safe(r["field"])),
            ("match", lambda r: safe(r["match"][:300])),
        ],
    )
    if not hits:
        scope = "" if streams is None else f" in {len(streams)} stream(s)"
        kinds = f" of type {', '.join(type_)}" if type_ else ""
        note(f"no event{kinds}{scope} has a payload value matching {safe(pattern)!r}")


def streams(
    db: DbOption = DEFAULT_DB,
    kind: Annotated[
        str | None,
        typer.Option(help="Only streams of this kind (e.g. langgraph.thread, agents.session)."),
    ] = None,
    limit: Annotated[int, typer.Option(min=0, help="At most this many per kind.")] = 100,
    json_out: JsonFlag = False,
    nl: NlFlag = False,
) -> None:
    """List streams of other kinds than runs and sessions (LangGraph threads, SDK sessions).

    Example: eventlog streams --kind langgraph.thread
    """
    with fail_cleanly(), open_store(db) as store:
        kinds = [kind] if kind is not None else store.list_stream_kinds()
        rows = []
        for k in kinds:
            for record in store.list_streams(k, limit=limit):
                row: dict[str, Any] = to_builtins(record)
                row["events"] = (
                    0
                    if not (last := store.read_stream(record.id, reverse=True, limit=1))
                    else last[0].seq
                )
                rows.append(row)
    emit(
        rows,
        json_out=json_out,
        nl=nl,
        columns=[
            ("stream", lambda r: r["id"]),
            ("kind", lambda r: safe(r["kind"])),
            ("events", lambda r: str(r["events"])),
            ("metadata", lambda r: safe(json.dumps(r["metadata"], ensure_ascii=False))[:80]),
            ("updated", lambda r: r["updated_at"][:19].replace("T", " ")),
        ],
    )
    if not rows:
        note(f"no stream of kind {safe(kind)!r}" if kind else "no streams of other kinds")


def register(app: typer.Typer) -> None:
    """Add the event commands to ``app``."""
    for fn in (events, event, tail, grep, streams):
        app.command()(fn)
