"""Plans of the session operations: sessions, their messages, executions and statistics.

Listings come from the built-in projectors' indexes (never a scan of all runs); messages are
a session's stream; executions and statistics are views of the log.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from uuid import UUID, uuid4

from eventlog.engine.appends import AppendRequest
from eventlog.engine.core import Engine
from eventlog.engine.projectors import ProjectionTxn, reader
from eventlog.errors import SessionNotFound
from eventlog.log import get_logger
from eventlog.model.messages import (
    MESSAGE_TYPES,
    Message,
    MessageAppended,
    MessageRetracted,
    MessagesCleared,
)
from eventlog.model.records import EventRecord, Execution, RunRecord, Session, SessionStats
from eventlog.model.status import RunStatus
from eventlog.model.validation import check_fields, check_seq, uuid_of
from eventlog.storage.kv import KVBackend, KVTxn
from eventlog.store.plans.arguments import check_id_prefix, check_meta, check_page
from eventlog.store.plans.records import prefetch_runs, run_with_status, session_with_activity
from projections.executions import ExecutionsQuery
from projections.session_listing import SessionListingQuery
from projections.status_index import StatusIndexQuery

__all__ = ["SessionPlans", "messages_of", "require_session"]

# the facade's logger, as before its plans moved here: logging set up for it still applies
log = get_logger("eventlog.store.run_store")


def messages_of(records: list[EventRecord], limit: int | None) -> list[Message]:
    """The transcript a session's stream folds to (the first ``limit`` messages).

    ``MessageAppended`` adds a message, ``MessageRetracted(seq)`` withdraws one,
    ``MessagesCleared`` empties it; other events in the stream are skipped.
    """
    messages: dict[int, Message] = {}
    for record in records:
        event = record.event
        if isinstance(event, MessageAppended):
            messages[record.seq] = event.message
        elif isinstance(event, MessageRetracted):
            messages.pop(event.seq, None)
        elif isinstance(event, MessagesCleared):
            messages.clear()
    out = list(messages.values())
    return out if limit is None else out[:limit]


def require_session(engine: Engine, txn: KVTxn, sid: UUID) -> None:
    """Raise ``SessionNotFound`` unless session ``sid`` exists in ``txn``'s snapshot."""
    if engine.records.get_session(txn, sid) is None:
        raise SessionNotFound(sid)


