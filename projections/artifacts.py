"""The artifact index: records by id, by session (newest first) and references per blob.

Keyspace ``artifacts``; ``A`` = an artifact id (16 bytes), ``S`` = a session id (16 bytes),
``H`` = a blob's SHA-256 (32 bytes), ``Q`` = the event's seq in the session's artifact stream
(``>Q``, inverted so that a forward scan is newest first):

- ``a`` + A → the :class:`~eventlog.model.artifacts.ArtifactRecord` (msgpack)
- ``s`` + S + Q + A → ``b""`` (a session's artifacts, every version, newest first)
- ``q`` + A → Q (where the artifact's ``s`` entry is)
- ``h`` + H + A → ``b""`` (the records that refer to a blob; a blob none refers to is garbage)
- ``t`` → count and total bytes of every artifact (two ``>Q``)

Built from the events :class:`~eventlog.model.artifacts.ArtifactPut` and
:class:`~eventlog.model.artifacts.ArtifactDeleted` of the per-session streams of kind
``eventlog.artifacts``; deleting such a stream (``delete_session``) clears its entries.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, Literal
from uuid import UUID

import msgspec

from eventlog.engine.protocols import ProjectionReader, ProjectionTx
from eventlog.model.artifacts import ARTIFACT_KIND, ArtifactDeleted, ArtifactPut, ArtifactRecord
from eventlog.model.records import EventRecord, StreamRecord
from projections._keys import read_u64, u64

__all__ = ["ArtifactIndex", "ArtifactsProjector"]

_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(ArtifactRecord)
_MAX = (1 << 64) - 1


def _totals(tx: ProjectionReader) -> tuple[int, int]:
    raw = tx.get(b"t")
    if raw is None:
        return 0, 0
    return read_u64(raw[:8]), read_u64(raw[8:])


def _add(tx: ProjectionTx, count: int, size: int) -> None:
    n, total = _totals(tx)
    if n + count == 0:
        tx.delete(b"t")  # as a replay of no artifacts leaves it
    else:
        tx.put(b"t", u64(n + count) + u64(total + size))


class ArtifactsProjector:
    """Keeps the artifact index (see the module docstring) in the append transaction."""

    name: ClassVar[str] = "artifacts"
    version: ClassVar[int] = 1
    event_types: ClassVar[frozenset[str]] = frozenset(
        {"eventlog.artifact_put", "eventlog.artifact_deleted"}
    )
    replay_order: ClassVar[str] = "stream"

    def apply(self, tx: ProjectionTx, record: EventRecord) -> None:
        """Index a put, or remove a deleted artifact's entries."""
        event = record.event
        if isinstance(event, ArtifactPut):
            art = event.artifact
            tx.put(b"a" + art.id.bytes, _ENCODER.encode(art))
            inv = u64(_MAX - record.seq)
            tx.put(b"s" + art.session_id.bytes + inv + art.id.bytes, b"")
            tx.put(b"q" + art.id.bytes, inv)
            tx.put(b"h" + bytes.fromhex(art.sha256) + art.id.bytes, b"")
            _add(tx, 1, art.size)
        elif isinstance(event, ArtifactDeleted):
            raw = tx.get(b"a" + event.artifact_id.bytes)
            if raw is not None:
                _remove(tx, _DECODER.decode(raw))

    def on_stream_deleted(self, tx: ProjectionTx, stream: StreamRecord) -> None:
        """A session's artifact stream was deleted: so are its artifacts' entries."""
        if stream.kind != ARTIFACT_KIND:
            return
        session = UUID(str(stream.metadata["session_id"]))
        for art in list(ArtifactIndex(tx).by_session(session, "all")):
            _remove(tx, art)

    def query(self, reader: ProjectionReader) -> ArtifactIndex:
        """The query object ``store.projection("artifacts")`` returns."""
        return ArtifactIndex(reader)


def _remove(tx: ProjectionTx, art: ArtifactRecord) -> None:
    tx.delete(b"a" + art.id.bytes)
    tx.delete(b"h" + bytes.fromhex(art.sha256) + art.id.bytes)
    inv = tx.get(b"q" + art.id.bytes)
    if inv is not None:
        tx.delete(b"s" + art.session_id.bytes + inv + art.id.bytes)
        tx.delete(b"q" + art.id.bytes)
    _add(tx, -1, -art.size)


class ArtifactIndex:
    """Reads of the artifact index (one snapshot per reader)."""

    def __init__(self, reader: ProjectionReader) -> None:
        self._reader = reader

    def get(self, artifact_id: UUID) -> ArtifactRecord | None:
        """The artifact's record, or None."""
        raw = self._reader.get(b"a" + artifact_id.bytes)
        return None if raw is None else _DECODER.decode(raw)

    def by_session(
        self, session_id: UUID, versions: Literal["all", "latest"] = "all"
    ) -> Iterator[ArtifactRecord]:
        """A session's artifacts newest first: every version, or the latest one per name."""
        seen: set[str] = set()
        for key, _ in self._reader.scan(b"s" + session_id.bytes):
            art = self.get(UUID(bytes=key[-16:]))
            if art is None:
                continue
            if versions == "latest":
                if art.name in seen:
                    continue
                seen.add(art.name)
            yield art

    def referenced(self, sha256: str) -> bool:
        """Whether any record refers to the blob ``sha256``."""
        return next(iter(self._reader.scan(b"h" + bytes.fromhex(sha256))), None) is not None

    def records(self) -> Iterator[ArtifactRecord]:
        """Every artifact record, in id order."""
        for _, raw in self._reader.scan(b"a"):
            yield _DECODER.decode(raw)

    def totals(self) -> tuple[int, int]:
        """How many artifacts there are and their total size in bytes."""
        return _totals(self._reader)
