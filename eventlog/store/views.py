"""The read side of :class:`~eventlog.store.run_store.RunStore` served by projections, and sessions.

Listings come from the built-in projectors' indexes (never a scan of all runs); messages are a
session's stream; executions and statistics are views of the log; ``verify`` refolds
everything; ``rebuild_projections`` replays views from the log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar
from uuid import UUID, uuid4

import msgspec

from eventlog.engine.core import AppendRequest, Engine
from eventlog.engine.projectors import ProjectionTxn, is_async, reader
from eventlog.engine.protocols import ProjectionReader
from eventlog.errors import RunNotFound, SessionNotFound
from eventlog.log import get_logger
from eventlog.model.messages import (
    MESSAGE_TYPES,
    Message,
    MessageAppended,
    MessageRetracted,
    MessagesCleared,
)
from eventlog.model.records import (
    EventRecord,
    Execution,
    RunRecord,
    Session,
    SessionStats,
    StreamRecord,
)
from eventlog.model.status import RunStatus
from eventlog.model.validation import check_fields, check_seq, uuid_of
from eventlog.storage.kv import KVBackend, KVTxn
from eventlog.tools.jsonl import ImportSummary, export_lines, import_lines, parse_lines
from eventlog.tools.verify import Problem, verify
from projections.executions import ExecutionsQuery
from projections.session_listing import SessionListingQuery
from projections.status_index import StatusIndexQuery

__all__ = ["ProjectorStatus", "StoreStats", "StoreViews"]

T = TypeVar("T")
log = get_logger("eventlog.store.run_store")


def _status(value: RunStatus | str | None) -> RunStatus | None:
    if value is None:
        return None
    try:
        return RunStatus(value)
    except ValueError:
        valid = ", ".join(s.value for s in RunStatus)
        raise ValueError(f"unknown run status {value!r}; use one of: {valid}") from None


def _page(limit: object, offset: object) -> tuple[int, int]:
    lim = check_seq(limit, "limit")
    off = check_seq(offset, "offset")
    return (100 if lim is None else lim), (off or 0)


class ProjectorStatus:
    """A projector's name, version, checkpoint (last applied position) and readiness.

    ``mode`` is ``"inline"`` or ``"async"``; ``error`` is set when an async projector stopped
    on an error (it stays at ``checkpoint`` until the store is reopened or it is rebuilt).
    """

    def __init__(
        self,
        name: str,
        version: int,
        checkpoint: int,
        ready: bool,
        mode: str = "inline",
        error: str | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self.checkpoint = checkpoint
        self.ready = ready
        self.mode = mode
        self.error = error

    def __repr__(self) -> str:
        extra = "" if self.mode == "inline" else f", mode={self.mode!r}, error={self.error!r}"
        return (
            f"ProjectorStatus(name={self.name!r}, version={self.version}, "
            f"checkpoint={self.checkpoint}, ready={self.ready}{extra})"
        )


class StoreStats(msgspec.Struct):
    """What ``store.stats()`` reports (sizes are 0 for the memory backend)."""

    runs_by_status: dict[str, int]
    runs: int
    sessions: int
    events: int
    last_position: int
    map_size: int = 0
    used_bytes: int = 0
    file_bytes: int = 0
    projectors: list[dict[str, Any]] = msgspec.field(default_factory=list)


def _prefetch_runs(txn: KVTxn, ids: list[UUID]) -> None:
    """Tell the backend which run records and states a listing is about to read.

    On PostgreSQL that is one query per table instead of two round trips per run.
    """
    keys = [i.bytes for i in ids]
    txn.prefetch("runs", keys)
    ProjectionTxn(txn, "run_state").prefetch(keys)


class StoreViews:
    """Queries over the built-in views, messages, verification and rebuilds."""

    _backend: KVBackend
    _engine: Engine
    path: Any

    def _run_in(self, txn: KVTxn, rid: UUID) -> RunRecord | None:
        raise NotImplementedError

    def _session_in(self, txn: KVTxn, sid: UUID) -> Session | None:
        raise NotImplementedError

    def _write(self, fn: Callable[[KVTxn], T]) -> T:
        raise NotImplementedError

    # -- runs by index --------------------------------------------------------------------
    def list_runs_filtered(
        self,
        *,
        session_id: UUID | str | None = None,
        status: RunStatus | str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[RunRecord]:
        """Runs newest first (by created_at), filtered by session and/or status.

        Served from the status index: the cost grows with ``limit + offset``, not with the
        number of runs. ``limit=0`` returns ``[]``.
        """
        sid = None if session_id is None else uuid_of(session_id, "session_id")
        st = _status(status)
        lim, off = _page(limit, offset)

        def work(txn: KVTxn) -> list[RunRecord]:
            ids = StatusIndexQuery(reader(txn, "status_index")).page(
                status=st, session_id=sid, limit=lim, offset=off
            )
            _prefetch_runs(txn, ids)
            return [r for r in (self._run_in(txn, i) for i in ids) if r is not None]

        return self._backend.read(work)

    def count_runs(
        self, status: RunStatus | str | None = None, session_id: UUID | str | None = None
    ) -> int:
        """How many runs match (read from the index's counters, not by scanning runs)."""
        sid = None if session_id is None else uuid_of(session_id, "session_id")
        st = _status(status)
        return self._backend.read(
            lambda txn: StatusIndexQuery(reader(txn, "status_index")).count(
                status=st, session_id=sid
            )
        )

    def list_runs(self, session_id: UUID | str) -> list[RunRecord]:
        """The session's runs in created order (``SessionNotFound`` for an unknown session)."""
        sid = uuid_of(session_id, "session_id")

        def work(txn: KVTxn) -> list[RunRecord]:
            if self._engine.get_session(txn, sid) is None:
                raise SessionNotFound(sid)
            ids = SessionListingQuery(reader(txn, "session_listing")).runs(sid)
            _prefetch_runs(txn, ids)
            return [r for r in (self._run_in(txn, i) for i in ids) if r is not None]

        return self._backend.read(work)

    # -- sessions -------------------------------------------------------------------------
    def list_sessions(
        self,
        *,
        limit: int = 100,
        offset: int = 0,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> list[Session]:
        """Sessions, most recently updated first, optionally created in a time window."""
        lim, off = _page(limit, offset)
        for name, value in (("created_after", created_after), ("created_before", created_before)):
            if value is not None and not isinstance(value, datetime):
                raise TypeError(f"{name} must be a datetime, got {value!r}")

        def work(txn: KVTxn) -> list[Session]:
            ids = SessionListingQuery(reader(txn, "session_listing")).sessions(
                limit=lim, offset=off, created_after=created_after, created_before=created_before
            )
            txn.prefetch("sessions", [i.bytes for i in ids])
            ProjectionTxn(txn, "session_listing").prefetch([b"u" + i.bytes for i in ids])
            return [s for s in (self._session_in(txn, i) for i in ids) if s is not None]

        return self._backend.read(work)

    def delete_session(self, session_id: UUID | str) -> bool:
        """Delete the session, its runs and its messages in one transaction (idempotent)."""
        return self._write(self._plan_delete_session(session_id))

    def _plan_delete_session(self, session_id: UUID | str) -> Callable[[KVTxn], bool]:
        sid = uuid_of(session_id, "session_id")

        def work(txn: KVTxn) -> bool:
            deleted = self._engine.delete_session(txn, sid)
            if deleted:
                log.debug("session_deleted", path=self.path, session_id=str(sid))
            return deleted

        return work

    # -- messages -------------------------------------------------------------------------
    def append_message(self, session_id: UUID | str, message: Message) -> UUID:
        """Append ``message`` to the session's stream; returns the message id."""
        return self._write(self._plan_append_message(session_id, message))

    def _plan_append_message(
        self, session_id: UUID | str, message: Message
    ) -> Callable[[KVTxn], UUID]:
        sid = uuid_of(session_id, "session_id")
        if not isinstance(message, MESSAGE_TYPES):
            raise TypeError(
                "append_message: expected SystemMessage, UserMessage, AssistantMessage or "
                f"ToolMessage from eventlog.model.messages, got {type(message).__name__}"
            )
        event = check_fields(MessageAppended(message), "append_message")
        message_id = uuid4()
        req = AppendRequest(sid, (event,), None, (message_id,))

        def work(txn: KVTxn) -> UUID:
            self._engine.append(txn, req, datetime.now(UTC), kind="session")
            return message_id

        return work

    def list_messages(
        self, session_id: UUID | str, *, after_seq: int = 0, limit: int | None = None
    ) -> list[Message]:
        """The session's messages in seq order (the first message is seq 1).

        The transcript is the fold of the session's stream: ``MessageAppended`` adds a
        message, ``MessageRetracted(seq)`` withdraws one, ``MessagesCleared`` empties it;
        other events in the stream are skipped. ``after_seq``: only messages appended after
        that seq; ``limit``: the first ``limit`` of them.
        """
        sid = uuid_of(session_id, "session_id")
        after = check_seq(after_seq, "after_seq") or 0
        lim = check_seq(limit, "limit")
        records = self._backend.read(
            lambda txn: self._engine.list_events(txn, sid, after_seq=after, kind="session")
        )
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
        return out if lim is None else out[:lim]

    # -- executions -----------------------------------------------------------------------
    def list_executions(self, session_id: UUID | str) -> list[Execution]:
        """Tool executions of the session's runs, in log order."""
        sid = uuid_of(session_id, "session_id")

        def work(txn: KVTxn) -> list[Execution]:
            if self._engine.get_session(txn, sid) is None:
                raise SessionNotFound(sid)
            return ExecutionsQuery(reader(txn, "executions")).executions(sid)

        return self._backend.read(work)

    def session_stats(self, session_id: UUID | str) -> SessionStats:
        """Runs by status, tool calls, tool failures and total token usage of a session."""
        sid = uuid_of(session_id, "session_id")

        def work(txn: KVTxn) -> SessionStats:
            if self._engine.get_session(txn, sid) is None:
                raise SessionNotFound(sid)
            index = StatusIndexQuery(reader(txn, "status_index"))
            by_status = {s.value: index.count(status=s, session_id=sid) for s in RunStatus}
            by_status = {k: v for k, v in by_status.items() if v}
            calls, failures, usage = ExecutionsQuery(reader(txn, "executions")).totals(sid)
            return SessionStats(sid, by_status, sum(by_status.values()), calls, failures, usage)

        return self._backend.read(work)

    # -- export / import ------------------------------------------------------------------
    def export_jsonl(self, run_ids: Iterable[UUID | str] | None = None) -> Iterator[str]:
        """The store (or the given runs, with their sessions' records) as JSON Lines.

        Session lines, run lines, stream lines, then event lines in log order; see
        :mod:`eventlog.tools.jsonl`. Exporting everything also exports every session's messages
        and every stream of another kind; exporting runs exports only those runs.
        """
        wanted = None if run_ids is None else [uuid_of(r, "run_id") for r in run_ids]
        engine = self._engine

        def records(txn: KVTxn) -> tuple[list[Session], list[RunRecord], list[StreamRecord]]:
            streams: list[StreamRecord] = []
            if wanted is None:
                runs = [self._run_in(txn, r.id) for r in engine.iter_runs(txn)]
                sids = [s.id for s in engine.iter_sessions(txn)]
                found_streams = (engine.get_stream(txn, st.id) for st in engine.iter_streams(txn))
                streams = [st for st in found_streams if st is not None]
            else:
                runs = []
                for rid in wanted:
                    run = self._run_in(txn, rid)
                    if run is None:
                        raise RunNotFound(rid)
                    runs.append(run)
                sids = list(dict.fromkeys(r.session_id for r in runs if r is not None))
            sessions = [s for s in (self._session_in(txn, i) for i in sids) if s is not None]
            found = [r for r in runs if r is not None]
            return (
                sorted(sessions, key=lambda s: (s.created_at, s.id.bytes)),
                sorted(found, key=lambda r: (r.created_at, r.id.bytes)),
                sorted(streams, key=lambda st: (st.created_at, st.id.bytes)),
            )

        sessions, runs, streams = self._backend.read(records)
        for line in export_lines(sessions, runs, self._export_events(wanted), streams):
            yield line.decode()

    def _export_events(self, wanted: list[UUID] | None) -> Iterator[EventRecord]:
        if wanted is not None:
            events = [
                e
                for rid in wanted
                for e in self._backend.read(partial(self._engine.list_events, run_id=rid))
            ]
            yield from sorted(events, key=lambda e: e.position)
            return
        after = 0
        while True:
            chunk = self._backend.read(
                partial(self._engine.read_log, after_position=after, limit=5000)
            )
            if not chunk:
                return
            yield from chunk
            after = chunk[-1].position

    def import_jsonl(self, lines: Iterable[str | bytes]) -> ImportSummary:
        """Validate every line, then write everything in one transaction - or nothing.

        A bad line raises :class:`~eventlog.tools.jsonl.ImportFileError` naming the 1-based line
        number and the field; the store is unchanged. Ids that already exist are refused.
        """
        parsed = parse_lines(lines)
        summary = self._backend.write(lambda txn: import_lines(self._engine, txn, parsed))
        log.info(
            "imported",
            path=self.path,
            runs=summary.runs,
            streams=summary.streams,
            events=summary.events,
        )
        return summary

    # -- statistics -----------------------------------------------------------------------
    def stats(self) -> StoreStats:
        """Counts (runs by status, sessions, events), sizes and projector checkpoints.

        Counting sessions and events walks their keys (no values are decoded).
        """

        def work(txn: KVTxn) -> StoreStats:
            index = StatusIndexQuery(reader(txn, "status_index"))
            by_status = {s.value: index.count(status=s) for s in RunStatus}
            sessions = sum(1 for _ in txn.scan("sessions", b""))
            events = sum(1 for _ in self._engine.iter_log(txn))
            return StoreStats(
                runs_by_status={k: v for k, v in by_status.items() if v},
                runs=sum(by_status.values()),
                sessions=sessions,
                events=events,
                last_position=self._engine.last_position(txn),
            )

        stats = self._backend.read(work)
        info = getattr(self._backend, "info", None)
        if callable(info):
            sizes = info()
            stats.map_size = sizes["map_size"]
            stats.used_bytes = sizes["used_bytes"]
            stats.file_bytes = sizes.get("file_bytes", 0)
        stats.projectors = [
            {
                "name": p.name,
                "version": p.version,
                "checkpoint": p.checkpoint,
                "ready": p.ready,
                "mode": p.mode,
                "error": p.error,
            }
            for p in self.projector_status()
        ]
        return stats

    # -- ids by prefix --------------------------------------------------------------------
    def find_runs(self, prefix: str, *, limit: int = 10) -> list[UUID]:
        """Runs whose id starts with ``prefix`` (hex, dashes optional), like git's short ids."""
        return self._find("runs", prefix, limit)

    def find_sessions(self, prefix: str, *, limit: int = 10) -> list[UUID]:
        """Sessions whose id starts with ``prefix`` (hex, dashes optional)."""
        return self._find("sessions", prefix, limit)

    def _find(self, table: str, prefix: str, limit: int) -> list[UUID]:
        digits = str(prefix).replace("-", "").lower()
        if not digits or len(digits) > 32 or any(c not in "0123456789abcdef" for c in digits):
            raise ValueError(
                f"{prefix!r} is not an id or an id prefix (hex digits, dashes allowed)"
            )
        lim = check_seq(limit, "limit") or 1
        return self._backend.read(lambda txn: self._engine.find_ids(txn, table, digits, lim))

    # -- projections ----------------------------------------------------------------------
    def projection(self, name: str) -> Any:
        """The query object of projector ``name``.

        A projector with a ``query(reader)`` method returns what it builds (the built-ins do);
        any other returns a read-only view of its keyspace with ``get`` and ``scan``. Each call
        on it reads one fresh snapshot.
        """
        projector = self._engine.projectors.by_name.get(name)
        if projector is None:
            known = ", ".join(sorted(self._engine.projectors.by_name))
            raise KeyError(f"no projector named {name!r} (registered: {known})")
        view = _ProjectionView(self._backend, name)
        build = getattr(projector, "query", None)
        return build(view) if callable(build) else view

    def rebuild_projections(
        self,
        names: Iterable[str] | None = None,
        *,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        """Rebuild projectors (all, or ``names``) from the log, in one transaction.

        ``progress(name, position, last_position)`` is called as the replay advances.
        """
        known = self._engine.projectors.by_name
        chosen = list(known) if names is None else list(names)
        unknown = sorted(set(chosen) - set(known))
        if unknown:
            raise KeyError(f"unknown projectors: {unknown} (registered: {sorted(known)})")
        self._rebuild(chosen, progress)

    def _rebuild(
        self, names: Sequence[str], progress: Callable[[str, int, int], None] | None
    ) -> None:
        if names:
            self._backend.write(lambda txn: self._engine.rebuild(txn, names, progress))
            log.info("projections_rebuilt", path=self.path, projectors=list(names))

    def _catch_up_projectors(self) -> None:
        stale = self._backend.read(self._engine.projectors.stale)
        self._rebuild(stale, None)

    def projector_status(self) -> list[ProjectorStatus]:
        """Every registered projector with its stored version and checkpoint."""

        def work(txn: KVTxn) -> list[ProjectorStatus]:
            last = self._engine.last_position(txn)
            out = []
            for p in self._engine.projectors.all:
                meta = self._engine.projectors.meta(txn, p.name)
                ready = meta is not None and meta.ready and meta.version == p.version
                version = p.version if meta is None else meta.version
                if not is_async(p):
                    out.append(ProjectorStatus(p.name, version, last if ready else 0, ready))
                    continue
                checkpoint = meta.checkpoint if ready and meta is not None else 0
                error = None if meta is None else meta.error
                out.append(ProjectorStatus(p.name, version, checkpoint, ready, "async", error))
            return out

        return self._backend.read(work)

    def verify(self) -> list[Problem]:
        """Refold everything from the log and compare with every view; ``[]`` when consistent.

        Reports seq gaps, undecodable records, broken position entries, orphan streams, view
        keys that differ from a fresh replay (run state, status index, session listing,
        executions and your projectors), and stale projectors - each naming where.
        """
        return self._backend.read(lambda txn: verify(self._engine, txn))


class _ProjectionView:
    """Read-only access to one projector's keyspace; each call is one short read."""

    def __init__(self, backend: KVBackend, name: str) -> None:
        self._backend = backend
        self._name = name
        self._prefix = name.encode() + b"\x00"

    def get(self, key: bytes) -> bytes | None:
        if not isinstance(key, bytes):
            raise TypeError(f"projection keys are bytes, got {type(key).__name__}")
        return self._backend.get("projections", self._prefix + key)

    def scan(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        return iter(self._backend.read(lambda txn: list(reader(txn, self._name).scan(prefix))))

    def read(self, fn: Callable[[ProjectionReader], T]) -> T:
        """Run ``fn(reader)`` in one read snapshot of this keyspace (reads that agree)."""
        return self._backend.read(lambda txn: fn(reader(txn, self._name)))
