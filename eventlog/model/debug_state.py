"""What a debugger wants to see of a run at seq N: its state, pending tool calls, text so far.

:class:`DebugState` wraps the stored fold (:class:`~eventlog.model.state.RunState`, unchanged)
with two things the stored state leaves out: the assistant text of the current model call and
the tool calls that are requested or running but not finished. :func:`replay` folds a run
event by event and says, for each event, which fields it changed, from what to what
(``eventlog replay --diff``). Pure functions of the record and the events: nothing runs again.

>>> from datetime import UTC, datetime
>>> from uuid import uuid4
>>> from eventlog.events import ModelStarted, TextDelta, ToolCallStarted
>>> from eventlog.model.records import EventRecord, RunRecord
>>> from eventlog.model.status import RunStatus
>>> now = datetime.now(UTC)
>>> rec = RunRecord(uuid4(), uuid4(), RunStatus.PENDING, "openai", "gpt-4o", {}, None, now, now)
>>> evs = [EventRecord(rec.id, i + 1, i + 1, e, now) for i, e in enumerate([
...     ModelStarted("openai", "gpt-4o", 1), TextDelta("Let me "), TextDelta("look."),
...     ToolCallStarted("c1", "search"),
... ])]
>>> state = DebugState.fold(rec, evs)
>>> state.assistant_text, [(p.call_id, p.phase) for p in state.pending_tool_calls]
('Let me look.', [('c1', 'streaming')])
>>> [(s.seq, [(c.field, c.old, c.new) for c in s.changes]) for s in replay(rec, evs)][2]
(3, [('assistant_text', 'Let me ', 'Let me look.')])
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import msgspec

from eventlog.model.events import (
    ModelStarted,
    TextDelta,
    ToolCallCompleted,
    ToolCallDelta,
    ToolCallStarted,
    ToolExecutionFinished,
    ToolExecutionStarted,
)
from eventlog.model.records import EventRecord, RunRecord
from eventlog.model.state import RunState

__all__ = [
    "BOOKKEEPING_FIELDS",
    "DebugState",
    "FieldChange",
    "PendingToolCall",
    "ReplayStep",
    "replay",
]

#: Fields every event changes (count, last seq, time): :func:`replay` leaves them out of the
#: changes, since the event itself says them.
BOOKKEEPING_FIELDS = frozenset({"event_count", "last_seq", "updated_at"})


class PendingToolCall(msgspec.Struct):
    """A tool call not finished yet.

    ``phase``: ``"streaming"`` (the model is emitting its arguments: ``arguments`` is the text
    so far), ``"requested"`` (complete: ``arguments`` is the JSON value) or ``"running"``
    (its execution started).
    """

    call_id: str
    tool_name: str
    phase: str
    arguments: Any = None


class DebugState(msgspec.Struct):
    """The stored run state plus the assistant text so far and the pending tool calls."""

    run: RunState
    assistant_text: str = ""
    pending_tool_calls: list[PendingToolCall] = msgspec.field(default_factory=list)

    @classmethod
    def initial(cls, record: RunRecord) -> DebugState:
        """The state of ``record``'s run before its first event."""
        return cls(RunState.initial(record))

    @classmethod
    def fold(cls, record: RunRecord, events: Iterable[EventRecord]) -> DebugState:
        """The state after ``events`` (in seq order)."""
        state = cls.initial(record)
        for ev in events:
            state = state.apply(ev)
        return state

    def apply(self, record: EventRecord) -> DebugState:
        """A new state: this one after ``record`` (``self`` is not changed)."""
        event = record.event
        text = self.assistant_text
        pending = {p.call_id: p for p in self.pending_tool_calls}
        if isinstance(event, ModelStarted):
            text = ""
        elif isinstance(event, TextDelta):
            text += event.delta
        elif isinstance(event, ToolCallStarted):
            pending[event.call_id] = PendingToolCall(
                event.call_id, event.tool_name, "streaming", ""
            )
        elif isinstance(event, ToolCallDelta):
            old = pending.get(event.call_id)
            if old is not None and old.phase == "streaming":
                args = old.arguments if isinstance(old.arguments, str) else ""
                pending[event.call_id] = PendingToolCall(
                    old.call_id, old.tool_name, "streaming", args + event.delta
                )
        elif isinstance(event, ToolCallCompleted):
            call = event.call
            pending[call.id] = PendingToolCall(call.id, call.name, "requested", call.arguments)
        elif isinstance(event, ToolExecutionStarted):
            old = pending.get(event.call_id)
            pending[event.call_id] = PendingToolCall(
                event.call_id, event.tool_name, "running", None if old is None else old.arguments
            )
        elif isinstance(event, ToolExecutionFinished):
            pending.pop(event.call_id, None)
        return DebugState(self.run.apply(record), text, list(pending.values()))

    def fields(self) -> dict[str, Any]:
        """The state as one flat mapping of JSON builtins, what :func:`replay` compares.

        Nested mappings become ``a.b`` keys (``total_usage.total_tokens``) and each pending
        tool call its own ``pending_tool_calls.<call id>`` key, so a change names what moved.
        """
        out: dict[str, Any] = {}
        run = msgspec.to_builtins(self.run)
        for key, value in run.items():
            if isinstance(value, dict) and key != "metadata":
                for sub, inner in value.items():
                    out[f"{key}.{sub}"] = inner
            else:
                out[key] = value
        out["assistant_text"] = self.assistant_text
        for call in self.pending_tool_calls:
            out[f"pending_tool_calls.{call.call_id}"] = {
                "tool_name": call.tool_name,
                "phase": call.phase,
                "arguments": msgspec.to_builtins(call.arguments),
            }
        return out

    def to_builtins(self) -> dict[str, Any]:
        """The run state's fields with ``assistant_text`` and ``pending_tool_calls`` (JSON)."""
        out: dict[str, Any] = msgspec.to_builtins(self.run)
        out["assistant_text"] = self.assistant_text
        out["pending_tool_calls"] = msgspec.to_builtins(self.pending_tool_calls)
        return out


class FieldChange(msgspec.Struct):
    """One field an event changed: its name (``total_usage.total_tokens``), old and new value."""

    field: str
    old: Any
    new: Any


class ReplayStep(msgspec.Struct):
    """One event of a replay and the fields it changed (bookkeeping fields left out)."""

    seq: int
    position: int
    type: str
    changes: list[FieldChange]


def replay(
    record: RunRecord,
    events: Iterable[EventRecord],
    *,
    include_bookkeeping: bool = False,
) -> Iterator[ReplayStep]:
    """Fold ``events`` one by one; yield each event with the fields it changed, old -> new.

    ``event_count``, ``last_seq`` and ``updated_at`` change with every event and are left
    out unless ``include_bookkeeping``. An event that changes nothing else yields a step with
    no changes. A pending tool call is ``pending_tool_calls.<call id>``: ``old`` None when it
    appears, ``new`` None when it finishes.
    """
    state = DebugState.initial(record)
    before = state.fields()
    for ev in events:
        state = state.apply(ev)
        after = state.fields()
        keys = list(after) + [k for k in before if k not in after]  # gone: new is None
        changes = [
            FieldChange(key, before.get(key), after.get(key))
            for key in keys
            if before.get(key) != after.get(key)
            and (include_bookkeeping or key not in BOOKKEEPING_FIELDS)
        ]
        yield ReplayStep(ev.seq, ev.position, ev.type, changes)
        before = after
