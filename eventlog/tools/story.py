"""The story of a run: its summary and its tool-call tree, as data (what ``eventlog show`` prints).

:func:`summarize` and :func:`build_tree` are pure functions of a run's record and events;
:func:`run_summary`, :func:`tool_tree` and :func:`run_story` read them from a store (anything
with ``get_run`` and ``list_events``: a :class:`~eventlog.RunStore`). Every result is a msgspec
Struct, so ``msgspec.to_builtins`` makes it JSON (``eventlog show --json``), and a viewer can
render the same data.

>>> from eventlog import RunStore
>>> from eventlog.events import (
...     ModelStarted, RunFailed, RunStarted, ToolCall, ToolCallCompleted, ToolExecutionFinished,
...     ToolExecutionStarted, Failure, TokenUsage, UsageRecorded,
... )
>>> store = RunStore.in_memory()
>>> sid = store.ensure_session()
>>> run = store.create_run(sid, provider="openai", model="gpt-4o")
>>> _ = store.append_events(run.id, [
...     RunStarted(sid, "openai", "gpt-4o"),
...     ModelStarted("openai", "gpt-4o", 1),
...     ToolCallCompleted(ToolCall("c1", "run_tests", {"path": "tests/"})),
...     UsageRecorded(TokenUsage(100, 20, 120)),
...     ToolExecutionStarted("c1", "run_tests"),
...     ToolExecutionFinished("c1", "run_tests", Failure("timed out"), 30000),
...     RunFailed("run_tests timed out"),
... ])
>>> s = run_summary(store, run.id)
>>> (s.status, s.model_calls, s.usage.total_tokens, s.tool_calls, s.tool_failures, s.error)
('failed', 1, 120, 1, 1, 'run_tests timed out')
>>> call = tool_tree(store, run.id)[0].model_calls[0].tool_calls[0]
>>> (call.tool_name, call.arguments_summary, call.outcome, call.error, call.duration_ms)
('run_tests', 'path="tests/"', 'failure', 'timed out', 30000)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

import msgspec

from eventlog.errors import RunNotFound
from eventlog.model.events import (
    Event,
    Failure,
    ModelStarted,
    RawEvent,
    RunCancelled,
    RunCompleted,
    RunFailed,
    TextDelta,
    TokenUsage,
    ToolCallCompleted,
    ToolCallDelta,
    ToolCallStarted,
    ToolExecutionFinished,
    ToolExecutionStarted,
    UsageRecorded,
)
from eventlog.model.records import EventRecord, RunRecord
from eventlog.model.state import RunState

__all__ = [
    "IterationNode",
    "ModelCallNode",
    "RunReader",
    "RunStory",
    "RunSummary",
    "ToolCallNode",
    "build_tree",
    "event_time",
    "load_run",
    "payload_of",
    "run_story",
    "run_summary",
    "summarize",
    "tool_tree",
    "value_summary",
]


class RunReader(Protocol):
    """What the story needs from a store: a :class:`~eventlog.RunStore` is one."""

    def get_run(self, run_id: UUID | str, /) -> RunRecord | None:
        """The run's record, or None."""
        ...

    def list_events(
        self,
        run_id: UUID | str,
        /,
        *,
        after_seq: int = 0,
        to_seq: int | None = None,
        limit: int | None = None,
    ) -> list[EventRecord]:
        """The run's events in seq order."""
        ...


class ToolCallNode(msgspec.Struct):
    """One tool call: what the model asked for and what running it gave.

    ``outcome`` is ``"success"``, ``"failure"``, ``"running"`` (started, not finished) or
    ``"not run"`` (requested, never started); ``duration_ms`` is the runtime's own figure.
    """

    call_id: str
    tool_name: str
    seq: int
    arguments: Any = None
    arguments_summary: str = ""
    outcome: str = "not run"
    error: str | None = None
    output_summary: str | None = None
    duration_ms: int | None = None


