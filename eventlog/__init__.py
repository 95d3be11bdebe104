"""eventlog: an embedded event-sourcing engine for agent runtimes.

Every run is a stream of events with gap-free sequence numbers in one append-only log on LMDB;
the run state is kept exactly consistent with the log.

>>> from eventlog import RunStore, RunStatus
>>> from eventlog.events import ModelStarted, RunCompleted
>>> store = RunStore.in_memory()
>>> run = store.create_run(store.ensure_session(), provider="openai", model="gpt-4o")
>>> _ = store.append_events(run.id, [ModelStarted("openai", "gpt-4o", 1), RunCompleted("stop", 1)])
>>> store.get_run(run.id).status == RunStatus.COMPLETED
True

The names below load on first use (``from eventlog import RunStore`` imports the store then):
``import eventlog`` alone costs almost nothing, and asyncio, PostgreSQL's driver and the agent
frameworks load only for the code that uses them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from eventlog.errors import (
    AckError,
    AlreadyExistsError,
    ArtifactNotFound,
    ArtifactTooLargeError,
    ConcurrencyError,
    ConfigError,
    ConsumerNotFound,
    CopyMismatchError,
    CorruptRecordError,
    EmbeddingDimensionError,
    EmbeddingsUnavailableError,
    EventFileError,
    EventLogError,
    EventTooLargeError,
    ForkPointError,
    InvalidArtifactName,
    InvalidTransition,
    InvalidVectorError,
    NestingTooDeepError,
    ProjectionError,
    ProjectionTimeoutError,
    ProjectorFailedError,
    ReplayEditError,
    RunHasForks,
    RunNotFound,
    SessionNotFound,
    StoreBusyError,
    StoreClosedError,
    StoreError,
    StoreFullError,
    StreamHasForks,
    StreamKindError,
    StreamNotFound,
)

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ loads each name
    from eventlog.engine.appends import AppendRequest
    from eventlog.engine.protocols import ProjectionReader, ProjectionTx, Projector
    from eventlog.live.consumers import Ack, ConsumerInfo
    from eventlog.live.subscriptions import Subscription
    from eventlog.model import registry
    from eventlog.model.artifacts import ArtifactRecord
    from eventlog.model.embeddings import EmbeddingHit, EmbeddingRecord
    from eventlog.model.events import RawEvent
    from eventlog.model.limits import MAX_NESTING_DEPTH
    from eventlog.model.messages import (
        AssistantMessage,
        ImageUrlPart,
        JsonPart,
        Message,
        SystemMessage,
        TextPart,
        ToolMessage,
        UserMessage,
    )
    from eventlog.model.records import (
        EventRecord,
        Execution,
        ExecutionStatus,
        Fork,
        RunRecord,
        Session,
        SessionStats,
        StreamRecord,
        stream_id_for,
    )
    from eventlog.model.registry import event_type, register_upcaster
    from eventlog.model.retention import PrunedRange, PruneReport
    from eventlog.model.state import RunState
    from eventlog.model.status import RunStatus
    from eventlog.model.tool_calls import ToolCallEntry, ToolCallPhase
    from eventlog.storage.codec import MAX_EVENT_BYTES
    from eventlog.storage.config import PostgresConfig, StoreConfig
    from eventlog.store.async_run_store import AsyncRunStore
    from eventlog.store.plans import ProjectorStatus, StoreStats
    from eventlog.store.run_store import RunStore
    from eventlog.tools.copy_store import CopyReport, copy_store
    from eventlog.tools.jsonl import ImportFileError, ImportSummary, IncompleteExportError
    from eventlog.tools.verify import Problem

__version__ = "0.1.0"

__all__ = [
    "MAX_EVENT_BYTES",
    "MAX_NESTING_DEPTH",
    "Ack",
    "AckError",
    "AlreadyExistsError",
    "AppendRequest",
    "ArtifactNotFound",
    "ArtifactRecord",
    "ArtifactTooLargeError",
    "AssistantMessage",
    "AsyncRunStore",
    "ConcurrencyError",
    "ConfigError",
    "ConsumerInfo",
    "ConsumerNotFound",
    "CopyMismatchError",
    "CopyReport",
    "CorruptRecordError",
    "EventFileError",
    "EmbeddingDimensionError",
    "EmbeddingHit",
    "EmbeddingRecord",
    "EmbeddingsUnavailableError",
    "EventLogError",
    "EventRecord",
    "EventTooLargeError",
    "InvalidArtifactName",
    "Execution",
    "ExecutionStatus",
    "Fork",
    "ForkPointError",
    "ImageUrlPart",
    "ImportFileError",
    "ImportSummary",
    "IncompleteExportError",
    "InvalidTransition",
    "InvalidVectorError",
    "JsonPart",
    "Message",
    "NestingTooDeepError",
    "PostgresConfig",
    "Problem",
    "PruneReport",
    "PrunedRange",
    "ProjectionError",
    "ProjectionReader",
    "ProjectionTimeoutError",
    "ProjectionTx",
    "Projector",
    "ProjectorFailedError",
    "ProjectorStatus",
    "RawEvent",
    "ReplayEditError",
    "RunHasForks",
    "RunNotFound",
    "RunRecord",
    "RunState",
    "RunStatus",
    "RunStore",
    "Session",
    "SessionNotFound",
    "SessionStats",
    "StoreBusyError",
    "StoreClosedError",
    "StoreConfig",
    "StoreError",
    "StoreFullError",
    "StoreStats",
    "StreamHasForks",
    "StreamKindError",
    "StreamNotFound",
    "StreamRecord",
    "Subscription",
    "SystemMessage",
    "TextPart",
    "ToolCallEntry",
    "ToolCallPhase",
    "ToolMessage",
    "UserMessage",
    "copy_store",
    "event_type",
    "register_upcaster",
    "registry",
    "stream_id_for",
]

#: the names that load on first use, by module: the same as the TYPE_CHECKING imports above
#: (tests/architecture/test_startup.py checks that the two agree)
_LAZY_FROM: dict[str, tuple[str, ...]] = {
    "eventlog.engine.appends": ("AppendRequest",),
    "eventlog.engine.protocols": ("ProjectionReader", "ProjectionTx", "Projector"),
    "eventlog.live.consumers": ("Ack", "ConsumerInfo"),
    "eventlog.live.subscriptions": ("Subscription",),
    "eventlog.model": ("registry",),
    "eventlog.model.artifacts": ("ArtifactRecord",),
    "eventlog.model.embeddings": ("EmbeddingHit", "EmbeddingRecord"),
    "eventlog.model.events": ("RawEvent",),
    "eventlog.model.messages": (
        "AssistantMessage",
        "ImageUrlPart",
        "JsonPart",
        "Message",
        "SystemMessage",
        "TextPart",
        "ToolMessage",
        "UserMessage",
    ),
    "eventlog.model.records": (
        "EventRecord",
        "Execution",
        "ExecutionStatus",
        "Fork",
        "RunRecord",
        "Session",
        "SessionStats",
        "StreamRecord",
        "stream_id_for",
    ),
    "eventlog.model.limits": ("MAX_NESTING_DEPTH",),
    "eventlog.model.registry": ("event_type", "register_upcaster"),
    "eventlog.model.retention": ("PrunedRange", "PruneReport"),
    "eventlog.model.state": ("RunState",),
    "eventlog.model.status": ("RunStatus",),
    "eventlog.model.tool_calls": ("ToolCallEntry", "ToolCallPhase"),
    "eventlog.storage.codec": ("MAX_EVENT_BYTES",),
    "eventlog.storage.config": ("PostgresConfig", "StoreConfig"),
    "eventlog.store.async_run_store": ("AsyncRunStore",),
    "eventlog.store.plans": ("ProjectorStatus", "StoreStats"),
    "eventlog.store.run_store": ("RunStore",),
    "eventlog.tools.copy_store": ("CopyReport", "copy_store"),
    "eventlog.tools.jsonl": ("ImportFileError", "ImportSummary", "IncompleteExportError"),
    "eventlog.tools.verify": ("Problem",),
}
_MODULE_OF = {name: module for module, names in _LAZY_FROM.items() for name in names}


def __getattr__(name: str) -> object:
    """Load a public name on first use (PEP 562); later lookups find it in the module."""
    try:
        module_name = _MODULE_OF[name]
    except KeyError:
        raise AttributeError(f"module 'eventlog' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    try:
        value = getattr(module, name)
    except AttributeError:  # a submodule, not yet imported (``registry``)
        value = importlib.import_module(f"{module_name}.{name}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
