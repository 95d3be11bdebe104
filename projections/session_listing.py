"""The session listing: runs of a session in created order, sessions by last activity.

Keys (this projector's keyspace):

- ``R`` + session + created_us + run_id → ``b""`` (runs of a session, oldest first)
- ``u`` + session → ``[updated_us, created_us]``
- ``U`` + inv(updated) + session → created_us (sessions, most recently updated first)

A session is updated when it is created, when a run is created in it and when a message is
appended to it; ``updated_at`` only moves forward, so replay order does not matter.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import ClassVar
from uuid import UUID

import msgspec

from eventlog.protocols import ProjectionReader, ProjectionTx
from eventlog.records import EventRecord, RunRecord, Session
from projections._keys import micros, read_u64, u64

__all__ = ["SessionListingProjector", "SessionListingQuery"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX = (1 << 63) - 1


class _Entry(msgspec.Struct, array_like=True):
    updated_us: int
    created_us: int


_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(_Entry)


def _dt(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


class SessionListingQuery:
    """Reads of the session listing."""

    def __init__(self, reader: ProjectionReader) -> None:
        self._reader = reader

    def runs(self, session_id: UUID) -> list[UUID]:
        """Run ids of the session, oldest first."""
        return [UUID(bytes=k[-16:]) for k, _ in self._reader.scan(b"R" + session_id.bytes)]

    def updated_at(self, session_id: UUID) -> datetime | None:
        """When the session last had activity (None when unknown)."""
        raw = self._reader.get(b"u" + session_id.bytes)
        return None if raw is None else _dt(_dec.decode(raw).updated_us)

    def sessions(
        self,
        *,
        limit: int = 100,
        offset: int = 0,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> list[UUID]:
        """Session ids, most recently updated first, created in the given window."""
        out: list[UUID] = []
        if limit <= 0:
            return out
        lo = None if created_after is None else micros(created_after)
        hi = None if created_before is None else micros(created_before)
        skipped = 0
        for key, value in self._reader.scan(b"U"):
            created = read_u64(value)
            if (lo is not None and created <= lo) or (hi is not None and created >= hi):
                continue
            if skipped < offset:
                skipped += 1
                continue
            out.append(UUID(bytes=key[-16:]))
            if len(out) >= limit:
                break
        return out


def _touch(tx: ProjectionTx, session: bytes, when: datetime) -> None:
    raw = tx.get(b"u" + session)
    if raw is None:
        return  # not a session
    entry = _dec.decode(raw)
    us = micros(when)
    if us <= entry.updated_us:
        return
    tx.delete(b"U" + u64(_MAX - entry.updated_us) + session)
    entry.updated_us = us
    tx.put(b"U" + u64(_MAX - us) + session, u64(entry.created_us))
    tx.put(b"u" + session, _enc.encode(entry))


class SessionListingProjector:
    """Maintains the session listing (see the module docstring for the key layout)."""

    name: ClassVar[str] = "session_listing"
    version: ClassVar[int] = 1
    event_types: ClassVar[frozenset[str]] = frozenset({"MessageAppended"})

    def on_session_created(self, tx: ProjectionTx, session: Session) -> None:
        sid = session.id.bytes
        created = micros(session.created_at)
        updated = max(created, micros(session.updated_at))
        tx.put(b"u" + sid, _enc.encode(_Entry(updated, created)))
        tx.put(b"U" + u64(_MAX - updated) + sid, u64(created))

    def on_session_deleted(self, tx: ProjectionTx, session: Session) -> None:
        sid = session.id.bytes
        raw = tx.get(b"u" + sid)
        if raw is not None:
            tx.delete(b"U" + u64(_MAX - _dec.decode(raw).updated_us) + sid)
            tx.delete(b"u" + sid)
        for key in [k for k, _ in tx.scan(b"R" + sid)]:
            tx.delete(key)

    def on_run_created(self, tx: ProjectionTx, run: RunRecord) -> None:
        sid = run.session_id.bytes
        tx.put(b"R" + sid + u64(micros(run.created_at)) + run.id.bytes, b"")
        _touch(tx, sid, run.created_at)

    def on_run_deleted(self, tx: ProjectionTx, run: RunRecord) -> None:
        tx.delete(b"R" + run.session_id.bytes + u64(micros(run.created_at)) + run.id.bytes)

    def apply(self, tx: ProjectionTx, record: EventRecord) -> None:
        timestamp = getattr(record.event, "timestamp", record.recorded_at)
        _touch(tx, record.run_id.bytes, timestamp)

    def query(self, reader: ProjectionReader) -> SessionListingQuery:
        """The query object ``store.projection("session_listing")`` returns."""
        return SessionListingQuery(reader)
