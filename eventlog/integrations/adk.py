"""A Google ADK session service on an eventlog store: ``EventLogSessionService(store)``.

It implements ADK's ``BaseSessionService`` (``create_session``, ``get_session`` with
``GetSessionConfig``, ``list_sessions``, ``delete_session``, ``append_event``,
``get_user_state``) over the store's streams (``pip install 'agent-eventlog[adk]'``; tested
with google-adk 2.13):

- each ADK session is a stream of kind ``"adk.session"``; each ADK event one event of it,
  stored as ADK's own JSON (``model_dump(mode="json", exclude_none=True)``): content is data,
  never interpreted. The ``app:`` and ``user:`` scoped state live in streams of their own
  (``"adk.app"``, ``"adk.user"``), written in the same transaction as the event, so they
  outlive any one session, as in ADK;
- state deltas are applied as ADK applies them: ``temp:`` keys reach the caller's session
  object but are never stored; ``app:`` / ``user:`` keys go to the shared scopes (stored
  without the prefix, returned with it); the rest to the session;
- the built-in ``adk`` projector (``projections/adk_sessions.py``) keeps, in the same
  transaction, each session's state and last update time and the shared states, indexed by
  (app, user, session): ``get_session`` is one snapshot read, ``list_sessions`` a prefix read
  of the index for that app (and user);
- a session object carries the stream head it was read at; ``append_event`` from a copy
  that another writer has overtaken raises ADK's ``StaleSessionError`` and writes nothing
  (the head is the append's ``expected_seq``); an equal re-delivery of a stored event is
  not stored twice, as in ADK's ``InMemorySessionService``;
- rewinding (``Runner.rewind_async``) is an event like any other: it works unchanged.

``store`` is an open :class:`~eventlog.RunStore` (writes run in a worker thread) or
:class:`~eventlog.AsyncRunStore` (writes are awaited on its group committer; preferred).
Errors are ADK's where ADK defines one (``AlreadyExistsError``, ``SessionNotFoundError``,
``StaleSessionError``), else eventlog's.

>>> import asyncio
>>> from eventlog import RunStore
>>> from google.adk.events import Event, EventActions
>>> store = RunStore.in_memory()
>>> service = EventLogSessionService(store)
>>> async def demo():
...     s = await service.create_session(app_name="app", user_id="u1", state={"app:mode": "x"})
...     delta = {"count": 1, "user:lang": "fr", "temp:scratch": 1}
...     await service.append_event(s, Event(author="user", actions=EventActions(state_delta=delta)))
...     again = await service.get_session(app_name="app", user_id="u1", session_id=s.id)
...     return sorted(again.state.items()), len(again.events)
>>> asyncio.run(demo())
([('app:mode', 'x'), ('count', 1), ('user:lang', 'fr')], 1)
>>> store.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID, uuid5

import msgspec
from google.adk.errors import StaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event
from google.adk.platform import time as platform_time
from google.adk.platform import uuid as platform_uuid
from google.adk.sessions.base_session_service import (
    BaseSessionService,
    GetSessionConfig,
    ListSessionsResponse,
)
from google.adk.sessions.session import Session
from google.adk.sessions.state import State
from pydantic_core import to_jsonable_python
from typing_extensions import override

from eventlog.engine.appends import AppendRequest
from eventlog.errors import ConcurrencyError, NestingTooDeepError, StreamNotFound
from eventlog.integrations.stream_writes import acommit
from eventlog.model.limits import MAX_NESTING_DEPTH
from eventlog.model.records import EventRecord, stream_id_for
from eventlog.model.validation import check_events
from eventlog.storage.keys import prefix_end
from eventlog.storage.kv import KVTxn
from eventlog.store.async_run_store import AsyncRunStore
from eventlog.store.run_store import RunStore
from projections.adk_sessions import (
    APP_KIND,
    SESSION_KIND,
    USER_KIND,
    AdkEventAppended,
    AdkSessionCreated,
    AdkStateUpdated,
    SessionView,
    app_key,
    decode_session,
    decode_state,
    session_key,
    user_key,
)

__all__ = ["EventLogSessionService"]

T = TypeVar("T")

_MAX_ID = 128  # bytes of an app name, user id or session id (the index keys hold all three)
_PREFIX = b"adk\x00"  # the projector's keyspace
#: ids of stored ADK events: the same event content, the same id (re-deliveries dedupe)
_EVENT_IDS = UUID("0f7c8a52-31d4-5b8e-9f0a-6ad3c2b1e4f7")
_STALE = (
    "The session has been modified in storage since it was loaded. "
    "Please reload the session before appending more events."
)


def _name(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__}: {value!r:.80}")
    if "\x00" in value:
        raise ValueError(f"{what} {value!r:.80} contains a NUL character; remove it")
    size = len(value.encode())
    if size > _MAX_ID:
        raise ValueError(f"{what} is {size} bytes; keep it at most {_MAX_ID}")
    return value


def _session_stream(app_name: str, user_id: str, session_id: str) -> UUID:
    return stream_id_for(SESSION_KIND, f"{app_name}\x00{user_id}\x00{session_id}")


def _merged(
    view_state: Mapping[str, Any], app: Mapping[str, Any], user: Mapping[str, Any]
) -> dict[str, Any]:
    state = dict(view_state)
    for key, value in app.items():
        state[State.APP_PREFIX + key] = value
    for key, value in user.items():
        state[State.USER_PREFIX + key] = value
    return state


def _json_safe(state: Mapping[str, Any]) -> dict[str, Any]:
    """``state`` as JSON data, what ADK's persistent services store.

    A value with no JSON form is stored as its ``repr`` rather than failing the write, as
    ADK does.
    """
    try:
        return dict(to_jsonable_python(state))
    except Exception:  # pydantic_core raises its own error types for unknown values
        return dict(to_jsonable_python(state, fallback=repr))


@contextlib.contextmanager
def _too_deep(where: str, what: str) -> Iterator[None]:
    """Turn pydantic's refusal of a value nested too deeply to serialize into ours."""
    try:
        yield
    except (RecursionError, ValueError) as exc:
        if isinstance(exc, RecursionError) or "depth" in str(exc):
            raise NestingTooDeepError(where, what, MAX_NESTING_DEPTH) from None
        raise


