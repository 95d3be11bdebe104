"""What the story commands share: time options, any-stream ids, event rows, empty-result notes.

Every stored string printed outside JSON goes through :func:`eventlog.cli.render.safe`.
The store and rich load when a command runs.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import typer

from eventlog.cli._common import die
from eventlog.cli.render import safe

if TYPE_CHECKING:
    from rich.console import Console

    from eventlog.model.records import EventRecord
    from eventlog.store.run_store import RunStore

__all__ = [
    "SinceOption",
    "UntilOption",
    "clock",
    "explain_empty",
    "fmt_ms",
    "line_summary",
    "note",
    "parse_times",
    "resolve_stream",
    "table_console",
]

SinceOption = Annotated[
    str | None,
    typer.Option(
        "--since",
        help="Only from this time on: ISO (2025-03-01T14:00, UTC unless an offset is given) "
        "or a span back from now (90s, 30m, 2h, 7d).",
    ),
]
UntilOption = Annotated[
    str | None,
    typer.Option("--until", help="Only before this time (same forms as --since)."),
]


def parse_times(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """``--since``/``--until`` as datetimes; a bad value exits 2 naming the option."""
    from eventlog.errors import QueryError
    from eventlog.tools.timespec import parse_time

    try:
        start = None if since is None else parse_time(since, option="--since")
        end = None if until is None else parse_time(until, option="--until")
    except QueryError as exc:
        die(str(exc), 2)
    if start is not None and end is not None and start >= end:
        die(f"--since {since!r} is not before --until {until!r}: the range is empty", 2)
    return start, end


def note(message: str) -> None:
    """A note on stderr (why a result is empty); the exit status stays 0."""
    typer.echo(f"note: {message}", err=True)


def table_console() -> Console:
    """A console for tables: the terminal's width, or ``COLUMNS`` (else 200) when piped."""
    from rich.console import Console

    if sys.stdout.isatty():
        return Console(markup=False, highlight=False)
    columns = os.environ.get("COLUMNS", "")
    width = int(columns) if columns.isdigit() and int(columns) > 0 else 200
    return Console(width=width, no_color=True, color_system=None, highlight=False, markup=False)


def clock(ts: datetime, *, date: bool = False) -> str:
    """``14:13:43.125`` (UTC, milliseconds), with the date first when ``date``."""
    utc = ts.astimezone(UTC)
    text = utc.strftime("%H:%M:%S.") + f"{utc.microsecond // 1000:03d}"
    return f"{utc:%Y-%m-%d} {text}" if date else text


def fmt_ms(ms: float | None) -> str:
    """A duration for a column: ``12ms``, ``1.50s``, ``2m03s``, ``1h02m``.

    >>> [fmt_ms(x) for x in (0, 12, 1500, 123_000, 3_720_000, None)]
    ['0ms', '12ms', '1.50s', '2m03s', '1h02m', '']
    """
    if ms is None:
        return ""
    if ms < 1000:
        return f"{round(ms)}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _j(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _compact(record: EventRecord) -> str | None:
    """The most telling fields of a built-in event first (None: the generic form)."""
    from eventlog.model import events as ev

    e = record.event
    if isinstance(e, ev.ToolExecutionFinished):
        took = f"{e.duration_ms}ms"
        if isinstance(e.result, ev.Failure):
            return f"{e.tool_name} FAILED in {took}: {_j(e.result.error)} [{e.call_id}]"
        return f"{e.tool_name} ok in {took}: {_j(e.result.output)} [{e.call_id}]"
    if isinstance(e, ev.RunFailed):
        return f"error={_j(e.error)}"
    if isinstance(e, ev.ToolCallCompleted):
        return f"{e.call.name}({_j(e.call.arguments)}) [{e.call.id}]"
    if isinstance(e, ev.ToolCallStarted | ev.ToolExecutionStarted):
        return f"{e.tool_name} [{e.call_id}]"
    if isinstance(e, ev.ToolCallDelta):
        return f"{_j(e.delta)} [{e.call_id}]"
    if isinstance(e, ev.TextDelta):
        return _j(e.delta)
    if isinstance(e, ev.UsageRecorded):
        u = e.usage
        return f"tokens {u.total_tokens} (in {u.input_tokens}, out {u.output_tokens})"
    if isinstance(e, ev.ModelStarted):
        return f"{e.provider}/{e.model} iteration={e.iteration}"
    if isinstance(e, ev.RunStarted):
        return f"{e.provider}/{e.model} session={e.session_id}"
    return None


