"""The tool-effect ledger's data: each tool call's lifecycle, as a pure fold of a run's events.

A tool call moves ``requested`` (the model asked for it: ``ToolCallStarted``,
``ToolCallCompleted``; the streamed ``ToolCallDelta`` chunks in between change nothing the
ledger keeps, so it never reads them) -> ``executing`` (``ToolExecutionStarted``: the
runtime began to run it, its side effects may be happening) -> ``finished``
(``ToolExecutionFinished``, with ``outcome`` ``success`` or ``failure``). A call that is
``executing`` with no result is *unresolved*: after a crash nobody knows whether its effects
happened, so a runtime that resumes the run must check before running it again.

:func:`advance_call` is the one rule; the ``tool_ledger`` projector stores its result per call
and :func:`fold_calls` folds a list of events with it (what ``verify()`` and tests compare).

>>> from datetime import UTC, datetime
>>> from uuid import uuid4
>>> from eventlog.events import ToolCall, ToolCallCompleted, ToolExecutionStarted
>>> from eventlog.model.records import EventRecord
>>> rid, now = uuid4(), datetime.now(UTC)
>>> records = [
...     EventRecord(rid, 1, 1, ToolCallCompleted(ToolCall("c1", "send_mail", {"to": "a"})), now),
...     EventRecord(rid, 2, 2, ToolExecutionStarted("c1", "send_mail"), now),
... ]
>>> [(c.call_id, str(c.phase), c.arguments, c.started_seq) for c in fold_calls(records)]
[('c1', 'executing', {'to': 'a'}, 2)]
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any

import msgspec

from eventlog.model.events import (
    Failure,
    ToolCallCompleted,
    ToolCallStarted,
    ToolExecutionFinished,
    ToolExecutionStarted,
)
from eventlog.model.records import EventRecord

__all__ = [
    "LEDGER_EVENT_TYPES",
    "ToolCallEntry",
    "ToolCallPhase",
    "advance_call",
    "call_id_of",
    "fold_calls",
]

#: the event types that move a tool call
LEDGER_EVENT_TYPES: frozenset[str] = frozenset(
    {
        "ToolCallStarted",
        "ToolCallCompleted",
        "ToolExecutionStarted",
        "ToolExecutionFinished",
    }
)

_LedgerEvent = ToolCallStarted | ToolCallCompleted | ToolExecutionStarted | ToolExecutionFinished


class ToolCallPhase(StrEnum):
    """Where a tool call is in its lifecycle."""

    REQUESTED = "requested"
    EXECUTING = "executing"
    FINISHED = "finished"


class ToolCallEntry(msgspec.Struct):
    """One tool call of a run, as the ledger knows it.

    ``arguments`` is the completed call's JSON value (None until ``ToolCallCompleted``: the
    streamed argument deltas are not kept). ``started_seq``/``started_at``: the last
    ``ToolExecutionStarted``; ``outcome`` (``"success"``/``"failure"``) and ``error`` once
    finished. ``unresolved`` is True while it executes with no result.
    """

    call_id: str
    tool_name: str
    phase: ToolCallPhase
    requested_seq: int | None = None
    arguments: Any = None
    started_seq: int | None = None
    started_at: datetime | None = None
    finished_seq: int | None = None
    outcome: str | None = None
    error: str | None = None
    duration_ms: int | None = None

    @property
    def unresolved(self) -> bool:
        """Started executing and has no result: its side effects are unknown."""
        return self.phase == ToolCallPhase.EXECUTING


def call_id_of(event: object) -> str | None:
    """The tool call an event is about (None: not one of :data:`LEDGER_EVENT_TYPES`)."""
    if isinstance(event, ToolCallCompleted):
        return event.call.id
    if isinstance(event, ToolCallStarted | ToolExecutionStarted):
        return event.call_id
    if isinstance(event, ToolExecutionFinished):
        return event.call_id
    return None


def advance_call(entry: ToolCallEntry | None, record: EventRecord) -> ToolCallEntry | None:
    """The call after ``record`` (``entry``: the call before it, None if not seen yet).

    Returns None for an event that is not one of :data:`LEDGER_EVENT_TYPES`. The entry is
    changed in place when there is one.
    """
    event = record.event
    if not isinstance(event, _LedgerEvent):
        return None
    if entry is None:
        entry = ToolCallEntry(call_id_of(event) or "", "", ToolCallPhase.REQUESTED)
    if isinstance(event, ToolCallStarted):
        entry.tool_name = event.tool_name
        entry.requested_seq = entry.requested_seq or record.seq
    elif isinstance(event, ToolCallCompleted):
        entry.tool_name = event.call.name
        entry.arguments = event.call.arguments
        entry.requested_seq = entry.requested_seq or record.seq
    elif isinstance(event, ToolExecutionStarted):
        entry.tool_name = event.tool_name
        entry.phase = ToolCallPhase.EXECUTING
        entry.started_seq, entry.started_at = record.seq, record.recorded_at
        entry.finished_seq = entry.outcome = entry.error = entry.duration_ms = None
    else:
        entry.tool_name = event.tool_name
        entry.phase = ToolCallPhase.FINISHED
        entry.finished_seq = record.seq
        failed = isinstance(event.result, Failure)
        entry.outcome = "failure" if failed else "success"
        entry.error = event.result.error if isinstance(event.result, Failure) else None
        entry.duration_ms = event.duration_ms
    return entry


def fold_calls(records: Iterable[EventRecord]) -> list[ToolCallEntry]:
    """Every tool call of ``records`` (one run's events in seq order), by first appearance."""
    calls: dict[str, ToolCallEntry] = {}
    for record in records:
        call_id = call_id_of(record.event)
        if call_id is None:
            continue
        entry = advance_call(calls.get(call_id), record)
        if entry is not None:
            calls[call_id] = entry
    return list(calls.values())