def _scopes(state: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``state`` split into the app, user and session scopes, each as JSON data.

    The prefixes are removed and ``temp:`` keys dropped: ADK's own split, as its services
    apply it.
    """
    out: dict[str, dict[str, Any]] = {"app": {}, "user": {}, "session": {}}
    for key, value in state.items():
        if key.startswith(State.APP_PREFIX):
            out["app"][key.removeprefix(State.APP_PREFIX)] = value
        elif key.startswith(State.USER_PREFIX):
            out["user"][key.removeprefix(State.USER_PREFIX)] = value
        elif not key.startswith(State.TEMP_PREFIX):
            out["session"][key] = value
    return {scope: _json_safe(part) for scope, part in out.items()}


def _shared_changes(
    app_name: str, user_id: str, deltas: Mapping[str, dict[str, Any]], where: str
) -> list[tuple[UUID, AppendRequest]]:
    """The checked appends of a call's ``app:`` / ``user:`` changes (a stream each)."""
    out: list[tuple[UUID, AppendRequest]] = []
    if deltas["app"]:
        sid = stream_id_for(APP_KIND, app_name)
        events = check_events([AdkStateUpdated(app_name, None, deltas["app"])], where)
        out.append((sid, AppendRequest(sid, events, 0, None, APP_KIND, {"app_name": app_name})))
    if deltas["user"]:
        sid = stream_id_for(USER_KIND, f"{app_name}\x00{user_id}")
        events = check_events([AdkStateUpdated(app_name, user_id, deltas["user"])], where)
        meta = {"app_name": app_name, "user_id": user_id}
        out.append((sid, AppendRequest(sid, events, 0, None, USER_KIND, meta)))
    return out


class _Heads:
    """The stream head each live session object was read or written at.

    ADK sessions are unhashable pydantic models: entries are keyed by ``id()`` and hold a
    weak reference that removes the entry when the object is collected. A session object the
    service never handed out (built by hand, or a copy) has no head: the stale check then
    compares its last update time and last event, as ADK's services do.
    """

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[weakref.ref[Session], int]] = {}

    def get(self, session: Session) -> int | None:
        entry = self._by_id.get(id(session))
        return entry[1] if entry is not None and entry[0]() is session else None

    def set(self, session: Session, seq: int) -> None:
        key, by_id = id(session), self._by_id

        def gone(ref: weakref.ref[Session]) -> None:
            entry = by_id.get(key)
            if entry is not None and entry[0] is ref:
                del by_id[key]

        by_id[key] = (weakref.ref(session, gone), seq)


