"""What each page shows, as data: built from the store by the same library calls as the CLI.

Each ``*_page`` function reads one page's view model from a :class:`~eventlog.RunStore`;
the templates only lay it out. The run page's :class:`RunPage` has a ``sections`` hook for
what other features add (lineage, unresolved tool calls): a field here, a block in
``run.html``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec

from eventlog.errors import QueryError, RunNotFound
from eventlog.model.debug_state import DebugState, FieldChange, replay
from eventlog.model.events import TextDelta
from eventlog.model.records import EventRecord, RunRecord, Session, StreamRecord
from eventlog.model.status import RunStatus
from eventlog.tools.search import SearchHit, filter_runs, search_events
from eventlog.tools.story import (
    IterationNode,
    RunSummary,
    build_tree,
    event_time,
    load_run,
    payload_of,
    summarize,
    value_summary,
)
from eventlog.tools.timespec import parse_time
from eventlog.ui.run_sections import lineage_section, unresolved_marks, unresolved_section

if TYPE_CHECKING:
    from eventlog.store.run_store import RunStore

__all__ = [
    "HealthPage",
    "RunPage",
    "RunsFilters",
    "RunsPage",
    "SessionPage",
    "StatePage",
    "StreamPage",
    "TimelineRow",
    "TranscriptEntry",
    "event_json",
    "seq_href",
    "health_page",
    "run_page",
    "runs_page",
    "session_page",
    "state_at",
    "stream_page",
    "streams_page",
    "timeline",
]

PAGE_SIZE = 50
STATUSES = [s.value for s in RunStatus]


@dataclass
class RunsFilters:
    """The runs page's query string, checked (a bad value is a :class:`QueryError`)."""

    status: str | None = None
    session: UUID | None = None
    model: str | None = None
    provider: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    q: str | None = None
    after: UUID | None = None
    #: only runs with unresolved tool calls (the tool ledger's index)
    unresolved: bool = False

    @classmethod
    def parse(cls, params: Any) -> RunsFilters:
        """From a mapping of query parameters (empty values are absent)."""

        def get(name: str) -> str | None:
            value = params.get(name)
            return value.strip() or None if isinstance(value, str) else None

        status = get("status")
        if status is not None and status not in STATUSES:
            raise QueryError("status", status, f"use one of {', '.join(STATUSES)}")
        return cls(
            status=status,
            session=_uuid(get("session"), "session"),
            model=get("model"),
            provider=get("provider"),
            since=_time(get("since"), "since"),
            until=_time(get("until"), "until"),
            q=get("q"),
            after=_uuid(get("after"), "after"),
            unresolved=_flag(get("unresolved"), "unresolved"),
        )

    def query(self, **changes: Any) -> dict[str, str]:
        """The query parameters of these filters (with ``changes``), for links."""
        values = {
            "status": self.status,
            "session": self.session,
            "model": self.model,
            "provider": self.provider,
            "since": None if self.since is None else self.since.isoformat(),
            "until": None if self.until is None else self.until.isoformat(),
            "q": self.q,
            "unresolved": "1" if self.unresolved else None,
        }
        values.update(changes)
        return {k: str(v) for k, v in values.items() if v is not None}


def _time(value: str | None, option: str) -> datetime | None:
    return None if value is None else parse_time(value, option=option)


def _flag(value: str | None, option: str) -> bool:
    if value is None or value in ("0", "false", "off"):
        return False
    if value in ("1", "true", "on"):
        return True
    raise QueryError(option, value, "give 1 or 0")


def _uuid(value: str | None, option: str) -> UUID | None:
    if value is None:
        return None
    try:
        return UUID(value)
    except ValueError:
        raise QueryError(option, value, "give a full id (see eventlog runs)") from None


@dataclass
class RunsPage:
    """Counts per status, one page of runs, the cursor of the next page, search hits.

    ``unresolved``: the runs of the page that have unresolved tool calls (marked).
    """

    filters: RunsFilters
    counts: dict[str, int]
    total: int
    runs: list[RunRecord]
    next_after: UUID | None
    hits: list[SearchHit] = field(default_factory=list)
    unresolved: set[UUID] = field(default_factory=set)


