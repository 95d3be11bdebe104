"""Google ADK sessions as events, and the views a session service reads (no ADK import).

``eventlog.integrations.adk.EventLogSessionService`` writes three stream kinds:

- ``"adk.session"``, one per ADK session (id ``stream_id_for("adk.session", key)`` with
  ``key = app_name + NUL + user_id + NUL + session_id``; metadata names the three): an
  :class:`AdkSessionCreated` first, then one :class:`AdkEventAppended` per ADK event (the
  event's JSON as ADK's ``model_dump(mode="json", exclude_none=True)`` gives it, with
  ``temp:`` keys already trimmed, and the session-scoped part of its state delta);
- ``"adk.app"``, one per app, and ``"adk.user"``, one per (app, user): an
  :class:`AdkStateUpdated` for each change of the ``app:`` / ``user:`` scoped state (keys
  without their prefix, as ADK stores them). These outlive every session: deleting a
  session never loses the state it wrote to the shared scopes, and a rebuild agrees.

This projector keeps, in the same transaction as those events (keyspace ``adk``; ``A``,
``U``, ``S`` = the app name, user id and session id, each UTF-8 then ``00``):

- ``s`` + A + U + S → :class:`SessionView` (session-scoped state, last update time, the
  stream's head seq, the last ADK event id): listing by app (``s`` + A) or by user
  (``s`` + A + U) is a prefix read of this index, never a walk of every stream
- ``i`` + the session's stream id (16 bytes) → A + U + S (where its events land)
- ``a`` + A → the app state (a msgpack map); ``u`` + A + U → the user state

Deleting a session's stream (``EventLogSessionService.delete_session`` or
``store.delete_stream``) clears its ``s`` and ``i`` keys in the same transaction.

Only a stream whose id is the one ``stream_id_for`` gives its session, app or user writes
these views (version 2): a fork of such a stream (``fork_stream``) replays the parent's
events under another id, and folding them would make two streams write one session's view
or re-apply old deltas to the shared state, in an order a rebuild does not keep.
"""

from __future__ import annotations

from typing import Any, ClassVar
from uuid import UUID

import msgspec

from eventlog.engine.protocols import ProjectionReader, ProjectionTx
from eventlog.model.records import EventRecord, StreamRecord, stream_id_for
from eventlog.model.registry import event_type

__all__ = [
    "APP_KIND",
    "SESSION_KIND",
    "USER_KIND",
    "AdkEventAppended",
    "AdkSessionCreated",
    "AdkSessionsProjector",
    "AdkStateUpdated",
    "SessionView",
    "app_key",
    "decode_session",
    "decode_state",
    "session_key",
    "user_key",
]

#: The stream kind of an ADK session.
SESSION_KIND = "adk.session"
#: The stream kind of an app's shared (``app:``) state.
APP_KIND = "adk.app"
#: The stream kind of a user's shared (``user:``) state within an app.
USER_KIND = "adk.user"


@event_type("adk.session_created")
class AdkSessionCreated(msgspec.Struct, frozen=True):
    """An ADK session was created with ``state`` (its session scope) at ``time`` (epoch s)."""

    app_name: str
    user_id: str
    session_id: str
    state: dict[str, Any]
    time: float


@event_type("adk.event")
class AdkEventAppended(msgspec.Struct, frozen=True):
    """An ADK event (its JSON, exactly as ADK dumps it) and its session-scoped state delta."""

    event: dict[str, Any]
    id: str
    timestamp: float
    delta: dict[str, Any] = {}


@event_type("adk.state_updated")
class AdkStateUpdated(msgspec.Struct, frozen=True):
    """A change of an app's (``user_id`` None) or a user's shared state (unprefixed keys)."""

    app_name: str
    user_id: str | None
    delta: dict[str, Any]


class SessionView(msgspec.Struct, array_like=True):
    """What a read needs of a session without its events."""

    state: dict[str, Any]
    last_update_time: float
    seq: int
    last_event_id: str | None = None


