"""Streams of other kinds than runs and sessions: their records, listing and deletion.

A stream of another kind has a :class:`~eventlog.model.records.StreamRecord` in ``stream_records``
(kind, metadata, created_at), a ``streams`` entry of kind ``x`` and a ``stream_kinds`` entry
(kind + ``00`` + stream number → stream id) that lists a kind's streams in created order.
Its events are appended and read like a run's (:mod:`eventlog.engine.appends`,
:mod:`eventlog.engine.reads`).
"""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

from eventlog.engine.lineage import forks_of
from eventlog.engine.projectors import ProjectorSet
from eventlog.engine.stream_index import StreamIndex
from eventlog.errors import AlreadyExistsError, StreamHasForks, StreamNotFound
from eventlog.model.records import StreamRecord
from eventlog.storage.codec import STREAM_RECORD, recorded_at_of
from eventlog.storage.keys import pack_u64, prefix_end
from eventlog.storage.kv import KVTxn

__all__ = ["OtherStreams"]


def _kind_key(kind: str, number: bytes) -> bytes:
    return kind.encode() + b"\x00" + number


class OtherStreams:
    """Create, read, list and delete streams of other kinds."""

    def __init__(self, index: StreamIndex, projectors: ProjectorSet) -> None:
        self.index = index
        self.projectors = projectors

    def create_stream(self, txn: KVTxn, record: StreamRecord) -> StreamRecord:
        """Create the stream of ``record`` (``AlreadyExistsError`` if its id is any stream's)."""
        key = record.id.bytes
        raw = txn.get("streams", key)
        if raw is not None:
            what = self.index.stream_kind(txn, record.id)
            raise AlreadyExistsError(
                f"{what} {record.id} already exists; use store.ensure_stream() to reuse a "
                "stream, or another id"
            )
        self.create(txn, record)
        return record

    def create(self, txn: KVTxn, record: StreamRecord) -> bytes:
        """Store a new stream whose id the caller found free; return its stream number.

        Writes the record, the stream number and the ``stream_kinds`` entry and runs the
        projectors' ``on_stream_created`` hooks (``create_stream``, or a first append that
        creates the stream).
        """
        key = record.id.bytes
        txn.put("stream_records", key, STREAM_RECORD.encode(record))
        number = self.index.new_stream(txn, record.id, "stream")
        txn.put("stream_kinds", _kind_key(record.kind, number), key)
        self.projectors.hook(txn, "on_stream_created", record)
        return number

    def is_kind(self, txn: KVTxn, kind: str, number: bytes) -> bool:
        """True when stream ``number`` is a stream of ``kind`` (one point read)."""
        return txn.get("stream_kinds", _kind_key(kind, number)) is not None

    def stream_record(self, txn: KVTxn, stream_id: UUID) -> StreamRecord | None:
        """The stream's record as created (``updated_at`` = ``created_at``)."""
        raw = txn.get("stream_records", stream_id.bytes)
        return None if raw is None else STREAM_RECORD.decode(raw, "stream", stream_id)

    def get_stream(self, txn: KVTxn, stream_id: UUID) -> StreamRecord | None:
        """The stream's record with ``updated_at`` = its last event's time (None: absent)."""
        record = self.stream_record(txn, stream_id)
        if record is None:
            return None
        number = self.index.stream_number(txn, stream_id)
        head = 0 if number is None else self.index.last_seq(txn, number)
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

    def list_kinds(self, txn: KVTxn) -> list[str]:
        """The kinds that have streams, sorted: a skip-scan of ``stream_kinds``.

        The table is keyed kind + ``00`` + stream number, so one seek finds the next kind and
        the next seek starts past all of its entries (kind + ``01``): one read per kind, however
        many streams each kind has. (Kind names are printable ASCII, so no other kind sorts
        between kind + ``00`` and kind + ``01``.)
        """
        kinds: list[str] = []
        start = b""
        while True:
            _, key = txn.values("stream_kinds", start, 1)
            if key is None:
                return kinds
            kind = key[: key.index(b"\x00")]
            kinds.append(kind.decode())
            start = kind + b"\x01"

    def iter_streams(self, txn: KVTxn) -> Iterator[StreamRecord]:
        """Every stream of another kind's record, in id order (rebuilds, exports)."""
        for key, raw in txn.scan("stream_records", b""):
            yield STREAM_RECORD.decode(raw, "stream", UUID(bytes=key))

    def delete_stream(
        self, txn: KVTxn, stream_id: UUID, removed: list[tuple[int, int]] | None = None
    ) -> bool:
        """Delete a stream of another kind with its events and views (idempotent).

        ``removed``: see :meth:`~eventlog.engine.stream_index.StreamIndex.delete_stream`.
        """
        record = self.stream_record(txn, stream_id)
        if record is None:
            found = self.index.stream_kind(txn, stream_id)
            if found is not None:
                raise StreamNotFound(stream_id, found)
            return False
        forks = forks_of(txn, stream_id)
        if forks:
            raise StreamHasForks(stream_id, [f for f, _ in forks], kind=f"stream {record.kind!r}")
        number = self.index.stream_number(txn, stream_id)
        self.index.delete_stream(txn, stream_id, removed)
        if number is not None:
            txn.delete("stream_kinds", _kind_key(record.kind, number))
        self.projectors.hook(txn, "on_stream_deleted", record)
        txn.delete("stream_records", stream_id.bytes)
        return True
