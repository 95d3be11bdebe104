"""eventlog: an embedded event-sourcing engine for agent runtimes.

Every run is a stream of events with gap-free sequence numbers in one append-only log on LMDB;
the run state is kept exactly consistent with the log.

>>> from eventlog import RunStore, RunStatus
>>> from eventlog.model.events import ModelStarted, RunCompleted
>>> store = RunStore.in_memory()
>>> run = store.create_run(store.ensure_session(), provider="openai", model="gpt-4o")
>>> _ = store.append_events(run.id, [ModelStarted("openai", "gpt-4o", 1), RunCompleted("stop", 1)])
>>> store.get_run(run.id).status == RunStatus.COMPLETED
True
"""

from __future__ import annotations

from eventlog.engine.appends import AppendRequest
from eventlog.engine.protocols import ProjectionReader, ProjectionTx, Projector
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
from eventlog.live.subscriptions import ConsumerInfo, Subscription
from eventlog.model import registry
from eventlog.model.events import RawEvent
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
    RunRecord,
    Session,
    SessionStats,
    StreamRecord,
    stream_id_for,
)
from eventlog.model.registry import event_type, register_upcaster
from eventlog.model.state import RunState
from eventlog.model.status import RunStatus
from eventlog.storage.codec import MAX_EVENT_BYTES
from eventlog.storage.config import PostgresConfig, StoreConfig
from eventlog.store.async_run_store import AsyncRunStore
from eventlog.store.plans import ProjectorStatus, StoreStats
from eventlog.store.run_store import RunStore
from eventlog.tools.copy_store import CopyReport, copy_store
from eventlog.tools.jsonl import ImportFileError, ImportSummary
from eventlog.tools.verify import Problem

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