def line_summary(record: EventRecord, width: int | None = None, *, compact: bool = True) -> str:
    """The payload on one line, made safe; cut at ``width`` if given.

    ``compact``: a built-in event's telling fields first (a tool's outcome, error and
    duration; a model call's model), else every field as ``key=value``.
    """
    from eventlog.tools.story import payload_of

    short = _compact(record) if compact else None
    if short is not None:
        line = safe(short)
        if width is not None and len(line) > width:
            return line[: max(1, width - 1)] + "…"
        return line
    parts = []
    for key, value in payload_of(record).items():
        if key in ("type", "timestamp"):
            continue
        if isinstance(value, str):
            parts.append(f"{key}={json.dumps(value, ensure_ascii=False)}")
        else:
            text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
            parts.append(f"{key}={text}")
    line = safe(" ".join(parts))
    if width is not None and len(line) > width:
        return line[: max(1, width - 1)] + "…"
    return line


def resolve_stream(store: RunStore, text: str) -> tuple[UUID, str]:
    """The stream ``text`` names, and its kind (``run``, ``session`` or another kind).

    A run or session id prefix; a stream's id (or a prefix of it); or the name of a stream
    of another kind (a LangGraph ``thread_id``, an Agents SDK ``session_id``). Exits 1 when
    nothing or several match.
    """
    from eventlog.model.records import stream_id_for

    for kind, find in (("run", store.find_runs), ("session", store.find_sessions)):
        try:
            found = find(text, limit=11)
        except ValueError:
            found = []
        if len(found) == 1:
            return found[0], kind
        if len(found) > 1:
            listed = ", ".join(str(u) for u in found[:10])
            die(f"{kind} prefix {safe(text)} is ambiguous: it matches {listed}; give more digits")
    try:
        exact: UUID | None = UUID(text)
    except ValueError:
        exact = None
    if exact is not None:
        record = store.get_stream(exact)
        if record is not None:
            return record.id, record.kind
    matches: list[tuple[UUID, str]] = []
    prefix = text.replace("-", "").lower()
    for kind in store.list_stream_kinds():
        named = store.get_stream(stream_id_for(kind, text))
        if named is not None:
            matches.append((named.id, kind))
            continue
        if prefix and all(c in "0123456789abcdef" for c in prefix):
            matches += [
                (s.id, kind)
                for s in store.list_streams(kind, limit=100_000)
                if s.id.hex.startswith(prefix)
            ]
    if len(matches) == 1:
        return matches[0]
    if matches:
        listed = ", ".join(f"{sid} ({kind})" for sid, kind in matches[:10])
        die(f"{safe(text)} is ambiguous: it matches {listed}; give more digits")
    die(
        f"no run, session or stream {safe(text)}: give a run or session id (or a prefix), a "
        "stream's id, or a thread/session name (see eventlog runs, eventlog streams)"
    )
    raise AssertionError("unreachable")  # die() exits


def explain_empty(
    store: RunStore,
    stream_id: UUID,
    kind: str,
    *,
    after_seq: int = 0,
    to_seq: int | None = None,
    types: Sequence[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> str:
    """Why a listing of the stream with these filters is empty, in one sentence."""
    from eventlog.model.events import EVENT_TYPES

    what = f"{kind} {stream_id}"
    if to_seq is not None and to_seq <= after_seq:
        return (
            f"--after-seq {after_seq} --to-seq {to_seq} is an empty range: events are "
            f"after_seq < seq <= to_seq, so --to-seq must be above --after-seq"
        )
    newest = store.read_stream(stream_id, reverse=True, limit=1)
    if not newest:
        return f"{what} has no events yet"
    last = newest[0].seq
    if after_seq >= last:
        return f"no events after seq {after_seq}: the last seq of {what} is {last}"
    if types:
        present = {r.type for r in store.read_stream(stream_id, after_seq=after_seq, to_seq=to_seq)}
        known = set(EVENT_TYPES) | present
        for name in types:
            if name in known:
                continue
            near = [k for k in sorted(known) if k.lower() == name.lower()]
            if near:
                return (
                    f"no event type {safe(name)!r} (types are case-sensitive): "
                    f"did you mean {near[0]!r}?"
                )
            listed = ", ".join(sorted(present))
            return f"no event type {safe(name)!r} in {what}; its types are: {safe(listed)}"
        shown = ", ".join(safe(t) for t in types)
        span = f"seq {after_seq + 1}-{to_seq or last}"
        return f"{what} has no {shown} event in {span}"
    if since is not None or until is not None:
        first = store.read_stream(stream_id, limit=1)[0]
        return (
            f"no events of {what} stored in that time range: its events were stored from "
            f"{clock(first.recorded_at, date=True)} "
            f"to {clock(newest[0].recorded_at, date=True)} UTC"
        )
    return f"no events of {what} match"


def json_default(value: Any) -> str:
    """``json.dumps`` fallback: ``str()`` (UUIDs, datetimes)."""
    return str(value)