def runs_page(store: RunStore, filters: RunsFilters, *, size: int = PAGE_SIZE) -> RunsPage:
    """The runs page: keyset pages over the status index (fast however deep)."""
    counts = {s: store.count_runs(s, filters.session) for s in STATUSES}
    runs = filter_runs(
        store,
        session_id=filters.session,
        status=filters.status,
        since=filters.since,
        until=filters.until,
        model=filters.model,
        provider=filters.provider,
        limit=size + 1,
        unresolved=filters.unresolved,
        after=filters.after,
    )
    more = len(runs) > size
    runs = runs[:size]
    if filters.unresolved:
        marks = {r.id for r in runs}
    else:
        marks = unresolved_marks(store, runs, session_id=filters.session, status=filters.status)
    hits: list[SearchHit] = []
    if filters.q:
        hits = list(
            search_events(store, filters.q, since=filters.since, until=filters.until, limit=size)
        )
    return RunsPage(
        filters,
        counts,
        sum(counts.values()),
        runs,
        runs[-1].id if more else None,
        hits,
        marks,
    )


@dataclass
class TimelineRow:
    """One timeline line: an event, or consecutive text deltas folded into one row."""

    seq: int
    last_seq: int
    type: str
    at: datetime
    delta_ms: int | None
    summary: str

    @property
    def count(self) -> int:
        """How many events the row stands for."""
        return self.last_seq - self.seq + 1


def _summary(record: EventRecord) -> str:
    payload = payload_of(record)
    for key in ("type", "timestamp"):
        payload.pop(key, None)
    return value_summary(payload, 160)


def timeline(records: list[EventRecord]) -> list[TimelineRow]:
    """The rows of a timeline: delta-t to the previous row, text deltas folded together."""
    rows: list[TimelineRow] = []
    text: list[str] = []
    previous: datetime | None = None
    for record in records:
        at = event_time(record)
        last = rows[-1] if rows else None
        if (
            isinstance(record.event, TextDelta)
            and last is not None
            and last.type == "TextDelta"
            and last.last_seq == record.seq - 1
        ):
            text.append(record.event.delta)
            last.last_seq = record.seq
            last.summary = value_summary("".join(text), 160)
            continue
        delta = None if previous is None else round((at - previous).total_seconds() * 1000)
        previous = at
        if isinstance(record.event, TextDelta):
            text = [record.event.delta]
            rows.append(
                TimelineRow(record.seq, record.seq, record.type, at, delta, value_summary(text[0]))
            )
        else:
            rows.append(
                TimelineRow(record.seq, record.seq, record.type, at, delta, _summary(record))
            )
    return rows


@dataclass
class RunPage:
    """A run's page: record, summary, tool-call tree, timeline, and the sections others add.

    ``sections``: extra blocks by name (``lineage``, ``unresolved_tool_calls``) that a feature
    fills in :func:`run_page` and ``run.html`` renders under the summary when present
    (:mod:`eventlog.ui.run_sections`: each is there only when it has something to show).
    """

    record: RunRecord
    summary: RunSummary
    tree: list[IterationNode]
    rows: list[TimelineRow]
    last_seq: int
    #: the timeline shows events ``first_seq`` .. (``TIMELINE_PAGE`` of them); links page it
    first_seq: int = 1
    sections: dict[str, Any] = field(default_factory=dict)

    @property
    def earlier(self) -> int | None:
        """The first seq of the timeline page before this one (None: this is the first)."""
        return None if self.first_seq <= 1 else max(1, self.first_seq - TIMELINE_PAGE)

    @property
    def later(self) -> int | None:
        """The first seq of the timeline page after this one (None: this is the last)."""
        nxt = self.first_seq + TIMELINE_PAGE
        return nxt if nxt <= self.last_seq else None


#: Events per timeline page of a run (a 10k-event run's page stays small and fast).
TIMELINE_PAGE = 500


def run_page(store: RunStore, run_id: UUID, *, first_seq: int = 1) -> RunPage:
    """The run page: :func:`~eventlog.tools.story.load_run`, ``summarize``, ``build_tree``.

    The timeline holds ``TIMELINE_PAGE`` events from ``first_seq`` (the summary and the
    tree cover the whole run).
    """
    record, events = load_run(store, run_id)
    last = events[-1].seq if events else 0
    start = min(max(1, first_seq), max(1, last))
    window = [e for e in events[start - 1 : start - 1 + TIMELINE_PAGE] if e.seq >= start]
    sections: dict[str, Any] = {}
    lineage = lineage_section(store, run_id)
    if lineage is not None:
        sections["lineage"] = lineage
    unresolved = unresolved_section(store, run_id)
    if unresolved is not None:
        sections["unresolved_tool_calls"] = unresolved
    tree = build_tree(events)
    return RunPage(
        record,
        summarize(record, events, tree),
        tree,
        timeline(window),
        last,
        start,
        sections,
    )


