"""The stream index: every stream's number, kind and head, and the log's last position.

Every run, session and stream of another kind is a *stream*: ``streams`` maps its id to an
8-byte stream number (handed out in order, never reused) plus a one-byte kind code, and
``stream_ids`` maps the number back. A stream's events are keyed by number + seq in
``events``, so a stream's head is one cursor step; ``positions`` maps each log position to
the event's key, so the log's last position is another.
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from eventlog.engine.lineage import fork_head, mark_no_fork, unlink_fork
from eventlog.errors import RunNotFound, SessionNotFound, StreamNotFound
from eventlog.storage.codec import decode_event
from eventlog.storage.keys import SEQ_END, pack_u64, prefix_end, unpack_u64
from eventlog.storage.kv import KVTxn

__all__ = ["Accepts", "StreamIndex", "StreamKind"]

#: What a stream is: a run, a session's messages, or a stream of another kind (whose kind
#: name is in its :class:`~eventlog.model.records.StreamRecord`).
StreamKind = Literal["run", "session", "stream"]
#: What an operation accepts: one kind, sessions or streams of other kinds, or any stream.
Accepts = Literal["run", "session", "stream", "session_or_stream", "any"]
_KIND: dict[str, bytes] = {"run": b"r", "session": b"s", "stream": b"x"}
_CODES: dict[str, frozenset[bytes]] = {
    **{k: frozenset({v}) for k, v in _KIND.items()},
    "session_or_stream": frozenset({b"s", b"x"}),
    "any": frozenset(_KIND.values()),
}


def _kind_of(raw: bytes) -> StreamKind:
    """The kind of a stream from its ``streams`` value (number + kind code)."""
    code = raw[8:]
    return "run" if code == b"r" else "session" if code == b"s" else "stream"


class StreamIndex:
    """Stream numbers, kinds and heads; new and deleted streams; the last log position."""

    def new_stream(self, txn: KVTxn, stream_id: UUID, kind: StreamKind) -> bytes:
        """Give a new stream the next stream number (never reused); return it."""
        last = txn.last_key("stream_ids")
        number = pack_u64(1 if last is None else unpack_u64(last) + 1)
        txn.put("streams", stream_id.bytes, number + _KIND[kind])
        txn.put("stream_ids", number, stream_id.bytes, append=True)
        # a new stream is no fork (a fork is linked after this): said now, so that its first
        # append's head read (``last_seq``) needs no round trip to a remote server to learn it
        mark_no_fork(txn, number)
        return number

    def check_stream(self, txn: KVTxn, stream_id: UUID, kind: Accepts) -> bytes:
        """The stream's number (8 bytes); ``RunNotFound``/``SessionNotFound``/``StreamNotFound``."""
        return self.number_of(stream_id, txn.get("streams", stream_id.bytes), kind)

    def number_of(self, stream_id: UUID, raw: bytes | None, kind: Accepts) -> bytes:
        """:meth:`check_stream` of the ``streams`` value ``raw`` already read."""
        if raw is None or raw[8:] not in _CODES[kind]:
            if kind == "run":
                raise RunNotFound(stream_id)
            if kind == "session":
                raise SessionNotFound(stream_id)
            raise StreamNotFound(stream_id, None if raw is None else _kind_of(raw))
        return raw[:8]

    def stream_kind(self, txn: KVTxn, stream_id: UUID) -> StreamKind | None:
        """What ``stream_id`` is: ``"run"``, ``"session"``, ``"stream"`` or None."""
        raw = txn.get("streams", stream_id.bytes)
        return None if raw is None else _kind_of(raw)

    def stream_number(self, txn: KVTxn, stream_id: UUID) -> bytes | None:
        """The 8-byte number of stream ``stream_id`` (None: no such stream)."""
        raw = txn.get("streams", stream_id.bytes)
        return None if raw is None else raw[:8]

    def stream_of(self, txn: KVTxn, number: bytes) -> UUID | None:
        """The run, session or stream id that owns stream ``number`` (None: none)."""
        raw = txn.get("stream_ids", number)
        return UUID(bytes=raw) if raw else None

    def event_key(self, txn: KVTxn, stream_id: UUID, seq: int) -> bytes:
        """The ``events`` key of ``stream_id``'s event ``seq`` (for tools and tests)."""
        raw = txn.get("streams", stream_id.bytes)
        if raw is None:
            raise RunNotFound(stream_id)
        return raw[:8] + pack_u64(seq)

    def last_seq(self, txn: KVTxn, number: bytes) -> int:
        """The head of stream ``number``: the seq of its last event (0 when it has none)."""
        key = txn.last_key("events", number + SEQ_END)
        if key is None or key[:8] != number:  # no events of its own: a fork's head is its base
            return fork_head(txn, number)
        return unpack_u64(key[8:])

    def last_position(self, txn: KVTxn) -> int:
        """The highest position ever assigned: the last key of ``positions``.

        Deleting a run keeps a tombstone (empty value) at the highest position instead of
        deleting it, so positions are never handed out twice.
        """
        key = txn.last_key("positions")
        return 0 if key is None else unpack_u64(key)

    def delete_stream(
        self, txn: KVTxn, stream_id: UUID, removed: list[tuple[int, int]] | None = None
    ) -> None:
        """Delete a stream's events, their positions, idempotency keys and its number.

        The log's highest position, if it belongs to this stream, becomes a tombstone so it is
        never handed out again; so does the highest stream number. ``removed`` (retention)
        receives ``(position, stored size)`` of every event deleted.
        """
        raw = txn.get("streams", stream_id.bytes)
        if raw is None:
            return
        number = raw[:8]
        unlink_fork(txn, number)
        events = list(txn.scan("events", number + pack_u64(1), number + SEQ_END))
        highest = self.last_position(txn)
        for key, value in events:
            position = decode_event(stream_id, unpack_u64(key[8:]), value).position
            if removed is not None:
                removed.append((position, len(key) + len(value)))
            if position == highest:
                txn.put("positions", pack_u64(position), b"")
            else:
                txn.discard("positions", pack_u64(position))
            txn.discard("events", key)
        sid = stream_id.bytes
        for key, _ in list(txn.scan("event_ids", sid, prefix_end(sid))):
            txn.discard("event_ids", key)
        txn.discard("streams", sid)
        if txn.last_key("stream_ids") == number:
            txn.put("stream_ids", number, b"")  # tombstone: the number is never reused
        else:
            txn.discard("stream_ids", number)