_view_enc = msgspec.msgpack.Encoder()
_view_dec = msgspec.msgpack.Decoder(SessionView)
_state_dec = msgspec.msgpack.Decoder(dict[str, Any])


def _part(text: str) -> bytes:
    return text.encode() + b"\x00"


def app_key(app_name: str) -> bytes:
    """``a`` + the app: where the app state is kept."""
    return b"a" + _part(app_name)


def user_key(app_name: str, user_id: str) -> bytes:
    """``u`` + app + user: where the user state is kept."""
    return b"u" + _part(app_name) + _part(user_id)


def session_key(app_name: str, user_id: str, session_id: str) -> bytes:
    r"""``s`` + app + user + session: the session's :class:`SessionView`.

    >>> session_key("app", "u1", "s1")
    b'sapp\x00u1\x00s1\x00'
    """
    return b"s" + _part(app_name) + _part(user_id) + _part(session_id)


def decode_session(raw: bytes) -> SessionView:
    """A stored :class:`SessionView`."""
    return _view_dec.decode(raw)


def decode_state(raw: bytes | None) -> dict[str, Any]:
    """A stored app or user state ({} when absent)."""
    return {} if raw is None else _state_dec.decode(raw)


def _state_stream(event: AdkStateUpdated) -> UUID:
    """The stream that holds the app's (or user's) state changes."""
    if event.user_id is None:
        return stream_id_for(APP_KIND, event.app_name)
    return stream_id_for(USER_KIND, f"{event.app_name}\x00{event.user_id}")


def _update(tx: ProjectionTx, key: bytes, delta: dict[str, Any]) -> None:
    state = decode_state(tx.get(key))
    state.update(delta)
    tx.put(key, _view_enc.encode(state))


class AdkSessionsProjector:
    """Keeps the ADK session index and the shared app and user states (keyspace ``adk``)."""

    name: ClassVar[str] = "adk"
    # 2: only the streams named by stream_id_for write the views (not their forks)
    version: ClassVar[int] = 2
    event_types: ClassVar[frozenset[str]] = frozenset(
        {"adk.session_created", "adk.event", "adk.state_updated"}
    )
    replay_order: ClassVar[str] = "stream"

    def apply(self, tx: ProjectionTx, record: EventRecord) -> None:
        event = record.event
        if isinstance(event, AdkEventAppended):
            sid = tx.get(b"i" + record.run_id.bytes)
            if sid is None:
                return  # a stream of this kind not created by AdkSessionCreated: no view
            key = b"s" + sid
            view = decode_session(tx.get(key) or b"")
            view.state.update(event.delta)
            view.last_update_time = event.timestamp
            view.seq = record.seq
            view.last_event_id = event.id
            tx.put(key, _view_enc.encode(view))
        elif isinstance(event, AdkSessionCreated):
            name = f"{event.app_name}\x00{event.user_id}\x00{event.session_id}"
            if record.run_id != stream_id_for(SESSION_KIND, name):
                return  # another stream (a fork of the session's): not this session's view
            key = session_key(event.app_name, event.user_id, event.session_id)
            tx.put(b"i" + record.run_id.bytes, key[1:])
            view = SessionView(dict(event.state), event.time, record.seq)
            tx.put(key, _view_enc.encode(view))
        elif isinstance(event, AdkStateUpdated):
            if record.run_id != _state_stream(event):
                return  # a fork of the app's or user's stream: its deltas are the parent's
            if event.user_id is None:
                _update(tx, app_key(event.app_name), event.delta)
            else:
                _update(tx, user_key(event.app_name, event.user_id), event.delta)

    def on_stream_deleted(self, tx: ProjectionTx, stream: StreamRecord) -> None:
        """A session's stream was deleted: so is its index entry (shared state stays)."""
        if stream.kind == SESSION_KIND:
            index = b"i" + stream.id.bytes
            sid = tx.get(index)
            if sid is not None:
                tx.delete(b"s" + sid)
                tx.delete(index)

    def query(self, reader: ProjectionReader) -> ProjectionReader:
        """The reader ``store.projection("adk")`` returns (keys as in the module docstring)."""
        return reader
