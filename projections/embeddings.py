"""The embeddings view: every live embedding, by stream and by session, and the dimension.

Fed by the events of the ``eventlog.embedding`` streams (see :mod:`eventlog.model.embeddings`).
Keys (this projector's keyspace):

- ``d`` → the store's dimension (u64; set by the first upsert or ``EmbeddingsConfigured``)
- ``n`` → how many embeddings are live (u64)
- ``e`` + stream id → the embedding (:class:`Entry`, msgpack, the vector as float32 bytes)
- ``s`` + session id + stream id → ``b""`` (a session's embeddings)

Exact search reads ``e`` (or a session's ``s`` keys); the approximate index of an LMDB store
is derived from this view and the log (``eventlog.store.embedding_index``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar
from uuid import UUID

import msgspec

from eventlog.engine.protocols import ProjectionReader, ProjectionTx
from eventlog.model.embeddings import (
    EMBEDDING_KIND,
    EmbeddingDeleted,
    EmbeddingsConfigured,
    EmbeddingUpserted,
)
from eventlog.model.records import EventRecord, StreamRecord
from projections._keys import read_u64, u64

__all__ = ["EmbeddingsProjector", "EmbeddingsQuery", "Entry"]


class Entry(msgspec.Struct, array_like=True, frozen=True):
    """One live embedding as the view keeps it."""

    embedding_id: str
    vector: bytes
    session_id: UUID | None
    run_id: UUID | None
    text: str | None
    metadata: dict[str, Any]


_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(Entry)


class EmbeddingsQuery:
    """Reads of the embeddings view (one snapshot per reader)."""

    def __init__(self, reader: ProjectionReader) -> None:
        self._reader = reader

    def dimension(self) -> int | None:
        """The store's dimension (None before the first upsert or configuration)."""
        raw = self._reader.get(b"d")
        return None if raw is None else read_u64(raw)

    def count(self) -> int:
        """How many embeddings are live."""
        return read_u64(self._reader.get(b"n"))

    def entry(self, stream_id: UUID) -> Entry | None:
        """The embedding stored in stream ``stream_id``, or None."""
        raw = self._reader.get(b"e" + stream_id.bytes)
        return None if raw is None else _dec.decode(raw)

    def entries(self, session_id: UUID | None = None) -> Iterator[tuple[UUID, Entry]]:
        """``(stream id, entry)`` of every embedding (or of one session's), in stream id order."""
        if session_id is None:
            for key, raw in self._reader.scan(b"e"):
                yield UUID(bytes=key[1:]), _dec.decode(raw)
            return
        for key, _ in self._reader.scan(b"s" + session_id.bytes):
            sid = UUID(bytes=key[17:])
            entry = self.entry(sid)
            if entry is not None:
                yield sid, entry

    def session_streams(self, session_id: UUID) -> list[UUID]:
        """The stream ids of a session's embeddings."""
        return [UUID(bytes=k[17:]) for k, _ in self._reader.scan(b"s" + session_id.bytes)]


def _remove(tx: ProjectionTx, stream: bytes) -> None:
    raw = tx.get(b"e" + stream)
    if raw is None:
        return
    old = _dec.decode(raw)
    if old.session_id is not None:
        tx.delete(b"s" + old.session_id.bytes + stream)
    tx.delete(b"e" + stream)
    tx.put(b"n", u64(read_u64(tx.get(b"n")) - 1))


def _set_dimension(tx: ProjectionTx, dimension: int) -> None:
    raw = tx.get(b"d")
    if raw is None:
        tx.put(b"d", u64(dimension))
    elif read_u64(raw) != dimension:
        raise ValueError(
            f"an embedding of dimension {dimension} in a store of dimension {read_u64(raw)}"
        )


class EmbeddingsProjector:
    """Maintains the embeddings view (see the module docstring for the key layout)."""

    name: ClassVar[str] = "embeddings"
    version: ClassVar[int] = 1
    #: each stream's entry is its own last event's; the dimension and count are order-free
    replay_order: ClassVar[str] = "stream"
    event_types: ClassVar[frozenset[str]] = frozenset(
        {"EmbeddingUpserted", "EmbeddingDeleted", "EmbeddingsConfigured"}
    )

    def apply(self, tx: ProjectionTx, record: EventRecord) -> None:
        event = record.event
        stream = record.run_id.bytes
        if isinstance(event, EmbeddingUpserted):
            _set_dimension(tx, len(event.vector) // 4)
            _remove(tx, stream)
            entry = Entry(
                event.embedding_id,
                event.vector,
                event.session_id,
                event.run_id,
                event.text,
                event.metadata,
            )
            tx.put(b"e" + stream, _enc.encode(entry))
            if event.session_id is not None:
                tx.put(b"s" + event.session_id.bytes + stream, b"")
            tx.put(b"n", u64(read_u64(tx.get(b"n")) + 1))
        elif isinstance(event, EmbeddingDeleted):
            _remove(tx, stream)
        elif isinstance(event, EmbeddingsConfigured):
            _set_dimension(tx, event.dimension)

    def on_stream_deleted(self, tx: ProjectionTx, stream: StreamRecord) -> None:
        """A deleted embedding stream (``delete_stream``) takes its embedding with it."""
        if stream.kind == EMBEDDING_KIND:
            _remove(tx, stream.id.bytes)

    def query(self, reader: ProjectionReader) -> EmbeddingsQuery:
        """The query object ``store.projection("embeddings")`` returns."""
        return EmbeddingsQuery(reader)
