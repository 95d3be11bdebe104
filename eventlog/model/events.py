"""The run events: one frozen msgspec Struct per variant, tagged by class name.

Every event of behest's ``AgentEvent`` is here (17 variants) plus :class:`RunStatusChanged`.
``run_id`` is carried by the stored envelope (see :class:`~eventlog.model.records.EventRecord`), not
by the payload; ``timestamp`` is optional and defaults to the time the event object was made.

>>> from eventlog.events import TextDelta, ToolCall, ToolCallCompleted
>>> TextDelta("Hel").delta
'Hel'
>>> ToolCallCompleted(ToolCall(id="c1", name="search", arguments={"q": "lmdb"})).call.name
'search'

Schema evolution rules (each stored payload names its type and version): new fields get
defaults; never reorder, rename or retype a field. An event type this code does not know reads
back as :class:`RawEvent` (type name, version, decoded mapping) instead of raising.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, TypeAlias
from uuid import UUID

import msgspec

from eventlog.model.status import RunStatus

__all__ = [
    "EVENT_NAMES",
    "EVENT_TYPES",
    "AnyEvent",
    "AssistantMessageCommitted",
    "CompactionCircuitOpened",
    "ContextBuilt",
    "DoomLoopDetected",
    "Event",
    "Failure",
    "FinishReason",
    "ModelStarted",
    "RawEvent",
    "RunCancelled",
    "RunCompleted",
    "RunFailed",
    "RunStarted",
    "RunStatusChanged",
    "Success",
    "TextDelta",
    "TokenUsage",
    "ToolCall",
    "ToolCallCompleted",
    "ToolCallDelta",
    "ToolCallStarted",
    "ToolExecutionFinished",
    "ToolExecutionStarted",
    "ToolMessageCommitted",
    "UsageRecorded",
    "event_type_name",
    "event_version",
]


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


class TokenUsage(msgspec.Struct, frozen=True):
    """Token counts of one model call (or a sum of them).

    >>> TokenUsage(10, 5, 15) + TokenUsage(1, 1, 2)
    TokenUsage(input_tokens=11, output_tokens=6, total_tokens=17)
    """

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.total_tokens + other.total_tokens,
        )


class ToolCall(msgspec.Struct, frozen=True):
    """A tool call requested by the model: ``arguments`` is any JSON value."""

    id: str
    name: str
    arguments: Any = None


class Success(msgspec.Struct, frozen=True, tag=True, tag_field="kind"):
    """A tool execution that returned ``output`` (any JSON value)."""

    output: Any = None


class Failure(msgspec.Struct, frozen=True, tag=True, tag_field="kind"):
    """A tool execution that failed with ``error``."""

    error: str


class FinishReason(StrEnum):
    """The finish reasons providers report; any other string is kept as-is (behest's unknown)."""

    STOP = "stop"
    TOOL_CALLS = "tool_calls"
    LENGTH = "length"
    CONTENT_FILTER = "content_filter"
    ERROR = "error"


class Event(msgspec.Struct, frozen=True, kw_only=True, tag=True, tag_field="type", gc=False):
    """Base class of every event type. The tag (``type``) is the class name.

    Events are plain data, so they are not tracked by Python's cycle collector
    (``gc=False``: a replay of 10k events skips ~20% of work). Do not put an object that
    refers back to the event (or to its record) in a payload field: such a cycle is never
    collected.
    """

    version: ClassVar[int] = 1
    timestamp: datetime = msgspec.field(default_factory=utcnow)


class RunStarted(Event, frozen=True):
    """The run began in ``session_id`` with this provider and model."""

    session_id: UUID
    provider: str
    model: str


class ContextBuilt(Event, frozen=True):
    """The prompt context was assembled from ``message_count`` messages."""

    message_count: int


class ModelStarted(Event, frozen=True):
    """A model call started (iteration ``iteration`` of the agent loop)."""

    provider: str
    model: str
    iteration: int


class TextDelta(Event, frozen=True):
    """A chunk of streamed assistant text."""

    delta: str


class ToolCallStarted(Event, frozen=True):
    """The model started emitting a tool call."""

    call_id: str
    tool_name: str


class ToolCallDelta(Event, frozen=True):
    """A chunk of a streamed tool call's arguments."""

    call_id: str
    delta: str


class ToolCallCompleted(Event, frozen=True):
    """The model finished a tool call."""

    call: ToolCall


class ToolExecutionStarted(Event, frozen=True):
    """The runtime started executing a tool."""

    call_id: str
    tool_name: str


class ToolExecutionFinished(Event, frozen=True):
    """A tool execution ended with ``Success(output)`` or ``Failure(error)``."""

    call_id: str
    tool_name: str
    result: Success | Failure
    duration_ms: int


class AssistantMessageCommitted(Event, frozen=True):
    """The assistant message was persisted to the session."""

    message_id: UUID


class ToolMessageCommitted(Event, frozen=True):
    """A tool result message was persisted to the session."""

    message_id: UUID


class UsageRecorded(Event, frozen=True):
    """Token usage of one model call; the run state sums them."""

    usage: TokenUsage


class RunCompleted(Event, frozen=True):
    """The run finished; ``finish_reason`` is a :class:`FinishReason` value or any string."""

    finish_reason: str
    iterations: int


class RunFailed(Event, frozen=True):
    """The run failed with ``error``."""

    error: str


class RunCancelled(Event, frozen=True):
    """The run was cancelled."""


class DoomLoopDetected(Event, frozen=True):
    """The runtime detected the agent repeating itself."""

    description: str


class CompactionCircuitOpened(Event, frozen=True):
    """Context compaction failed ``consecutive_failures`` times and was switched off."""

    consecutive_failures: int


class RunStatusChanged(Event, frozen=True):
    """The run moved to ``status`` (what ``store.update_run_status`` appends)."""

    status: RunStatus


class RawEvent(msgspec.Struct, frozen=True):
    """An event whose type this code does not know (written by a newer version, or a plugin).

    It keeps the stored type name, schema version and the decoded payload mapping, so listing,
    exporting and replaying never crash on it. Appending a ``RawEvent`` stores exactly that
    payload again (this is how an export round-trips through import).
    """

    type: str
    version: int
    data: dict[str, Any]


#: What a stream holds: a built-in event, a registered event type (any msgspec Struct
#: registered with :func:`eventlog.event_type`) or raw data of a type this code does not know.
AnyEvent: TypeAlias = Event | RawEvent | msgspec.Struct

_BUILTIN: tuple[type[Event], ...] = (
    RunStarted,
    ContextBuilt,
    ModelStarted,
    TextDelta,
    ToolCallStarted,
    ToolCallDelta,
    ToolCallCompleted,
    ToolExecutionStarted,
    ToolExecutionFinished,
    AssistantMessageCommitted,
    ToolMessageCommitted,
    UsageRecorded,
    RunCompleted,
    RunFailed,
    RunCancelled,
    DoomLoopDetected,
    CompactionCircuitOpened,
    RunStatusChanged,
)

#: Every built-in event type by its stored type name (its class name; tagged Structs).
EVENT_TYPES: dict[str, type[Event]] = {cls.__name__: cls for cls in _BUILTIN}

#: The stored ``(type name, version)`` of every event class: the built-ins and the types
#: registered with :func:`eventlog.event_type` (see :mod:`eventlog.model.registry`).
EVENT_NAMES: dict[type, tuple[str, int]] = {cls: (cls.__name__, cls.version) for cls in _BUILTIN}


def event_type_name(event: AnyEvent) -> str:
    """Return the stored type name of ``event`` (registered name, or a raw event's type).

    >>> event_type_name(TextDelta("hi")), event_type_name(RawEvent("Later", 2, {}))
    ('TextDelta', 'Later')
    """
    if isinstance(event, RawEvent):
        return event.type
    cls = type(event)
    info = EVENT_NAMES.get(cls)
    return cls.__name__ if info is None else info[0]


def event_version(event: AnyEvent) -> int:
    """Return the schema version ``event`` is stored with (a raw event's recorded version).

    >>> event_version(TextDelta("hi")), event_version(RawEvent("Later", 2, {}))
    (1, 2)
    """
    if isinstance(event, RawEvent):
        return event.version
    info = EVENT_NAMES.get(type(event))
    return 1 if info is None else info[1]
