"""The records the store stores and returns: sessions, runs, streams, events, executions.

:class:`Session`, :class:`RunRecord`, :class:`StreamRecord`, :class:`EventRecord`,
:class:`Execution`, :class:`SessionStats`. A run's state (the fold of its events and the
lifecycle rule) is in :mod:`eventlog.model.state`.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid5

import msgspec

from eventlog.model.events import AnyEvent, TokenUsage, event_type_name
from eventlog.model.status import RunStatus

__all__ = [
    "RESERVED_KINDS",
    "EventRecord",
    "Execution",
    "ExecutionStatus",
    "Fork",
    "RunRecord",
    "Session",
    "SessionStats",
    "StreamRecord",
    "check_kind",
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
    """A run: who runs it (provider/model), where (session) and its current status.

    A fork (``fork_run``) names the run it forks, ``parent_run_id``, and ``fork_seq``: its
    events ``1..fork_seq`` are the parent's. Both are None for an ordinary run.
    """

    id: UUID
    session_id: UUID
    status: RunStatus
    provider: str
    model: str
    metadata: dict[str, Any]
    client_request_id: str | None
    created_at: datetime
    updated_at: datetime
    parent_run_id: UUID | None = None
    fork_seq: int | None = None


class Fork(msgspec.Struct, frozen=True):
    """One link of lineage: stream ``id`` forks ``parent_id`` at ``fork_seq``.

    The fork's events ``1..fork_seq`` are the parent's (shared, not copied).
    """

    id: UUID
    parent_id: UUID
    fork_seq: int


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