class SessionPlans:
    """Each session operation's input checks and its work inside one transaction."""

    def __init__(self, backend: KVBackend, engine: Engine) -> None:
        self.backend = backend
        self.engine = engine
        #: ``fn(txn, session_id)`` run first by ``delete_session`` (its embeddings' deletes)
        self.cascades: list[Callable[[KVTxn, UUID], object]] = []

    # -- writes ----------------------------------------------------------------------------
    def create_session(
        self,
        title: str,
        model: str,
        metadata: Mapping[str, object] | None,
        session_id: UUID | str | None,
    ) -> Callable[[KVTxn], Session]:
        """``create_session``: a new session record (``AlreadyExistsError`` if the id is taken)."""
        sid = uuid4() if session_id is None else uuid_of(session_id, "session_id")
        now = datetime.now(UTC)
        session = check_fields(
            Session(sid, str(title), str(model), check_meta(metadata), now, now), "create_session"
        )
        records = self.engine.records
        return lambda txn: records.create_session(txn, session)

    def delete_session(self, session_id: UUID | str) -> Callable[[KVTxn], bool]:
        """``delete_session``: the session, its runs and messages (True if it existed)."""
        sid = uuid_of(session_id, "session_id")
        records = self.engine.records
        path = self.backend.path

        cascades = tuple(self.cascades)

        def work(txn: KVTxn) -> bool:
            for cascade in cascades:
                cascade(txn, sid)
            deleted = records.delete_session(txn, sid)
            if deleted:
                log.debug("session_deleted", path=path, session_id=str(sid))
            return deleted

        return work

    def append_message(self, session_id: UUID | str, message: Message) -> Callable[[KVTxn], UUID]:
        """``append_message``: a ``MessageAppended`` event on the session's stream."""
        sid = uuid_of(session_id, "session_id")
        if not isinstance(message, MESSAGE_TYPES):
            raise TypeError(
                "append_message: expected SystemMessage, UserMessage, AssistantMessage or "
                f"ToolMessage from eventlog.model.messages, got {type(message).__name__}"
            )
        event = check_fields(MessageAppended(message), "append_message")
        message_id = uuid4()
        req = AppendRequest(sid, (event,), None, (message_id,))
        appends = self.engine.appends

        def work(txn: KVTxn) -> UUID:
            appends.append(txn, req, datetime.now(UTC), kind="session")
            return message_id

        return work

    # -- reads -----------------------------------------------------------------------------
    def get_session(self, session_id: UUID | str) -> Callable[[KVTxn], Session | None]:
        """``get_session``: the session with its last activity, or None."""
        sid = uuid_of(session_id, "session_id")
        engine = self.engine
        return lambda txn: session_with_activity(engine, txn, sid)

    def existing_session(self, session_id: UUID | str) -> Callable[[KVTxn], UUID]:
        """``ensure_session`` of an id: the id if the session exists, else ``SessionNotFound``."""
        sid = uuid_of(session_id, "session_id")
        engine = self.engine

        def work(txn: KVTxn) -> UUID:
            require_session(engine, txn, sid)
            return sid

        return work

    def list_sessions(
        self,
        limit: int,
        offset: int,
        created_after: datetime | None,
        created_before: datetime | None,
    ) -> Callable[[KVTxn], list[Session]]:
        """``list_sessions``: most recently updated first, optionally in a created window."""
        lim, off = check_page(limit, offset)
        for name, value in (("created_after", created_after), ("created_before", created_before)):
            if value is not None and not isinstance(value, datetime):
                raise TypeError(f"{name} must be a datetime, got {value!r}")
        engine = self.engine

        def work(txn: KVTxn) -> list[Session]:
            ids = SessionListingQuery(reader(txn, "session_listing")).sessions(
                limit=lim, offset=off, created_after=created_after, created_before=created_before
            )
            txn.prefetch("sessions", [i.bytes for i in ids])
            ProjectionTxn(txn, "session_listing").prefetch([b"u" + i.bytes for i in ids])
            found = (session_with_activity(engine, txn, i) for i in ids)
            return [s for s in found if s is not None]

        return work

    def list_runs(self, session_id: UUID | str) -> Callable[[KVTxn], list[RunRecord]]:
        """``list_runs``: the session's runs in created order (``SessionNotFound``)."""
        sid = uuid_of(session_id, "session_id")
        engine = self.engine

        def work(txn: KVTxn) -> list[RunRecord]:
            require_session(engine, txn, sid)
            ids = SessionListingQuery(reader(txn, "session_listing")).runs(sid)
            prefetch_runs(txn, ids)
            return [r for r in (run_with_status(engine, txn, i) for i in ids) if r is not None]

        return work

    def list_messages(
        self, session_id: UUID | str, after_seq: int, limit: int | None
    ) -> Callable[[KVTxn], list[Message]]:
        """``list_messages``: the fold of the session's stream (see :func:`messages_of`)."""
        sid = uuid_of(session_id, "session_id")
        after = check_seq(after_seq, "after_seq") or 0
        lim = check_seq(limit, "limit")
        reads = self.engine.reads
        return lambda txn: messages_of(
            reads.list_events(txn, sid, after_seq=after, kind="session"), lim
        )

    def list_executions(self, session_id: UUID | str) -> Callable[[KVTxn], list[Execution]]:
        """``list_executions``: tool executions of the session's runs, in log order."""
        sid = uuid_of(session_id, "session_id")
        engine = self.engine

        def work(txn: KVTxn) -> list[Execution]:
            require_session(engine, txn, sid)
            return ExecutionsQuery(reader(txn, "executions")).executions(sid)

        return work

    def session_stats(self, session_id: UUID | str) -> Callable[[KVTxn], SessionStats]:
        """``session_stats``: runs by status, tool calls and failures, token usage."""
        sid = uuid_of(session_id, "session_id")
        engine = self.engine

        def work(txn: KVTxn) -> SessionStats:
            require_session(engine, txn, sid)
            index = StatusIndexQuery(reader(txn, "status_index"))
            by_status = {s.value: index.count(status=s, session_id=sid) for s in RunStatus}
            by_status = {k: v for k, v in by_status.items() if v}
            calls, failures, usage = ExecutionsQuery(reader(txn, "executions")).totals(sid)
            return SessionStats(sid, by_status, sum(by_status.values()), calls, failures, usage)

        return work

    def find_sessions(self, prefix: str, limit: int) -> Callable[[KVTxn], list[UUID]]:
        """``find_sessions``: session ids whose hex form starts with ``prefix``."""
        digits, lim = check_id_prefix(prefix, limit)
        records = self.engine.records
        return lambda txn: records.find_ids(txn, "sessions", digits, lim)
