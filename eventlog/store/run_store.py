"""The public facade: :class:`RunStore` (behest's RunStore + RuntimeStore operations).

Every public method validates its input, opens exactly one transaction on the backend and
calls the engine (and the built-in projectors' query objects) inside it. This is the one place
that wires the built-in projectors; nothing here touches lmdb directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from os import PathLike
from types import TracebackType
from typing import TypeVar
from uuid import UUID, uuid4

import msgspec

from eventlog.engine.core import Accepts, AppendRequest, Engine
from eventlog.engine.projectors import reader
from eventlog.engine.protocols import Projector
from eventlog.errors import SessionNotFound
from eventlog.log import get_logger
from eventlog.model.events import AnyEvent, RunStatusChanged
from eventlog.model.records import EventRecord, RunRecord, RunState, Session
from eventlog.model.status import RunStatus
from eventlog.model.validation import (
    check_event,
    check_events,
    check_fields,
    check_seq,
    metadata,
    uuid_of,
)
from eventlog.storage.config import DEFAULT_MAP_SIZE, DEFAULT_MAX_MAP_SIZE, Durability
from eventlog.storage.kv import KVBackend, KVTxn
from eventlog.storage.memory import MemoryBackend
from eventlog.storage.opening import open_backend
from eventlog.store.group_commit import GroupCommitter
from eventlog.store.streams import StoreStreams
from eventlog.store.subscriptions import StoreSubscriptions
from eventlog.store.views import StoreViews, _ProjectionView
from projections.executions import ExecutionsProjector
from projections.langgraph_checkpoints import LangGraphCheckpointsProjector
from projections.run_state import RunStateProjector, RunStateQuery
from projections.session_listing import SessionListingProjector, SessionListingQuery
from projections.status_index import StatusIndexProjector

__all__ = ["BUILTIN_PROJECTORS", "RunStore"]

T = TypeVar("T")

log = get_logger("eventlog.store.run_store")

#: The built-in projectors, in the order they run (run state first: it enforces the
#: terminal-status rule before any other view sees the event).
BUILTIN_PROJECTORS = ("run_state", "status_index", "session_listing", "executions")


def _builtins() -> list[Projector]:
    return [
        RunStateProjector(),
        StatusIndexProjector(),
        SessionListingProjector(),
        ExecutionsProjector(),
        LangGraphCheckpointsProjector(),
    ]


class RunStore(StoreSubscriptions, StoreViews, StoreStreams):
    """An event store for agent runs. Open it on a directory (LMDB) or in memory.

    >>> from eventlog import RunStore
    >>> from eventlog.model.events import ModelStarted, TextDelta, RunCompleted
    >>> store = RunStore.in_memory()
    >>> session = store.create_session(title="demo")
    >>> run = store.create_run(session.id, provider="openai", model="gpt-4o")
    >>> store.append_event(run.id, ModelStarted("openai", "gpt-4o", 1)).seq
    1
    >>> [r.seq for r in store.append_events(run.id, [TextDelta("Hi"), RunCompleted("stop", 1)])]
    [2, 3]
    >>> store.get_run_state(run.id).status
    <RunStatus.COMPLETED: 'completed'>
    >>> store.close()
    """

    def __init__(
        self,
        backend: KVBackend,
        projectors: Sequence[Projector] = (),
        *,
        group_max_requests: int = 256,
        group_max_bytes: int = 8 << 20,
    ) -> None:
        taken = [p for p in projectors if getattr(p, "name", None) in BUILTIN_PROJECTORS]
        if taken:
            raise ValueError(
                f"projector name {taken[0].name!r} is a built-in's; give your projector "
                "another name"
            )
        self._backend = backend
        self._engine = Engine([*_builtins(), *projectors])
        self._committer = GroupCommitter(
            backend.write_group,
            backend.write,
            max_requests=group_max_requests,
            max_bytes=group_max_bytes,
        )
        self._run_states = RunStateQuery(_ProjectionView(backend, "run_state"))
        self._wakeup = backend.make_wakeup()
        self._runners = {}
        try:
            if backend.readonly:
                backend.read(self._engine.check_format)
                return
            backend.on_commit = self._wakeup.committed  # wake subscribers after each commit
            self._backend.write(self._engine.init_store)
            self._catch_up_projectors()
        except BaseException:
            self._wakeup.close()
            raise
        self._start_async_projectors()

    # -- opening and closing ----------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: str | PathLike[str],
        *,
        durability: Durability = "durable",
        map_size: int = DEFAULT_MAP_SIZE,
        max_map_size: int = DEFAULT_MAX_MAP_SIZE,
        projectors: Sequence[Projector] = (),
        readonly: bool = False,
        create: bool = True,
        schema: str | None = None,
        migrate: bool = False,
        **options: int,
    ) -> RunStore:
        """Open (creating if needed) the LMDB store in directory ``path``, or a PostgreSQL store.

        ``durability="durable"`` (default): a returned append is on disk (fsync per commit).
        ``durability="fast"``: no fsync per commit; call :meth:`flush`. ``map_size`` is the
        initial LMDB map (it grows automatically up to ``max_map_size``). ``projectors`` adds
        your projectors to the built-ins. ``readonly=True`` opens an existing store for reading
        only (it never blocks a writer; views are not rebuilt); ``create=False`` refuses to
        create a missing store. Extra options (``max_readers``, ``max_dbs``) go to
        :class:`~eventlog.storage.config.StoreConfig`.

        ``path`` may be a PostgreSQL URL (``postgresql://user@host:5432/db``, needs the
        ``postgres`` extra): the same store on a server that many machines share. ``schema``
        (or the URL's ``?schema=`` parameter) names the PostgreSQL schema that holds it
        (default ``eventlog``); ``create=True`` creates a missing schema, ``migrate=True``
        upgrades an older one (else ``eventlog migrate`` does); ``pool_size`` and
        ``connect_timeout`` go to :class:`~eventlog.storage.config.PostgresConfig`.

        >>> import tempfile
        >>> with RunStore.open(tempfile.mkdtemp() + "/store") as store:
        ...     store.health_check()
        """
        opened = open_backend(
            path,
            durability=durability,
            map_size=map_size,
            max_map_size=max_map_size,
            readonly=readonly,
            create=create,
            schema=schema,
            migrate=migrate,
            **options,
        )
        try:
            return cls(
                opened.backend,
                projectors,
                group_max_requests=opened.group_max_requests,
                group_max_bytes=opened.group_max_bytes,
            )
        except BaseException:
            opened.backend.close()
            raise

    @classmethod
    def in_memory(cls, *, projectors: Sequence[Projector] = ()) -> RunStore:
        """A store with the same contract and no disk: for your own unit tests."""
        return cls(MemoryBackend(), projectors)

    def close(self) -> None:
        """Close the store (idempotent). Later calls raise ``StoreClosedError``.

        Async projectors finish their current batch and stop; subscriptions end.
        """
        self._stop_async_projectors()
        self._committer.close()  # queued writes commit (and signal) first
        self._backend.on_commit = None
        self._wakeup.close()
        self._backend.close()

    def _write(self, fn: Callable[[KVTxn], T]) -> T:
        """Run ``fn`` in a write transaction shared with concurrent writers (group commit)."""
        return self._committer.submit(fn)

    def __enter__(self) -> RunStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def path(self) -> str | None:
        """The store directory (None in memory)."""
        return self._backend.path

    def flush(self) -> None:
        """Make every committed append durable (needed only with ``durability="fast"``)."""
        self._backend.flush()

    def health_check(self) -> None:
        """Raise ``StoreError`` (or a subclass) when the store cannot serve requests."""
        self._backend.health_check()

    # -- sessions -------------------------------------------------------------------------
    def create_session(
        self,
        *,
        title: str = "Agent Run",
        model: str = "default",
        metadata: Mapping[str, object] | None = None,
        session_id: UUID | str | None = None,
    ) -> Session:
        """Create a session; ``AlreadyExistsError`` if ``session_id`` is taken."""
        return self._write(self._plan_create_session(title, model, metadata, session_id))

    def _plan_create_session(
        self,
        title: str,
        model: str,
        metadata: Mapping[str, object] | None,
        session_id: UUID | str | None,
    ) -> Callable[[KVTxn], Session]:
        sid = uuid4() if session_id is None else uuid_of(session_id, "session_id")
        now = datetime.now(UTC)
        session = check_fields(
            Session(sid, str(title), str(model), _meta(metadata), now, now), "create_session"
        )
        return lambda txn: self._engine.create_session(txn, session)

    def ensure_session(self, session_id: UUID | str | None = None) -> UUID:
        """Return ``session_id`` if it exists (else ``SessionNotFound``); create one for None."""
        if session_id is None:
            return self.create_session().id
        sid = uuid_of(session_id, "session_id")
        if self.get_session(sid) is None:
            raise SessionNotFound(sid)
        return sid

    def get_session(self, session_id: UUID | str) -> Session | None:
        """The session (``updated_at`` = its last activity), or None when it does not exist."""
        sid = uuid_of(session_id, "session_id")
        return self._backend.read(lambda txn: self._session_in(txn, sid))

    def _session_in(self, txn: KVTxn, sid: UUID) -> Session | None:
        session = self._engine.get_session(txn, sid)
        if session is None:
            return None
        updated = SessionListingQuery(reader(txn, "session_listing")).updated_at(sid)
        if updated is None or updated <= session.updated_at:
            return session
        return Session(
            session.id, session.title, session.model, session.metadata, session.created_at, updated
        )

    # -- runs -----------------------------------------------------------------------------
    def create_run(
        self,
        session_id: UUID | str,
        *,
        provider: str,
        model: str,
        metadata: Mapping[str, object] | None = None,
        client_request_id: str | None = None,
        run_id: UUID | str | None = None,
    ) -> RunRecord:
        """Create a run in ``session_id`` (status ``pending``, no events).

        With ``client_request_id``, creating again with the same id in the same session
        returns the run created the first time (an idempotent retry).
        """
        return self._write(
            self._plan_create_run(session_id, provider, model, metadata, client_request_id, run_id)
        )

    def _plan_create_run(
        self,
        session_id: UUID | str,
        provider: str,
        model: str,
        metadata: Mapping[str, object] | None,
        client_request_id: str | None,
        run_id: UUID | str | None,
    ) -> Callable[[KVTxn], RunRecord]:
        sid = uuid_of(session_id, "session_id")
        rid = uuid4() if run_id is None else uuid_of(run_id, "run_id")
        if client_request_id is not None and not isinstance(client_request_id, str):
            raise TypeError(f"client_request_id must be a str, got {client_request_id!r}")
        now = datetime.now(UTC)
        record = RunRecord(
            rid,
            sid,
            RunStatus.PENDING,
            str(provider),
            str(model),
            _meta(metadata),
            client_request_id,
            now,
            now,
        )
        record = check_fields(record, "create_run")

        def work(txn: KVTxn) -> RunRecord:
            created = self._engine.create_run(txn, record)
            found = self._run_in(txn, created.id)
            assert found is not None
            return found

        return work

    def get_run(self, run_id: UUID | str) -> RunRecord | None:
        """The run record (with its current status), or None when it does not exist."""
        rid = uuid_of(run_id, "run_id")
        return self._backend.read(lambda txn: self._run_in(txn, rid))

    def _run_in(self, txn: KVTxn, rid: UUID) -> RunRecord | None:
        record = self._engine.get_run(txn, rid)
        if record is None:
            return None
        state = RunStateQuery(reader(txn, "run_state")).get(rid)
        if state is None:
            return record
        return RunRecord(
            record.id,
            record.session_id,
            state.status,
            record.provider,
            record.model,
            record.metadata,
            record.client_request_id,
            record.created_at,
            state.updated_at or record.updated_at,
        )

    def get_run_state(self, run_id: UUID | str) -> RunState | None:
        """The materialized fold of the run's events, or None when the run does not exist."""
        rid = uuid_of(run_id, "run_id")
        return self._run_states.get(rid)

    def update_run_status(self, run_id: UUID | str, status: RunStatus | str) -> RunRecord:
        """Append ``RunStatusChanged(status)``; ``InvalidTransition`` out of a terminal status."""
        return self._write(self._plan_update_run_status(run_id, status))

    def _plan_update_run_status(
        self, run_id: UUID | str, status: RunStatus | str
    ) -> Callable[[KVTxn], RunRecord]:
        rid = uuid_of(run_id, "run_id")
        try:
            new_status = RunStatus(status)
        except ValueError:
            valid = ", ".join(s.value for s in RunStatus)
            raise ValueError(f"unknown run status {status!r}; use one of: {valid}") from None
        req = AppendRequest(rid, [RunStatusChanged(new_status)])

        def work(txn: KVTxn) -> RunRecord:
            self._engine.append(txn, req, datetime.now(UTC))
            record = self._run_in(txn, rid)
            assert record is not None
            return record

        return work

    def delete_run(self, run_id: UUID | str) -> bool:
        """Delete the run, its events, indexes and views in one transaction; True if it existed.

        Positions of deleted events are never reused; log readers skip them.
        """
        return self._write(self._plan_delete_run(run_id))

    def _plan_delete_run(self, run_id: UUID | str) -> Callable[[KVTxn], bool]:
        rid = uuid_of(run_id, "run_id")

        def work(txn: KVTxn) -> bool:
            deleted = self._engine.delete_run(txn, rid)
            if deleted:
                log.debug("run_deleted", path=self.path, run_id=str(rid))
            return deleted

        return work

    # -- events ---------------------------------------------------------------------------
    def append_event(
        self,
        run_id: UUID | str,
        event: AnyEvent,
        *,
        expected_seq: int | None = None,
        event_id: UUID | str | None = None,
    ) -> EventRecord:
        """Append one event; returns its record (seq, position, recorded_at).

        ``expected_seq=N``: the run's last seq must be N, else ``ConcurrencyError`` and nothing
        is written. ``event_id``: if this id is already stored for the run, the stored record is
        returned and nothing is written (safe retries).
        """
        return self._write(self._plan_append_event(run_id, event, expected_seq, event_id))

    def _plan_append_event(
        self,
        run_id: UUID | str,
        event: AnyEvent,
        expected_seq: int | None,
        event_id: UUID | str | None,
    ) -> Callable[[KVTxn], EventRecord]:
        rid = uuid_of(run_id, "run_id")
        ev = check_event(event, "append_event")
        eid = None if event_id is None else uuid_of(event_id, "event_id")
        req = AppendRequest(
            rid, (ev,), check_seq(expected_seq, "expected_seq"), None if eid is None else (eid,)
        )
        engine = self._engine
        return lambda txn: engine.append(txn, req, datetime.now(UTC))[0]

    def append_events(
        self,
        run_id: UUID | str,
        events: Iterable[AnyEvent],
        *,
        expected_seq: int | None = None,
        event_ids: Sequence[UUID | str | None] | None = None,
    ) -> list[EventRecord]:
        """Append a batch atomically (all or nothing), seq numbers consecutive."""
        return self._write(self._plan_append_events(run_id, events, expected_seq, event_ids))

    def _plan_append_events(
        self,
        run_id: UUID | str,
        events: Iterable[AnyEvent],
        expected_seq: int | None,
        event_ids: Sequence[UUID | str | None] | None,
    ) -> Callable[[KVTxn], list[EventRecord]]:
        rid = uuid_of(run_id, "run_id")
        req = self._request(rid, events, expected_seq, event_ids, "append_events")
        engine = self._engine
        return lambda txn: engine.append(txn, req, datetime.now(UTC))

    def append_many(self, requests: Iterable[AppendRequest]) -> list[list[EventRecord]]:
        """Append to several runs in one transaction: all requests or none.

        Each :class:`AppendRequest` carries its own ``expected_seq``; any failure (a conflict,
        an unknown run, a terminal run) aborts the whole call.
        """
        return self._write(self._plan_append_many(requests))

    def _plan_append_many(
        self, requests: Iterable[AppendRequest]
    ) -> Callable[[KVTxn], list[list[EventRecord]]]:
        checked = []
        for n, req in enumerate(requests):
            if not isinstance(req, AppendRequest):
                raise TypeError(f"append_many: item {n} must be an AppendRequest, got {req!r:.80}")
            checked.append(
                self._request(
                    uuid_of(req.run_id, "run_id"),
                    req.events,
                    req.expected_seq,
                    req.event_ids,
                    f"append_many item {n}",
                )
            )
        engine = self._engine

        def work(txn: KVTxn) -> list[list[EventRecord]]:
            now = datetime.now(UTC)
            return [engine.append(txn, req, now) for req in checked]

        return work

    def _request(
        self,
        rid: UUID,
        events: Iterable[AnyEvent],
        expected_seq: int | None,
        event_ids: Sequence[UUID | str | None] | None,
        where: str,
    ) -> AppendRequest:
        if isinstance(events, msgspec.Struct | str | bytes | dict):
            raise TypeError(f"{where}: events must be a list of events, got {events!r:.80}")
        # every event's fields are checked (and the checked copy appended): msgspec does not
        # check types on construction, and a wrong-typed event would break its run's state
        evs = check_events(events, where)
        ids: tuple[UUID | None, ...] | None = None
        if event_ids is not None:
            ids = tuple(None if e is None else uuid_of(e, "event_ids item") for e in event_ids)
            if len(ids) != len(evs):
                raise ValueError(
                    f"{where}: {len(ids)} event_ids for {len(evs)} events; give one per event"
                )
        return AppendRequest(rid, evs, check_seq(expected_seq, "expected_seq"), ids)

    def list_events(
        self,
        run_id: UUID | str,
        *,
        after_seq: int = 0,
        to_seq: int | None = None,
        limit: int | None = None,
    ) -> list[EventRecord]:
        """The run's events in seq order: ``after_seq < seq <= to_seq``, at most ``limit``."""
        return self._events_of(uuid_of(run_id, "run_id"), "run", after_seq, to_seq, limit)

    def _events_of(
        self,
        sid: UUID,
        kind: Accepts,
        after_seq: int,
        to_seq: int | None,
        limit: int | None,
        reverse: bool = False,
    ) -> list[EventRecord]:
        after = check_seq(after_seq, "after_seq") or 0
        to = check_seq(to_seq, "to_seq")
        lim = check_seq(limit, "limit")
        back = bool(reverse)
        return self._backend.read(
            lambda txn: self._engine.list_events(
                txn, sid, after_seq=after, to_seq=to, limit=lim, kind=kind, reverse=back
            )
        )

    def read_log(self, *, after_position: int = 0, limit: int | None = None) -> list[EventRecord]:
        """Events of every stream in log position order, after ``after_position``.

        Positions of deleted runs are absent and skipped; the reader never waits for them.
        """
        after = check_seq(after_position, "after_position") or 0
        lim = check_seq(limit, "limit")
        return self._backend.read(
            lambda txn: self._engine.read_log(txn, after_position=after, limit=lim)
        )

    def last_events(self, n: int, *, run_id: UUID | str | None = None) -> list[EventRecord]:
        """The last ``n`` events of the log (or of one run), oldest first (``tail -n``)."""
        count = check_seq(n, "n") or 0
        rid = None if run_id is None else uuid_of(run_id, "run_id")
        return self._backend.read(lambda txn: self._engine.last_events(txn, count, rid))

    def last_position(self) -> int:
        """The highest position ever assigned (0 for an empty log)."""
        return self._backend.read(self._engine.last_position)

    def rebuild_projections(
        self,
        names: Iterable[str] | None = None,
        *,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        """Rebuild projectors (all, or ``names``) from the log, in one transaction.

        ``progress(name, position, last_position)`` is called as the replay advances. An async
        projector is reset instead and catches up in the background (its thread restarts if it
        had stopped on an error): use :meth:`wait_for_projections` to wait for it.
        """
        chosen = None if names is None else list(names)
        super().rebuild_projections(chosen, progress=progress)
        self._restart_async_projectors(chosen)


def _meta(value: Mapping[str, object] | None) -> dict[str, object]:
    return metadata(value, "metadata")