class ModelCallNode(msgspec.Struct):
    """One model call (a ``ModelStarted`` event) and what it produced.

    ``duration_ms`` runs from its start to its last output (text, tool call or usage);
    ``text`` is the assistant text it streamed.
    """

    seq: int
    iteration: int
    provider: str
    model: str
    started_at: datetime
    duration_ms: int | None = None
    text: str = ""
    usage: TokenUsage | None = None
    tool_calls: list[ToolCallNode] = msgspec.field(default_factory=list)


class IterationNode(msgspec.Struct):
    """One iteration of the agent loop: its model calls (usually one; more on retries)."""

    iteration: int
    model_calls: list[ModelCallNode] = msgspec.field(default_factory=list)


class RunSummary(msgspec.Struct):
    """A run at a glance: status, times, iterations, model calls, tokens, tools, the error.

    ``ended_at`` is the time of the event that ended the run (None while it runs);
    ``duration_ms`` spans the first event to the end (or to the last event so far).
    """

    run_id: UUID
    session_id: UUID
    status: str
    provider: str
    model: str
    metadata: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    last_event_at: datetime | None
    duration_ms: int | None
    events: int
    iterations: int
    model_calls: int
    usage: TokenUsage
    tool_calls: int
    tool_failures: int
    failed_tools: list[str]
    tool_time_ms: int
    finish_reason: str | None
    error: str | None


class RunStory(msgspec.Struct):
    """A run's summary and its tool-call tree together (``eventlog show --json``)."""

    summary: RunSummary
    tree: list[IterationNode]


def event_time(record: EventRecord) -> datetime:
    """When the event happened: its own timestamp, or the time it was stored (raw/custom)."""
    event = record.event
    return event.timestamp if isinstance(event, Event) else record.recorded_at


def payload_of(record: EventRecord) -> dict[str, Any]:
    """The event's payload as JSON builtins (a raw event's stored mapping as it is)."""
    event = record.event
    if isinstance(event, RawEvent):
        return dict(event.data)
    data = msgspec.to_builtins(event)
    return data if isinstance(data, dict) else {"value": data}


