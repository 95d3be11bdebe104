"""The records the store returns, and the pure fold of a run's events.

:class:`Session`, :class:`RunRecord`, :class:`EventRecord`, :class:`RunState`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid5

import msgspec

from eventlog.model.events import (
    AnyEvent,
    Event,
    ModelStarted,
    RawEvent,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunStarted,
    RunStatusChanged,
    TokenUsage,
    UsageRecorded,
    event_type_name,
)
from eventlog.model.status import RunStatus

__all__ = [
    "RESERVED_KINDS",
    "EventRecord",
    "Execution",
    "ExecutionStatus",
    "RunRecord",
    "RunState",
    "Session",
    "SessionStats",
    "StreamRecord",
    "check_kind",
    "status_after",
    "stream_id_for",
]


class Session(msgspec.Struct, frozen=True):
    """A conversation that runs belong to (behest's ``Session``)."""

    id: UUID
    title: str
    model: str
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class RunRecord(msgspec.Struct, frozen=True):
    """A run: who runs it (provider/model), where (session) and its current status."""

    id: UUID
    session_id: UUID
    status: RunStatus
    provider: str
    model: str
    metadata: dict[str, Any]
    client_request_id: str | None
    created_at: datetime
    updated_at: datetime


class StreamRecord(msgspec.Struct, frozen=True):
    """A stream of another kind than a run or a session (a LangGraph thread, an SDK session).

    ``kind`` is its short lowercase kind name (``"agents.session"``); ``updated_at`` is the
    time of its last event (``created_at`` while it has none).
    """

    id: UUID
    kind: str
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


#: Kinds that name the store's own streams.
RESERVED_KINDS = frozenset({"run", "session"})
_KIND = re.compile(r"[a-z][a-z0-9_.\-]{0,63}")
#: The namespace of :func:`stream_id_for` (fixed forever: ids derived from it are stored).
_NAMESPACE = UUID("5b0f0c8e-8a4e-5d7a-9a43-0e7e1f2a3c4d")


def check_kind(kind: object) -> str:
    """``kind`` if it is a valid stream kind, else ``ValueError``/``TypeError`` saying why.

    >>> check_kind("langgraph.thread")
    'langgraph.thread'
    """
    if not isinstance(kind, str):
        raise TypeError(f"stream kind must be a str such as 'agents.session', got {kind!r}")
    if kind in RESERVED_KINDS:
        raise ValueError(
            f"stream kind {kind!r} is reserved for the store's own {kind}s; use "
            f"create_{kind}() for those, or another kind name (e.g. 'myapp.{kind}')"
        )
    if not _KIND.fullmatch(kind):
        raise ValueError(
            f"stream kind {kind!r} is not valid: use 1-64 lowercase letters, digits and "
            "`_ . -`, starting with a letter (e.g. 'langgraph.thread')"
        )
    return kind


def stream_id_for(kind: str, name: str) -> UUID:
    """A stable stream id for a string ``name`` within ``kind`` (a UUID 5; never changes).

    >>> stream_id_for("agents.session", "user-42") == stream_id_for("agents.session", "user-42")
    True
    >>> stream_id_for("agents.session", "a") == stream_id_for("langgraph.thread", "a")
    False
    """
    check_kind(kind)
    if not isinstance(name, str):
        raise TypeError(f"stream name must be a str, got {name!r}")
    return uuid5(_NAMESPACE, f"{kind}\x00{name}")


class EventRecord(msgspec.Struct, frozen=True, gc=False):
    """One stored event with its place in the run (or stream) and in the log.

    ``seq`` is its place in the stream (1, 2, 3, … gap-free), ``position`` its place in the
    whole log (dense, commit order), ``recorded_at`` when the store wrote it, ``version`` the
    schema version it was stored with (the event itself is in the current shape: older
    versions of registered types are upcast on read). ``run_id`` is the id of the stream -
    a run, a session or a stream of another kind. Like events, records are plain data and
    not tracked by the cycle collector (``gc=False``).
    """

    run_id: UUID
    seq: int
    position: int
    event: AnyEvent
    recorded_at: datetime
    event_id: UUID | None = None
    version: int = 1

    @property
    def type(self) -> str:
        """The event's stored type name (``"TextDelta"``, a registered name, a raw type)."""
        return event_type_name(self.event)


_STATUS_OF: dict[type, RunStatus] = {
    ModelStarted: RunStatus.CALLING_MODEL,
    RunStarted: RunStatus.SESSION_LOADED,
    RunCompleted: RunStatus.COMPLETED,
    RunFailed: RunStatus.FAILED,
    RunCancelled: RunStatus.CANCELLED,
}


def status_after(status: RunStatus, event: AnyEvent) -> RunStatus:
    """Return the status a run in ``status`` has after ``event`` (the fold's status rule).

    >>> from eventlog.model.events import RunCancelled
    >>> status_after(RunStatus.CALLING_MODEL, RunCancelled())
    <RunStatus.CANCELLED: 'cancelled'>
    """
    if type(event) is RunStatusChanged:
        return RunStatus(event.status)
    return _STATUS_OF.get(type(event), status)


#: Event types the fold must look at one by one (the others cannot change the status:
#: they set only the time, the count and the seq).
FOLD_SPECIAL: frozenset[type] = frozenset({*_STATUS_OF, RunStatusChanged, UsageRecorded, RawEvent})


class RunState(msgspec.Struct):
    """The fold of a run's events: what the run looks like after its last event.

    ``RunState.fold(record, events)`` is pure: the store's materialized state (what
    ``store.get_run_state`` returns) always equals a fresh fold of ``store.list_events``.

    >>> from datetime import UTC, datetime
    >>> from uuid import uuid4
    >>> from eventlog.model.events import ModelStarted, UsageRecorded, TokenUsage
    >>> now = datetime.now(UTC)
    >>> rec = RunRecord(uuid4(), uuid4(), RunStatus.PENDING, "openai", "gpt-4o", {}, None, now, now)
    >>> evs = [
    ...     EventRecord(rec.id, 1, 1, ModelStarted("openai", "gpt-4o", 1), now),
    ...     EventRecord(rec.id, 2, 2, UsageRecorded(TokenUsage(10, 5, 15)), now),
    ... ]
    >>> state = RunState.fold(rec, evs)
    >>> (state.status, state.iteration, state.total_usage.total_tokens, state.last_seq)
    (<RunStatus.CALLING_MODEL: 'calling_model'>, 1, 15, 2)
    """

    run_id: UUID
    session_id: UUID
    status: RunStatus
    provider: str
    model: str
    metadata: dict[str, Any]
    iteration: int = 0
    total_usage: TokenUsage = msgspec.field(default_factory=TokenUsage)
    last_finish: str | None = None
    last_error: str | None = None
    event_count: int = 0
    last_seq: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def initial(cls, record: RunRecord) -> RunState:
        """The state of a run that has no events yet."""
        return cls(
            run_id=record.id,
            session_id=record.session_id,
            status=RunStatus.PENDING,
            provider=record.provider,
            model=record.model,
            metadata=dict(record.metadata),
            created_at=record.created_at,
            updated_at=record.created_at,
        )

    @classmethod
    def fold(cls, record: RunRecord, events: Iterable[EventRecord]) -> RunState:
        """Fold ``events`` (in seq order) over the initial state of ``record``."""
        state = cls.initial(record)
        state.fold_in(events)
        return state

    def fold_in(self, events: Iterable[EventRecord]) -> None:
        """Apply ``events`` (in seq order) to this state, in place.

        Most events (text and tool deltas) change only ``updated_at``, ``event_count`` and
        ``last_seq``, which depend on the last event alone: only the events that change more
        go through the per-event rule, the rest are counted.
        """
        special = FOLD_SPECIAL
        last: EventRecord | None = None
        plain = 0
        for ev in events:
            last = ev
            if type(ev.event) in special:
                self._apply(ev)
            else:
                plain += 1
        if plain and last is not None and type(last.event) not in special:
            # the last event was a plain one: it sets the time and the seq
            event = last.event
            self.updated_at = event.timestamp if isinstance(event, Event) else last.recorded_at
            self.last_seq = last.seq
        self.event_count += plain

    def apply(self, record: EventRecord) -> RunState:
        """Return a new state: this one after ``record`` (``self`` is not changed)."""
        new = msgspec.structs.replace(self)
        new._apply(record)
        return new

    def _apply(self, record: EventRecord) -> None:
        event = record.event
        kind = type(event)
        if not isinstance(event, Event):  # raw data, or a registered type (no timestamp)
            self.updated_at = record.recorded_at
        else:
            self.updated_at = event.timestamp
            if kind in _STATUS_OF or kind is RunStatusChanged:
                if isinstance(event, RunStarted):
                    self.provider = event.provider
                    self.model = event.model
                elif isinstance(event, ModelStarted):
                    self.iteration = event.iteration
                elif isinstance(event, RunCompleted):
                    self.last_finish = event.finish_reason
                elif isinstance(event, RunFailed):
                    self.last_error = event.error
                self.status = status_after(self.status, event)
            elif kind is UsageRecorded:
                assert isinstance(event, UsageRecorded)
                self.total_usage = self.total_usage + event.usage
        self.event_count += 1
        self.last_seq = record.seq


class ExecutionStatus(StrEnum):
    """Where a tool execution is: started, or finished with success or failure."""

    PENDING = "pending"
    SUCCESS = "success"
    FAILED = "failed"


class Execution(msgspec.Struct):
    """One tool execution of a run, derived from ToolExecutionStarted/Finished events."""

    call_id: str
    tool_name: str
    status: ExecutionStatus
    duration_ms: int | None
    run_id: UUID


class SessionStats(msgspec.Struct, frozen=True):
    """What happened in a session: runs by status, tool calls, failures, token usage."""

    session_id: UUID
    runs_by_status: dict[str, int]
    total_runs: int
    tool_calls: int
    tool_failures: int
    total_usage: TokenUsage