class _Stored(msgspec.Struct):
    """The fields of an :class:`AdkEventAppended` a read needs (msgspec skips the rest)."""

    event: dict[str, Any] = {}
    timestamp: float = 0.0


def _event(stored: _Stored) -> Event:
    return Event.model_validate(stored.event)


class EventLogSessionService(BaseSessionService):
    """An ADK ``BaseSessionService`` over an open ``RunStore`` or ``AsyncRunStore``.

    >>> from eventlog import RunStore
    >>> service = EventLogSessionService(RunStore.in_memory())
    >>> import asyncio
    >>> asyncio.run(service.list_sessions(app_name="app")).sessions
    []
    """

    def __init__(self, store: RunStore | AsyncRunStore) -> None:
        self._async: AsyncRunStore | None = None
        if isinstance(store, AsyncRunStore):
            self._sync, self._async = store.sync, store
        elif isinstance(store, RunStore):
            self._sync = store
        else:
            raise TypeError(
                "EventLogSessionService(store): store must be an open eventlog RunStore or "
                f"AsyncRunStore, got {type(store).__name__}; open one with RunStore.open(path)"
            )
        core = self._sync.core
        self._remote = core.remote
        self._engine = core.engine
        self._streams = core.plans.streams
        self._heads = _Heads()

    # -- running plans --------------------------------------------------------------------
    async def _write(self, plan: Callable[[KVTxn], T]) -> T:
        if self._async is not None:
            return await acommit(self._async, plan, finish=True)
        return await asyncio.to_thread(self._sync.core.committer.submit, plan)

    async def _read(self, plan: Callable[[KVTxn], T]) -> T:
        read = self._sync.core.backend.read
        if self._remote:  # a round trip: never on the loop
            return await asyncio.to_thread(read, plan)
        return read(plan)  # microseconds on an embedded store

    @staticmethod
    def _get(txn: KVTxn, key: bytes) -> bytes | None:
        return txn.get("projections", _PREFIX + key)

    def _shared(
        self, txn: KVTxn, app_name: str, user_id: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        app = decode_state(self._get(txn, app_key(app_name)))
        return app, decode_state(self._get(txn, user_key(app_name, user_id)))

    def _append(self, txn: KVTxn, req: AppendRequest, now: datetime) -> list[EventRecord]:
        return self._engine.appends.append(txn, req, now, kind="session_or_stream")

    def _share(
        self, txn: KVTxn, shared: Sequence[tuple[UUID, AppendRequest]], now: datetime
    ) -> None:
        """Append the shared-state changes, creating each stream on its first change."""
        for sid, create in shared:
            try:
                self._append(txn, AppendRequest(sid, create.events), now)
            except StreamNotFound:
                self._append(txn, create, now)

    # -- BaseSessionService ---------------------------------------------------------------
    @override
    async def create_session(
        self,
        *,
        app_name: str,
        user_id: str,
        state: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session:
        """Create a session (``AlreadyExistsError`` if ``session_id`` is taken)."""
        _name(app_name, "app_name")
        _name(user_id, "user_id")
        if session_id is not None:
            session_id = _name(session_id, "session_id").strip() or None
        sid_text = session_id or platform_uuid.new_uuid()
        if state is not None and not isinstance(state, Mapping):
            raise TypeError(f"state must be a dict, got {type(state).__name__}")
        with _too_deep("create_session", "the state"):
            deltas = _scopes(state or {})
        created = AdkSessionCreated(
            app_name, user_id, sid_text, deltas["session"], platform_time.get_time()
        )
        stream = _session_stream(app_name, user_id, sid_text)
        meta = {"app_name": app_name, "user_id": user_id, "session_id": sid_text}
        checked = check_events([created], "create_session")
        req = AppendRequest(stream, checked, 0, None, SESSION_KIND, meta)
        shared = _shared_changes(app_name, user_id, deltas, "create_session")

        def plan(txn: KVTxn) -> tuple[int, dict[str, Any], dict[str, Any]]:
            now = datetime.now(UTC)
            try:
                seq = self._append(txn, req, now)[-1].seq
            except ConcurrencyError:
                raise AlreadyExistsError(f"Session with id {sid_text} already exists.") from None
            self._share(txn, shared, now)
            return (seq, *self._shared(txn, app_name, user_id))

        seq, app, user = await self._write(plan)
        session = Session(
            app_name=app_name,
            user_id=user_id,
            id=sid_text,
            state=_merged(created.state, app, user),
            last_update_time=created.time,
        )
        self._heads.set(session, seq)
        return session

    @override
    async def get_session(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> Session | None:
        """The session with its events (``config``: the recent ones, those after a time)."""
        _name(app_name, "app_name")
        _name(user_id, "user_id")
        session_id = _name(session_id, "session_id").strip()
        recent = config.num_recent_events if config is not None else None
        after = config.after_timestamp if config is not None else None
        key = session_key(app_name, user_id, session_id)
        stream = _session_stream(app_name, user_id, session_id)
        events_of = self._streams.read_stream_view

        def plan(
            txn: KVTxn,
        ) -> tuple[SessionView, list[_Stored], dict[str, Any], dict[str, Any]] | None:
            raw = self._get(txn, key)
            if raw is None:
                return None
            view = decode_session(raw)
            if recent == 0:
                rows: list[tuple[int, str, _Stored]] = []
            elif recent is None:
                rows = events_of(stream, _Stored, 1, None, None, False)(txn)
            else:
                rows = events_of(stream, _Stored, 1, None, recent, True)(txn)
                rows.reverse()
            stored = [v for _, type_name, v in rows if type_name == "adk.event"]
            return (view, stored, *self._shared(txn, app_name, user_id))

        found = await self._read(plan)
        if found is None:
            return None
        view, stored, app, user = found
        if after is not None:  # as ADK's in-memory service: from the newest back
            i = len(stored) - 1
            while i >= 0 and stored[i].timestamp >= after:
                i -= 1
            stored = stored[i + 1 :]
        session = Session(
            app_name=app_name,
            user_id=user_id,
            id=session_id,
            state=_merged(view.state, app, user),
            events=[_event(e) for e in stored],
            last_update_time=view.last_update_time,
        )
        self._heads.set(session, view.seq)
        return session

    @override
    async def list_sessions(
        self, *, app_name: str, user_id: str | None = None
    ) -> ListSessionsResponse:
        """The app's sessions (of one user, or of all), without events, oldest update first."""
        _name(app_name, "app_name")
        if user_id is not None:
            _name(user_id, "user_id")
        prefix = _PREFIX + (
            session_key(app_name, user_id, "")[:-1]
            if user_id is not None
            else b"s" + app_name.encode() + b"\x00"
        )
        users_prefix = _PREFIX + user_key(app_name, "")[:-1]

        def plan(
            txn: KVTxn,
        ) -> tuple[list[tuple[bytes, bytes]], dict[str, Any], dict[bytes, dict[str, Any]]]:
            rows = list(txn.scan("projections", prefix, prefix_end(prefix)))
            app = decode_state(self._get(txn, app_key(app_name)))
            if user_id is not None:
                users = {
                    user_id.encode(): decode_state(self._get(txn, user_key(app_name, user_id)))
                }
            else:
                cut = len(users_prefix)
                users = {
                    k[cut:-1]: decode_state(v)
                    for k, v in txn.scan("projections", users_prefix, prefix_end(users_prefix))
                }
            return rows, app, users

        rows, app, users = await self._read(plan)
        cut = len(_PREFIX) + 1 + len(app_name.encode()) + 1
        sessions: list[Session] = []
        for k, v in rows:
            uid, sid = k[cut:-1].split(b"\x00", 1)
            view = decode_session(v)
            session = Session(
                app_name=app_name,
                user_id=uid.decode(),
                id=sid.decode(),
                state=_merged(view.state, app, users.get(uid, {})),
                last_update_time=view.last_update_time,
            )
            sessions.append(session)
        sessions.sort(key=lambda s: (s.last_update_time, s.user_id, s.id))
        return ListSessionsResponse(sessions=sessions)

    @override
    async def delete_session(self, *, app_name: str, user_id: str, session_id: str) -> None:
        """Delete the session and its events (nothing happens if there is none)."""
        _name(app_name, "app_name")
        _name(user_id, "user_id")
        session_id = _name(session_id, "session_id").strip()
        await self._write(
            self._streams.delete_stream(_session_stream(app_name, user_id, session_id))
        )

    @override
    async def get_user_state(self, *, app_name: str, user_id: str) -> dict[str, Any]:
        """The user's shared state (keys without ``user:``; {} when none)."""
        key = user_key(_name(app_name, "app_name"), _name(user_id, "user_id"))
        return await self._read(lambda txn: decode_state(self._get(txn, key)))

    @override
    async def append_event(self, session: Session, event: Event) -> Event:
        """Store ``event`` and apply its state delta (``StaleSessionError``: reload first)."""
        if not isinstance(session, Session) or not isinstance(event, Event):
            raise TypeError(
                "append_event(session, event) takes an ADK Session and Event, got "
                f"{type(session).__name__} and {type(event).__name__}"
            )
        if event.partial:
            return event
        app_name, user_id = session.app_name, session.user_id
        key = session_key(app_name, user_id, session.id)
        stream = _session_stream(app_name, user_id, session.id)
        delta = dict(event.actions.state_delta or {}) if event.actions else {}
        kept = {k: v for k, v in delta.items() if not k.startswith(State.TEMP_PREFIX)}
        with _too_deep("append_event", "the event"):
            deltas = _scopes(kept)
            data = event.model_dump(exclude_none=True, mode="json")
            if "actions" in data:
                data["actions"]["state_delta"] = _json_safe(kept)
        canon = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        event_id = uuid5(_EVENT_IDS, canon)
        stored = check_events(
            [AdkEventAppended(data, event.id, event.timestamp, deltas["session"])], "append_event"
        )
        shared = _shared_changes(app_name, user_id, deltas, "append_event")
        marker = self._heads.get(session)
        last_id = session.events[-1].id if session.events else None
        known = session.last_update_time

        def plan(txn: KVTxn) -> int | None:
            raw = self._get(txn, key)
            if raw is None:
                raise SessionNotFoundError(f"Session {session.id} not found.")
            view = decode_session(raw)
            head = view.seq
            if marker is not None:
                if marker != head:
                    raise StaleSessionError(_STALE)
            elif view.last_update_time > known and view.last_event_id != last_id:
                raise StaleSessionError(_STALE)
            now = datetime.now(UTC)
            req = AppendRequest(stream, stored, None, (event_id,))
            record = self._append(txn, req, now)[-1]
            if record.seq <= head:
                return None  # an equal event stored before: nothing new
            self._share(txn, shared, now)
            return record.seq

        seq = await self._write(plan)
        if seq is None:
            return event
        self._apply_temp_state(session, event)
        event = self._trim_temp_delta_state(event)
        self._commit_event_to_session(session, event)
        session.last_update_time = event.timestamp
        self._heads.set(session, seq)
        return event
