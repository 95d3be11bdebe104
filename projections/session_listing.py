"""The session listing: runs of a session in created order, sessions by last activity.

Keys (this projector's keyspace):

- ``R`` + session + created_us + run_id → ``b""`` (runs of a session, oldest first)
- ``u`` + session → ``[updated_us, created_us, base_us, message_us]``
- ``U`` + inv(updated) + session → created_us (sessions, most recently updated first)

A session's ``updated_at`` is the latest of: its own record's times (``base``), its last
message (``message``) and the creation of its newest live run (the last ``R`` key). It is
recomputed from those when any of them changes - deleting the newest run moves it back - so
an incremental view and a rebuild from the log always agree, whatever the replay order.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import ClassVar
from uuid import UUID

import msgspec

from eventlog.engine.protocols import ProjectionReader, ProjectionTx
from eventlog.model.records import EventRecord, RunRecord, Session
from projections._keys import micros, read_u64, u64

__all__ = ["SessionListingProjector", "SessionListingQuery"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX = (1 << 63) - 1


class _Entry(msgspec.Struct, array_like=True):
    updated_us: int
    created_us: int
    base_us: int
    message_us: int = 0


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


def _refresh(
    tx: ProjectionTx, session: bytes, *, message_us: int = 0, run_us: int = 0, full: bool = False
) -> None:
    """Update the session's ``updated_at`` and move its ``U`` key when it changed.

    New messages and runs can only move it forward (a max); ``full`` recomputes it from the
    remaining runs (after a delete), walking the session's ``R`` keys.
    """
    raw = tx.get(b"u" + session)
    if raw is None:
        return  # not a session
    entry = _dec.decode(raw)
    entry.message_us = max(entry.message_us, message_us)
    if full:
        newest_run = 0
        for key, _ in tx.scan(b"R" + session):
            newest_run = max(newest_run, read_u64(key[17:25]))
        updated = max(entry.base_us, entry.message_us, newest_run)
    else:
        updated = max(entry.updated_us, entry.message_us, run_us)
    if updated != entry.updated_us:
        tx.delete(b"U" + u64(_MAX - entry.updated_us) + session)
        tx.put(b"U" + u64(_MAX - updated) + session, u64(entry.created_us))
        entry.updated_us = updated
    tx.put(b"u" + session, _enc.encode(entry))


class SessionListingProjector:
    """Maintains the session listing (see the module docstring for the key layout)."""

    name: ClassVar[str] = "session_listing"
    version: ClassVar[int] = 2
    #: a rebuild may feed it stream by stream:
    #: each session's entry is a max over its own messages and runs
    replay_order: ClassVar[str] = "stream"
    event_types: ClassVar[frozenset[str]] = frozenset({"MessageAppended"})

    def on_session_created(self, tx: ProjectionTx, session: Session) -> None:
        sid = session.id.bytes
        created = micros(session.created_at)
        base = max(created, micros(session.updated_at))
        tx.put(b"u" + sid, _enc.encode(_Entry(base, created, base)))
        tx.put(b"U" + u64(_MAX - base) + sid, u64(created))

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
        _refresh(tx, sid, run_us=micros(run.created_at))

    def on_run_deleted(self, tx: ProjectionTx, run: RunRecord) -> None:
        sid = run.session_id.bytes
        tx.delete(b"R" + sid + u64(micros(run.created_at)) + run.id.bytes)
        _refresh(tx, sid, full=True)

    def apply(self, tx: ProjectionTx, record: EventRecord) -> None:
        timestamp = getattr(record.event, "timestamp", record.recorded_at)
        _refresh(tx, record.run_id.bytes, message_us=micros(timestamp))

    def apply_batch(self, tx: ProjectionTx, records: Sequence[EventRecord]) -> None:
        """One append's messages (one session): one refresh, at the newest message's time."""
        newest = max(micros(getattr(r.event, "timestamp", r.recorded_at)) for r in records)
        _refresh(tx, records[0].run_id.bytes, message_us=newest)

    def query(self, reader: ProjectionReader) -> SessionListingQuery:
        """The query object ``store.projection("session_listing")`` returns."""
        return SessionListingQuery(reader)
