"""The stream an append request names by kind: checked, or created on its first append.

A request with a ``kind`` (:class:`~eventlog.engine.appends.AppendRequest`) must find a stream
of that kind; a request for a stream of another kind with ``expected_seq=0`` creates a
missing one in the caller's transaction, exactly as ``create_stream`` does (the record, the
stream number, the ``stream_kinds`` entry and the projectors' ``on_stream_created`` hooks),
so a new stream's first events cost one commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from uuid import UUID

from eventlog.engine.stream_index import StreamIndex
from eventlog.engine.streams import OtherStreams
from eventlog.errors import RunNotFound, SessionNotFound, StreamKindError, StreamNotFound
from eventlog.model.records import StreamRecord
from eventlog.storage.kv import KVTxn

__all__ = ["StreamTargets"]

_CODE = {"run": b"r", "session": b"s"}


class StreamTargets:
    """Resolve a request's stream by kind, creating a missing stream of another kind."""

    def __init__(self, index: StreamIndex, streams: OtherStreams) -> None:
        self.index = index
        self.streams = streams

    def open(
        self,
        txn: KVTxn,
        stream_id: UUID,
        kind: str,
        expected_seq: int | None,
        metadata: Mapping[str, object] | None,
        now: datetime,
    ) -> bytes:
        """The number of stream ``stream_id`` of ``kind``, creating it if it is missing.

        Creates it only for a stream kind with ``expected_seq == 0``; otherwise a missing
        stream is a ``RunNotFound``/``SessionNotFound``/``StreamNotFound`` (for what ``kind``
        names), and one that exists as another kind a ``StreamKindError``.
        """
        raw = txn.get("streams", stream_id.bytes)
        if raw is None:
            if kind == "run":
                raise RunNotFound(stream_id)
            if kind == "session":
                raise SessionNotFound(stream_id)
            if expected_seq != 0:
                raise StreamNotFound(stream_id)
            record = StreamRecord(stream_id, kind, dict(metadata or {}), now, now)
            return self.streams.create(txn, record)
        number, code = raw[:8], raw[8:]
        want = _CODE.get(kind)
        if want is not None:
            if code == want:
                return number
        elif code == b"x" and self.streams.is_kind(txn, kind, number):
            return number
        raise StreamKindError(stream_id, kind, self._found(txn, stream_id, code))

    def what(self, txn: KVTxn, stream_id: UUID) -> str:
        """What the existing stream ``stream_id`` is: ``"run"``, ``"session"`` or its kind.

        For error messages (a ``ConcurrencyError`` names the stream's kind): two point reads.
        """
        raw = txn.get("streams", stream_id.bytes)
        return "stream" if raw is None else self._found(txn, stream_id, raw[8:])

    def _found(self, txn: KVTxn, stream_id: UUID, code: bytes) -> str:
        """What the existing stream is: ``"run"``, ``"session"`` or its stream kind."""
        if code == b"r":
            return "run"
        if code == b"s":
            return "session"
        record = self.streams.stream_record(txn, stream_id)
        return "stream" if record is None else record.kind
