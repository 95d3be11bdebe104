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
"""

from __future__ import annotations

from eventlog import registry
from eventlog.aio import AsyncRunStore
from eventlog.codec import MAX_EVENT_BYTES
from eventlog.config import PostgresConfig, StoreConfig
from eventlog.copying import CopyReport, copy_store
from eventlog.engine import AppendRequest
from eventlog.errors import (
    AlreadyExistsError,
    ConcurrencyError,
    ConfigError,
    CopyMismatchError,
    CorruptRecordError,
    EventLogError,
    EventTooLargeError,
    InvalidTransition,
    ProjectionError,
    ProjectionTimeoutError,
    ProjectorFailedError,
    RunNotFound,
    SessionNotFound,
    StoreClosedError,
    StoreError,
    StoreFullError,
    StreamNotFound,
)
from eventlog.events import RawEvent
from eventlog.messages import (
    AssistantMessage,
    ImageUrlPart,
    JsonPart,
    Message,
    SystemMessage,
    TextPart,
    ToolMessage,
    UserMessage,
)
from eventlog.protocols import ProjectionReader, ProjectionTx, Projector
from eventlog.records import (
    EventRecord,
    Execution,
    ExecutionStatus,
    RunRecord,
    RunState,
    Session,
    SessionStats,
    StreamRecord,
)
from eventlog.registry import event_type, register_upcaster
from eventlog.status import RunStatus
from eventlog.store import RunStore
from eventlog.store_streams import stream_id_for
from eventlog.store_views import ProjectorStatus, StoreStats
from eventlog.subscriptions import ConsumerInfo, Subscription
from eventlog.transfer import ImportFileError, ImportSummary
from eventlog.verify import Problem

__all__ = [
    "MAX_EVENT_BYTES",
    "AlreadyExistsError",
    "AppendRequest",
    "AssistantMessage",
    "AsyncRunStore",
    "ConcurrencyError",
    "ConfigError",
    "ConsumerInfo",
    "CopyMismatchError",
    "CopyReport",
    "CorruptRecordError",
    "EventLogError",
    "EventRecord",
    "EventTooLargeError",
    "Execution",
    "ExecutionStatus",
    "ImageUrlPart",
    "ImportFileError",
    "ImportSummary",
    "InvalidTransition",
    "JsonPart",
    "Message",
    "PostgresConfig",
    "Problem",
    "ProjectionError",
    "ProjectionReader",
    "ProjectionTimeoutError",
    "ProjectionTx",
    "Projector",
    "ProjectorFailedError",
    "ProjectorStatus",
    "RawEvent",
    "RunNotFound",
    "RunRecord",
    "RunState",
    "RunStatus",
    "RunStore",
    "Session",
    "SessionNotFound",
    "SessionStats",
    "StoreClosedError",
    "StoreConfig",
    "StoreError",
    "StoreFullError",
    "StoreStats",
    "StreamNotFound",
    "StreamRecord",
    "Subscription",
    "SystemMessage",
    "TextPart",
    "ToolMessage",
    "UserMessage",
    "copy_store",
    "event_type",
    "register_upcaster",
    "registry",
    "stream_id_for",
]
__version__ = "0.1.0"
