"""Plans of the embedding writes and point reads (search is :mod:`eventlog.store.embeddings`).

Every write appends events to embeddings' streams (kind ``eventlog.embedding``, one stream per
embedding id): ``EmbeddingUpserted`` or ``EmbeddingDeleted``. The vector and the dimension are
checked before anything is queued; the dimension against the store's inside the transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from uuid import UUID

from eventlog.engine.appends import AppendRequest
from eventlog.engine.core import Engine
from eventlog.engine.projectors import reader
from eventlog.errors import EmbeddingDimensionError, SessionNotFound
from eventlog.model.embeddings import (
    CONFIG_KIND,
    CONFIG_STREAM,
    EMBEDDING_KIND,
    MAX_DIMENSION,
    EmbeddingDeleted,
    EmbeddingRecord,
    EmbeddingsConfigured,
    EmbeddingUpserted,
    check_embedding_id,
    check_vector,
    embedding_stream_id,
    pack_vector,
    unpack_vector,
)
from eventlog.model.validation import check_fields, metadata, uuid_of
from eventlog.storage.kv import KVTxn
from projections.embeddings import EmbeddingsQuery

__all__ = ["EmbeddingPlans", "upsert_events", "view"]


def view(txn: KVTxn) -> EmbeddingsQuery:
    """The embeddings view in ``txn``."""
    return EmbeddingsQuery(reader(txn, "embeddings"))


class EmbeddingPlans:
    """Each embedding operation's input checks and its work inside one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- writes ----------------------------------------------------------------------------
    def check_upsert(
        self,
        embedding_id: str,
        vector: object,
        session_id: UUID | str | None,
        run_id: UUID | str | None,
        text: str | None,
        meta: Mapping[str, object] | None,
    ) -> EmbeddingUpserted:
        """One upsert's arguments checked into its event (raises at once; nothing queued)."""
        eid = check_embedding_id(embedding_id)
        values = check_vector(vector)
        if text is not None and not isinstance(text, str):
            raise TypeError(f"text must be a str or None, got {text!r:.80}")
        event = EmbeddingUpserted(
            eid,
            pack_vector(values),
            None if session_id is None else uuid_of(session_id, "session_id"),
            None if run_id is None else uuid_of(run_id, "run_id"),
            text,
            metadata(meta, "metadata"),
        )
        return check_fields(event, "embeddings.upsert")

    def upsert(self, events: Sequence[EmbeddingUpserted]) -> Callable[[KVTxn], int]:
        """``upsert``/``upsert_many``: every event appended in one transaction (all or none)."""
        dims = {len(e.vector) // 4 for e in events}
        if len(dims) > 1:
            low, high = sorted(dims)[:2]
            raise EmbeddingDimensionError(high, low)

        def work(txn: KVTxn) -> int:
            if not events:
                return 0
            stored = view(txn).dimension()
            if stored is not None and dims != {stored}:
                raise EmbeddingDimensionError(next(iter(dims)), stored)
            sessions = {e.session_id for e in events if e.session_id is not None}
            for sid in sessions:
                if self.engine.index.stream_kind(txn, sid) != "session":
                    raise SessionNotFound(sid)
            now = datetime.now(UTC)
            for event in events:
                self._append(txn, event.embedding_id, event, now)
            return len(events)

        return work

    def set_dimension(self, dimension: int) -> Callable[[KVTxn], int]:
        """``set_dimension``: fix the store's dimension (the same again is a no-op)."""
        if not isinstance(dimension, int) or isinstance(dimension, bool):
            raise TypeError(f"dimension must be an int, got {dimension!r:.80}")
        if not 1 <= dimension <= MAX_DIMENSION:
            raise ValueError(f"dimension {dimension} must be between 1 and {MAX_DIMENSION}")

        def work(txn: KVTxn) -> int:
            stored = view(txn).dimension()
            if stored is not None:
                if stored != dimension:
                    raise EmbeddingDimensionError(dimension, stored)
                return stored
            exists = self.engine.index.stream_number(txn, CONFIG_STREAM) is not None
            req = AppendRequest(
                CONFIG_STREAM,
                [EmbeddingsConfigured(dimension)],
                None if exists else 0,
                None,
                CONFIG_KIND,
                None if exists else {},
            )
            self.engine.appends.append(txn, req, datetime.now(UTC), kind="stream")
            return dimension

        return work

    def delete(self, embedding_id: str) -> Callable[[KVTxn], bool]:
        """``delete``: append ``EmbeddingDeleted`` if the embedding is live (True then)."""
        eid = check_embedding_id(embedding_id)
        sid = embedding_stream_id(eid)

        def work(txn: KVTxn) -> bool:
            if view(txn).entry(sid) is None:
                return False
            self._append(txn, eid, EmbeddingDeleted(eid), datetime.now(UTC))
            return True

        return work

    def delete_by_session(self, session_id: UUID | str) -> Callable[[KVTxn], int]:
        """``delete_by_session``: delete every embedding of the session; how many."""
        sid = uuid_of(session_id, "session_id")
        return lambda txn: self.cascade(txn, sid)

    def cascade(self, txn: KVTxn, session_id: UUID) -> int:
        """Delete the session's embeddings in ``txn`` (``delete_session`` calls it too)."""
        query = view(txn)
        now = datetime.now(UTC)
        n = 0
        for stream in query.session_streams(session_id):
            entry = query.entry(stream)
            if entry is not None:
                eid = entry.embedding_id
                self._append(txn, eid, EmbeddingDeleted(eid), now)
                n += 1
        return n

    def _append(
        self,
        txn: KVTxn,
        eid: str,
        event: EmbeddingUpserted | EmbeddingDeleted,
        now: datetime,
    ) -> None:
        sid = embedding_stream_id(eid)
        exists = self.engine.index.stream_number(txn, sid) is not None
        req = AppendRequest(
            sid,
            [event],
            None if exists else 0,
            None,
            EMBEDDING_KIND,
            None if exists else {"embedding_id": eid},
        )
        self.engine.appends.append(txn, req, now, kind="stream")

    # -- reads -----------------------------------------------------------------------------
    def get(self, embedding_id: str) -> Callable[[KVTxn], EmbeddingRecord | None]:
        """``get``: the live embedding, or None."""
        sid = embedding_stream_id(check_embedding_id(embedding_id))

        def work(txn: KVTxn) -> EmbeddingRecord | None:
            entry = view(txn).entry(sid)
            if entry is None:
                return None
            return EmbeddingRecord(
                entry.embedding_id,
                unpack_vector(entry.vector),
                entry.session_id,
                entry.run_id,
                entry.text,
                entry.metadata,
            )

        return work

    def summary(self) -> Callable[[KVTxn], tuple[int, int | None, int]]:
        """``(count, dimension, last log position)`` in one snapshot."""
        index = self.engine.index

        def work(txn: KVTxn) -> tuple[int, int | None, int]:
            query = view(txn)
            return query.count(), query.dimension(), index.last_position(txn)

        return work


def upsert_events(
    plans: EmbeddingPlans,
    items: Iterable[tuple[str, object]],
    session_id: UUID | str | None,
    run_id: UUID | str | None,
    texts: Sequence[str | None] | None,
    metadatas: Sequence[Mapping[str, object] | None] | None,
) -> list[EmbeddingUpserted]:
    """``upsert_many``'s arguments checked into events (raises at once; nothing queued)."""
    pairs = list(items)
    for what, seq in (("texts", texts), ("metadatas", metadatas)):
        if seq is not None and len(seq) != len(pairs):
            raise ValueError(f"{len(seq)} {what} for {len(pairs)} embeddings; give one each")
    return [
        plans.check_upsert(
            eid,
            vec,
            session_id,
            run_id,
            None if texts is None else texts[i],
            None if metadatas is None else metadatas[i],
        )
        for i, (eid, vec) in enumerate(pairs)
    ]
