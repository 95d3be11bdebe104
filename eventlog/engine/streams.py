"""Streams of other kinds than runs and sessions: the engine's part (see ``Engine``).

A stream of another kind has a :class:`~eventlog.model.records.StreamRecord` in ``stream_records``
(kind, metadata, created_at), a ``streams`` entry of kind ``x`` and a ``stream_kinds`` entry
(kind + ``00`` + stream number → stream id) that lists a kind's streams in created order.
Its events are appended and read by :class:`~eventlog.engine.core.Engine` like a run's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING
from uuid import UUID

from eventlog.errors import AlreadyExistsError, StreamNotFound
from eventlog.model.records import StreamRecord
from eventlog.storage.codec import STREAM_RECORD, recorded_at_of
from eventlog.storage.keys import pack_u64, prefix_end
from eventlog.storage.kv import KVTxn

if TYPE_CHECKING:
    from eventlog.engine.core import StreamKind
    from eventlog.engine.projectors import ProjectorSet

__all__ = ["OtherStreams"]


def _kind_key(kind: str, number: bytes) -> bytes:
    return kind.encode() + b"\x00" + number


class OtherStreams:
    """Create, read, list and delete streams of other kinds (mixed into ``Engine``)."""

    projectors: ProjectorSet

    def _new_stream(self, txn: KVTxn, stream_id: UUID, kind: StreamKind) -> bytes:
        raise NotImplementedError

    def _delete_stream(self, txn: KVTxn, stream_id: UUID) -> None:
        raise NotImplementedError

    def stream_number(self, txn: KVTxn, stream_id: UUID) -> bytes | None:
        raise NotImplementedError

    def last_seq(self, txn: KVTxn, number: bytes) -> int:
        raise NotImplementedError

    def stream_kind(self, txn: KVTxn, stream_id: UUID) -> StreamKind | None:
        """What ``stream_id`` is: ``"run"``, ``"session"``, ``"stream"`` or None."""
        raw = txn.get("streams", stream_id.bytes)
        if raw is None:
            return None
        code = raw[8:]
        return "run" if code == b"r" else "session" if code == b"s" else "stream"

    def create_stream(self, txn: KVTxn, record: StreamRecord) -> StreamRecord:
        key = record.id.bytes
        raw = txn.get("streams", key)
        if raw is not None:
            what = self.stream_kind(txn, record.id)
            raise AlreadyExistsError(
                f"{what} {record.id} already exists; use store.ensure_stream() to reuse a "
                "stream, or another id"
            )
        txn.put("stream_records", key, STREAM_RECORD.encode(record))
        number = self._new_stream(txn, record.id, "stream")
        txn.put("stream_kinds", _kind_key(record.kind, number), key)
        self.projectors.hook(txn, "on_stream_created", record)
        return record

    def stream_record(self, txn: KVTxn, stream_id: UUID) -> StreamRecord | None:
        """The stream's record as created (``updated_at`` = ``created_at``)."""
        raw = txn.get("stream_records", stream_id.bytes)
        return None if raw is None else STREAM_RECORD.decode(raw, "stream", stream_id)

    def get_stream(self, txn: KVTxn, stream_id: UUID) -> StreamRecord | None:
        """The stream's record with ``updated_at`` = its last event's time (None: absent)."""
        record = self.stream_record(txn, stream_id)
        if record is None:
            return None
        number = self.stream_number(txn, stream_id)
        head = 0 if number is None else self.last_seq(txn, number)
        if number is None or head == 0:
            return record
        value = txn.get("events", number + pack_u64(head))
        last = record.created_at if value is None else recorded_at_of(stream_id, head, value)
        if last <= record.updated_at:
            return record
        return StreamRecord(record.id, record.kind, record.metadata, record.created_at, last)

    def list_streams(self, txn: KVTxn, kind: str, limit: int, offset: int) -> list[StreamRecord]:
        """Streams of ``kind`` in created order (their numbers grow), a page of them."""
        out: list[StreamRecord] = []
        if limit <= 0:
            return out
        prefix = kind.encode() + b"\x00"
        for n, (_, sid) in enumerate(txn.scan("stream_kinds", prefix, prefix_end(prefix))):
            if n < offset:
                continue
            record = self.get_stream(txn, UUID(bytes=sid))
            if record is not None:
                out.append(record)
                if len(out) >= limit:
                    break
        return out

    def iter_streams(self, txn: KVTxn) -> Iterator[StreamRecord]:
        for key, raw in txn.scan("stream_records", b""):
            yield STREAM_RECORD.decode(raw, "stream", UUID(bytes=key))

    def delete_stream(self, txn: KVTxn, stream_id: UUID) -> bool:
        """Delete a stream of another kind with its events and views (idempotent)."""
        record = self.stream_record(txn, stream_id)
        if record is None:
            found = self.stream_kind(txn, stream_id)
            if found is not None:
                raise StreamNotFound(stream_id, found)
            return False
        number = self.stream_number(txn, stream_id)
        self._delete_stream(txn, stream_id)
        if number is not None:
            txn.delete("stream_kinds", _kind_key(record.kind, number))
        self.projectors.hook(txn, "on_stream_deleted", record)
        txn.delete("stream_records", stream_id.bytes)
        return True