def seq_href(run_id: UUID, seq: int) -> str:
    """The link to event ``seq`` of a run: the timeline page that holds it, at its row."""
    start = (max(seq, 1) - 1) // TIMELINE_PAGE * TIMELINE_PAGE + 1
    return f"/runs/{run_id}?from={start}#seq-{seq}"


@dataclass
class StatePage:
    """The time-travel view: the state after seq N and what event N changed."""

    seq: int
    type: str | None
    state: dict[str, Any]
    changes: list[FieldChange]


def state_at(store: RunStore, run_id: UUID, seq: int) -> StatePage:
    """The debugger's state after ``seq`` (0: before any event) and what event ``seq`` changed."""
    record = store.get_run(run_id)
    if record is None:
        raise RunNotFound(run_id)
    events = store.list_events(run_id, to_seq=seq) if seq > 0 else []
    state = DebugState.fold(record, events)
    steps = list(replay(record, events))
    last = steps[-1] if steps else None
    return StatePage(
        0 if last is None else last.seq,
        None if last is None else last.type,
        state.to_builtins(),
        [] if last is None else last.changes,
    )


def event_json(record: EventRecord) -> dict[str, Any]:
    """An event as JSON (what the timeline's expand shows and the live stream sends)."""
    return {
        "stream_id": str(record.run_id),
        "seq": record.seq,
        "position": record.position,
        "type": record.type,
        "recorded_at": record.recorded_at.isoformat(),
        "payload": payload_of(record),
    }


def pretty(value: Any) -> str:
    """JSON text of ``value``, indented (exact: the template escapes it)."""
    return json.dumps(msgspec.to_builtins(value), indent=2, ensure_ascii=False, default=str)


@dataclass
class SessionPage:
    """A session: its record, transcript (messages) and runs."""

    session: Session
    messages: list[TranscriptEntry]
    runs: list[RunRecord]


@dataclass
class TranscriptEntry:
    """One message of a transcript: its role, its text parts joined, the rest as JSON."""

    role: str
    text: str
    extra: dict[str, Any]


def transcript_entry(message: Any) -> TranscriptEntry:
    """A stored message as a transcript entry (text parts joined; other parts kept)."""
    data: dict[str, Any] = msgspec.to_builtins(message)
    role = str(data.pop("role", "?"))
    content = data.pop("content", [])
    texts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
    others = [p for p in content if not (isinstance(p, dict) and p.get("type") == "text")]
    if others:
        data["parts"] = others
    return TranscriptEntry(role, "\n".join(str(t) for t in texts), data)


def session_page(store: RunStore, session_id: UUID) -> SessionPage | None:
    """The session page (None: no such session)."""
    session = store.get_session(session_id)
    if session is None:
        return None
    return SessionPage(
        session,
        [transcript_entry(m) for m in store.list_messages(session_id)],
        store.list_runs(session_id)[-PAGE_SIZE:],
    )


def sessions_list(store: RunStore) -> list[Session]:
    """The newest sessions."""
    return store.list_sessions(limit=PAGE_SIZE)


@dataclass
class StreamPage:
    """A stream of another kind (LangGraph thread, Agents SDK session): record and timeline."""

    record: StreamRecord
    rows: list[TimelineRow]
    last_seq: int


def streams_page(store: RunStore) -> dict[str, list[StreamRecord]]:
    """Streams of other kinds than runs and sessions, by kind (as ``eventlog streams``)."""
    return {k: store.list_streams(k, limit=PAGE_SIZE) for k in store.list_stream_kinds()}


def stream_page(store: RunStore, stream_id: UUID) -> StreamPage | None:
    """A stream's page (None: no such stream)."""
    record = store.get_stream(stream_id)
    if record is None:
        return None
    events = store.read_stream(stream_id)
    return StreamPage(record, timeline(events), events[-1].seq if events else 0)


@dataclass
class HealthPage:
    """Store health: stats, projector status, consumers and their lag, verify when asked."""

    stats: Any
    projectors: list[Any]
    consumers: list[Any]
    problems: list[Any] | None


def health_page(store: RunStore, *, verify: bool) -> HealthPage:
    """The health page (``verify``: also run the full check, which reads everything)."""
    return HealthPage(
        store.stats(),
        store.projector_status(),
        store.consumers(),
        store.verify() if verify else None,
    )
