"""The public facade: :class:`RunStore` (behest's RunStore + RuntimeStore operations).

Every public method validates its input, opens exactly one transaction on the backend and
calls the engine inside it. Nothing here touches lmdb directly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from os import PathLike
from types import TracebackType
from typing import Any, TypeVar
from uuid import UUID, uuid4

import structlog

from eventlog.backends.memory import MemoryBackend
from eventlog.config import DEFAULT_MAP_SIZE, DEFAULT_MAX_MAP_SIZE, Durability, StoreConfig
from eventlog.engine import AppendRequest, Engine
from eventlog.errors import SessionNotFound
from eventlog.events import AnyEvent, Event, RawEvent, RunStatusChanged
from eventlog.kv import KVBackend, KVTxn
from eventlog.protocols import ProjectionReader, Projector
from eventlog.records import EventRecord, RunRecord, RunState, Session
from eventlog.status import RunStatus

__all__ = ["RunStore"]

T = TypeVar("T")
# structlog over a stdlib logger: silent below WARNING until the application configures
# logging (a library must not print to stdout), and the app's structlog processors apply.
log = structlog.wrap_logger(logging.getLogger("eventlog.store"))


def _uuid(value: object, what: str) -> UUID:
    if isinstance(value, UUID):
        return value
    if isinstance(value, str):
        try:
            return UUID(value)
        except ValueError:
            pass
    raise TypeError(f"{what} must be a UUID (or its string form), got {value!r}")


def _check_event(event: object, where: str) -> AnyEvent:
    if isinstance(event, Event | RawEvent):
        return event
    raise TypeError(
        f"{where}: expected an event (an instance of an eventlog.events class such as "
        f"TextDelta, or eventlog.events.RawEvent), got {type(event).__name__}: {event!r:.80}"
    )


def _check_seq(value: object, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be an int >= 0 (0 = empty run), got {value!r}")
    return value


def _metadata(value: Mapping[str, object] | None, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} must be a mapping of str to JSON values, got {value!r:.80}")
    return dict(value)


class RunStore:
    """An event store for agent runs. Open it on a directory (LMDB) or in memory.

    >>> from eventlog import RunStore
    >>> from eventlog.events import ModelStarted, TextDelta, RunCompleted
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

    def __init__(self, backend: KVBackend, projectors: Sequence[Projector] = ()) -> None:
        self._backend = backend
        self._engine = Engine(projectors)
        self._backend.write(self._engine.init_store)
        self._catch_up_projectors()

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
        **options: int,
    ) -> RunStore:
        """Open (creating if needed) the LMDB store in directory ``path``.

        ``durability="durable"`` (default): a returned append is on disk (fsync per commit).
        ``durability="fast"``: no fsync per commit; call :meth:`flush`. ``map_size`` is the
        initial LMDB map (it grows automatically up to ``max_map_size``). Extra options
        (``max_readers``, ``max_dbs``) go to :class:`~eventlog.config.StoreConfig`.

        >>> import tempfile
        >>> with RunStore.open(tempfile.mkdtemp() + "/store") as store:
        ...     store.health_check()
        """
        from eventlog.backends.lmdb import LmdbBackend

        config = StoreConfig.build(
            path=path,
            durability=durability,
            map_size=map_size,
            max_map_size=max_map_size,
            **options,
        )
        backend = LmdbBackend(config)
        try:
            return cls(backend, projectors)
        except BaseException:
            backend.close()
            raise

    @classmethod
    def in_memory(cls, *, projectors: Sequence[Projector] = ()) -> RunStore:
        """A store with the same contract and no disk: for your own unit tests."""
        return cls(MemoryBackend(), projectors)

    def close(self) -> None:
        """Close the store (idempotent). Later calls raise ``StoreClosedError``."""
        self._backend.close()

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
        sid = uuid4() if session_id is None else _uuid(session_id, "session_id")
        now = datetime.now(UTC)
        session = Session(sid, str(title), str(model), _metadata(metadata, "metadata"), now, now)
        return self._backend.write(lambda txn: self._engine.create_session(txn, session))

    def ensure_session(self, session_id: UUID | str | None = None) -> UUID:
        """Return ``session_id`` if it exists (else ``SessionNotFound``); create one for None."""
        if session_id is None:
            return self.create_session().id
        sid = _uuid(session_id, "session_id")
        if self.get_session(sid) is None:
            raise SessionNotFound(sid)
        return sid

    def get_session(self, session_id: UUID | str) -> Session | None:
        """The session, or None when it does not exist."""
        sid = _uuid(session_id, "session_id")
        return self._backend.read(lambda txn: self._engine.get_session(txn, sid))

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
        sid = _uuid(session_id, "session_id")
        rid = uuid4() if run_id is None else _uuid(run_id, "run_id")
        if client_request_id is not None and not isinstance(client_request_id, str):
            raise TypeError(f"client_request_id must be a str, got {client_request_id!r}")
        now = datetime.now(UTC)
        record = RunRecord(
            rid,
            sid,
            RunStatus.PENDING,
            str(provider),
            str(model),
            _metadata(metadata, "metadata"),
            client_request_id,
            now,
            now,
        )
        return self._backend.write(lambda txn: self._engine.create_run(txn, record))

    def get_run(self, run_id: UUID | str) -> RunRecord | None:
        """The run record (with its current status), or None when it does not exist."""
        rid = _uuid(run_id, "run_id")
        return self._backend.read(lambda txn: self._engine.get_run(txn, rid))

    def get_run_state(self, run_id: UUID | str) -> RunState | None:
        """The materialized fold of the run's events, or None when the run does not exist."""
        rid = _uuid(run_id, "run_id")
        return self._backend.read(lambda txn: self._engine.get_state(txn, rid))

    def update_run_status(self, run_id: UUID | str, status: RunStatus | str) -> RunRecord:
        """Append ``RunStatusChanged(status)``; ``InvalidTransition`` out of a terminal status."""
        rid = _uuid(run_id, "run_id")
        try:
            new_status = RunStatus(status)
        except ValueError:
            valid = ", ".join(s.value for s in RunStatus)
            raise ValueError(f"unknown run status {status!r}; use one of: {valid}") from None
        req = AppendRequest(rid, [RunStatusChanged(new_status)])

        def work(txn: KVTxn) -> RunRecord:
            self._engine.append(txn, req, datetime.now(UTC))
            record = self._engine.get_run(txn, rid)
            assert record is not None
            return record

        return self._backend.write(work)

    def delete_run(self, run_id: UUID | str) -> bool:
        """Delete the run, its events and its indexes in one transaction; True if it existed.

        Positions of deleted events are never reused; log readers skip them.
        """
        rid = _uuid(run_id, "run_id")
        deleted = self._backend.write(lambda txn: self._engine.delete_run(txn, rid))
        if deleted:
            log.info("run_deleted", path=self.path, run_id=str(rid))
        return deleted

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
        rid = _uuid(run_id, "run_id")
        ev = _check_event(event, "append_event")
        eid = None if event_id is None else _uuid(event_id, "event_id")
        req = AppendRequest(
            rid, (ev,), _check_seq(expected_seq, "expected_seq"), None if eid is None else (eid,)
        )
        return self._write_requests([req])[0][0]

    def append_events(
        self,
        run_id: UUID | str,
        events: Iterable[AnyEvent],
        *,
        expected_seq: int | None = None,
        event_ids: Sequence[UUID | str | None] | None = None,
    ) -> list[EventRecord]:
        """Append a batch atomically (all or nothing), seq numbers consecutive."""
        rid = _uuid(run_id, "run_id")
        req = self._request(rid, events, expected_seq, event_ids, "append_events")
        return self._write_requests([req])[0]

    def append_many(self, requests: Iterable[AppendRequest]) -> list[list[EventRecord]]:
        """Append to several runs in one transaction: all requests or none.

        Each :class:`AppendRequest` carries its own ``expected_seq``; any failure (a conflict,
        an unknown run, a terminal run) aborts the whole call.
        """
        checked = []
        for n, req in enumerate(requests):
            if not isinstance(req, AppendRequest):
                raise TypeError(f"append_many: item {n} must be an AppendRequest, got {req!r:.80}")
            checked.append(
                self._request(
                    _uuid(req.run_id, "run_id"),
                    req.events,
                    req.expected_seq,
                    req.event_ids,
                    f"append_many item {n}",
                )
            )
        return self._write_requests(checked)

    def _request(
        self,
        rid: UUID,
        events: Iterable[AnyEvent],
        expected_seq: int | None,
        event_ids: Sequence[UUID | str | None] | None,
        where: str,
    ) -> AppendRequest:
        if isinstance(events, Event | RawEvent | str | bytes | Mapping):
            raise TypeError(f"{where}: events must be a list of events, got {events!r:.80}")
        evs = tuple(_check_event(e, f"{where} item {i}") for i, e in enumerate(events))
        ids: tuple[UUID | None, ...] | None = None
        if event_ids is not None:
            ids = tuple(None if e is None else _uuid(e, "event_ids item") for e in event_ids)
            if len(ids) != len(evs):
                raise ValueError(
                    f"{where}: {len(ids)} event_ids for {len(evs)} events; give one per event"
                )
        return AppendRequest(rid, evs, _check_seq(expected_seq, "expected_seq"), ids)

    def _write_requests(self, requests: Sequence[AppendRequest]) -> list[list[EventRecord]]:
        engine = self._engine

        def work(txn: KVTxn) -> list[list[EventRecord]]:
            now = datetime.now(UTC)
            return [engine.append(txn, req, now) for req in requests]

        return self._backend.write(work)

    def list_events(
        self,
        run_id: UUID | str,
        *,
        after_seq: int = 0,
        to_seq: int | None = None,
        limit: int | None = None,
    ) -> list[EventRecord]:
        """The run's events in seq order: ``after_seq < seq <= to_seq``, at most ``limit``."""
        rid = _uuid(run_id, "run_id")
        after = _check_seq(after_seq, "after_seq") or 0
        to = _check_seq(to_seq, "to_seq")
        lim = _check_seq(limit, "limit")
        return self._backend.read(
            lambda txn: self._engine.list_events(txn, rid, after_seq=after, to_seq=to, limit=lim)
        )

    def read_log(self, *, after_position: int = 0, limit: int | None = None) -> list[EventRecord]:
        """Events of every run in log position order, after ``after_position``.

        Positions of deleted runs are absent and skipped; the reader never waits for them.
        """
        after = _check_seq(after_position, "after_position") or 0
        lim = _check_seq(limit, "limit")
        return self._backend.read(
            lambda txn: self._engine.read_log(txn, after_position=after, limit=lim)
        )

    def last_position(self) -> int:
        """The highest position ever assigned (0 for an empty log)."""
        return self._backend.read(self._engine.last_position)

    # -- projections ----------------------------------------------------------------------
    def projection(self, name: str) -> ProjectionReader:
        """A read-only view of a registered projector's keyspace (``get`` and ``scan``)."""
        if name not in {p.name for p in self._engine.projectors}:
            known = ", ".join(sorted(p.name for p in self._engine.projectors)) or "none"
            raise KeyError(f"no projector named {name!r} (registered: {known})")
        return _ProjectionView(self, name)

    def rebuild_projections(
        self,
        names: Iterable[str] | None = None,
        *,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        """Rebuild projectors (all, or ``names``) from position 1, in one transaction.

        ``progress(name, checkpoint, last_position)`` is called after each chunk.
        """
        wanted = None if names is None else set(names)
        known = {p.name for p in self._engine.projectors}
        if wanted is not None and not wanted <= known:
            raise KeyError(f"unknown projectors: {sorted(wanted - known)}")
        chosen = [p for p in self._engine.projectors if wanted is None or p.name in wanted]
        self._rebuild(chosen, progress)

    def _rebuild(
        self, chosen: Sequence[Projector], progress: Callable[[str, int, int], None] | None
    ) -> None:
        engine = self._engine

        def work(txn: KVTxn) -> None:
            last = engine.last_position(txn)
            for projector in chosen:
                checkpoint, done = 0, False
                while not done:
                    checkpoint, done = engine.rebuild_step(txn, projector, checkpoint, 1000)
                    if progress is not None:
                        progress(projector.name, checkpoint, last)

        if chosen:
            self._backend.write(work)
            log.info("projections_rebuilt", path=self.path, projectors=[p.name for p in chosen])

    def _catch_up_projectors(self) -> None:
        stale = self._backend.read(self._engine.needs_rebuild)
        self._rebuild(stale, None)

    def _read(self, fn: Callable[[KVTxn], T]) -> T:
        return self._backend.read(fn)


class _ProjectionView:
    """Read-only access to one projector's keyspace; each call is one short read."""

    def __init__(self, store: RunStore, name: str) -> None:
        self._store = store
        self._name = name

    def get(self, key: bytes) -> bytes | None:
        return self._store._read(
            lambda txn: self._store._engine.projection_reader(txn, self._name).get(key)
        )

    def scan(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        return iter(
            self._store._read(
                lambda txn: list(
                    self._store._engine.projection_reader(txn, self._name).scan(prefix)
                )
            )
        )