def value_summary(value: Any, width: int = 60) -> str:
    """A short one-line text for a JSON value: ``k=v`` pairs for a mapping, JSON otherwise.

    >>> value_summary({"q": "lmdb", "limit": 5})
    'q="lmdb" limit=5'
    >>> value_summary("x" * 100, width=10)
    '"xxxxxxxx…'
    """
    if isinstance(value, dict):
        text = " ".join(f"{k}={_json(v)}" for k, v in value.items())
    else:
        text = _json(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _ms(start: datetime, end: datetime) -> int:
    return max(0, round((end - start).total_seconds() * 1000))


def build_tree(events: Iterable[EventRecord]) -> list[IterationNode]:
    """The tool-call tree of a run's events: iteration -> model call -> tool calls.

    Tool events before the first model call (or of a call id no model call requested) hang
    on a model call of iteration 0 with an empty model name, so nothing is lost.
    """
    iterations: list[IterationNode] = []
    calls: dict[str, ToolCallNode] = {}
    current: ModelCallNode | None = None

    def model_call(record: EventRecord) -> ModelCallNode:
        nonlocal current
        if current is None:
            current = ModelCallNode(record.seq, 0, "", "", event_time(record))
            iterations.append(IterationNode(0, [current]))
        return current

    def tool_call(record: EventRecord, call_id: str, name: str) -> ToolCallNode:
        node = calls.get(call_id)
        if node is None:
            node = calls[call_id] = ToolCallNode(call_id, name, record.seq)
            model_call(record).tool_calls.append(node)
        return node

    def produced(record: EventRecord) -> None:
        if current is not None:
            current.duration_ms = _ms(current.started_at, event_time(record))

    for record in events:
        event = record.event
        if isinstance(event, ModelStarted):
            current = ModelCallNode(
                record.seq, event.iteration, event.provider, event.model, event_time(record)
            )
            if not iterations or iterations[-1].iteration != event.iteration:
                iterations.append(IterationNode(event.iteration))
            iterations[-1].model_calls.append(current)
        elif isinstance(event, TextDelta):
            model_call(record).text += event.delta
            produced(record)
        elif isinstance(event, ToolCallStarted):
            tool_call(record, event.call_id, event.tool_name)
            produced(record)
        elif isinstance(event, ToolCallDelta):
            produced(record)
        elif isinstance(event, ToolCallCompleted):
            node = tool_call(record, event.call.id, event.call.name)
            node.arguments = event.call.arguments
            node.arguments_summary = value_summary(event.call.arguments)
            produced(record)
        elif isinstance(event, UsageRecorded):
            mc = model_call(record)
            mc.usage = event.usage if mc.usage is None else mc.usage + event.usage
            produced(record)
        elif isinstance(event, ToolExecutionStarted):
            node = tool_call(record, event.call_id, event.tool_name)
            node.outcome = "running"
        elif isinstance(event, ToolExecutionFinished):
            node = tool_call(record, event.call_id, event.tool_name)
            node.duration_ms = event.duration_ms
            if isinstance(event.result, Failure):
                node.outcome, node.error = "failure", event.result.error
            else:
                node.outcome = "success"
                node.output_summary = value_summary(event.result.output)
    return iterations


def summarize(
    record: RunRecord,
    events: Sequence[EventRecord],
    tree: list[IterationNode] | None = None,
) -> RunSummary:
    """The summary of a run from its record and all its events (in seq order).

    ``tree``: the events' :func:`build_tree`, when the caller has it already (it is not
    built again).
    """
    state = RunState.fold(record, events)
    if tree is None:
        tree = build_tree(events)
    model_calls = [mc for it in tree for mc in it.model_calls if mc.model or mc.iteration]
    tools = [tc for it in tree for mc in it.model_calls for tc in mc.tool_calls]
    failed = [tc for tc in tools if tc.outcome == "failure"]
    started = event_time(events[0]) if events else None
    last = event_time(events[-1]) if events else None
    ended = None
    for ev in reversed(events):
        if isinstance(ev.event, RunCompleted | RunFailed | RunCancelled):
            ended = event_time(ev)
            break
    if ended is None and state.status.value in ("completed", "failed", "cancelled") and events:
        ended = last  # ended by a RunStatusChanged
    end = ended or last
    return RunSummary(
        run_id=record.id,
        session_id=record.session_id,
        status=state.status.value,
        provider=state.provider,
        model=state.model,
        metadata=dict(record.metadata),
        created_at=record.created_at,
        started_at=started,
        ended_at=ended,
        last_event_at=last,
        duration_ms=None if started is None or end is None else _ms(started, end),
        events=len(events),
        iterations=max([state.iteration, *(it.iteration for it in tree)]),
        model_calls=len(model_calls),
        usage=state.total_usage,
        tool_calls=len(tools),
        tool_failures=len(failed),
        failed_tools=list(dict.fromkeys(tc.tool_name for tc in failed)),
        tool_time_ms=sum(tc.duration_ms or 0 for tc in tools),
        finish_reason=state.last_finish,
        error=state.last_error,
    )


def load_run(reader: RunReader, run_id: UUID | str) -> tuple[RunRecord, list[EventRecord]]:
    """The run's record and all its events (``RunNotFound`` if there is no such run)."""
    record = reader.get_run(run_id)
    if record is None:
        raise RunNotFound(run_id if isinstance(run_id, UUID) else UUID(str(run_id)))
    return record, reader.list_events(record.id)


def run_summary(reader: RunReader, run_id: UUID | str) -> RunSummary:
    """The summary of the run ``run_id`` (``RunNotFound`` if there is none)."""
    return summarize(*load_run(reader, run_id))


def tool_tree(reader: RunReader, run_id: UUID | str) -> list[IterationNode]:
    """The tool-call tree of the run ``run_id`` (``RunNotFound`` if there is none)."""
    return build_tree(load_run(reader, run_id)[1])


def run_story(reader: RunReader, run_id: UUID | str) -> RunStory:
    """The summary and the tree of the run ``run_id``, from one read of its events."""
    record, events = load_run(reader, run_id)
    tree = build_tree(events)
    return RunStory(summarize(record, events, tree), tree)
