"""What a Python user would write instead: a stdlib ``sqlite3`` event store, same semantics.

- ``events(position INTEGER PRIMARY KEY, run_id, seq, type, recorded_us, payload)`` with a
  unique ``(run_id, seq)`` index: per-run gap-free seq, log-wide position;
- ``runs(id, session_id, status, created_us, record, state)`` with a ``(status, created_us)``
  index: the status index, and the run state folded in the same transaction;
- an append is one ``BEGIN IMMEDIATE`` transaction: the run must exist, its head is
  ``max(seq)``, ``expected_seq`` is checked, a terminal run refuses a status change, events are
  inserted, the state is folded and written back;
- payloads and states are msgspec msgpack, the same codec the store uses;
- WAL journal; ``synchronous=FULL`` for durable, ``NORMAL`` or ``OFF`` for fast; a 1 GiB
  page cache and memory-mapped reads (LMDB reads through its map and the OS page cache).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Union
from uuid import UUID

import msgspec

from eventlog.events import EVENT_TYPES, Event
from eventlog.model.records import EventRecord, RunRecord
from eventlog.model.state import RunState, status_after
from eventlog.model.status import TERMINAL_STATUSES, RunStatus

__all__ = ["SqliteStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id BLOB PRIMARY KEY,
    created_us INTEGER NOT NULL,
    updated_us INTEGER NOT NULL DEFAULT 0,
    run_count INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS runs (
    id BLOB PRIMARY KEY,
    session_id BLOB NOT NULL,
    status TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    record BLOB NOT NULL,
    state BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, created_us DESC);
CREATE TABLE IF NOT EXISTS events (
    position INTEGER PRIMARY KEY,
    run_id BLOB NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    recorded_us INTEGER NOT NULL,
    payload BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS events_by_run ON events (run_id, seq);
"""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_encoder = msgspec.msgpack.Encoder(uuid_format="bytes")
_state_decoder = msgspec.msgpack.Decoder(RunState)
_record_decoder = msgspec.msgpack.Decoder(RunRecord)
_event_type: Any = Union[tuple(EVENT_TYPES.values())]  # noqa: UP007
_event_decoder: msgspec.msgpack.Decoder[Event] = msgspec.msgpack.Decoder(_event_type)


def _us(dt: datetime) -> int:
    return (dt - _EPOCH) // timedelta(microseconds=1)


class ConflictError(Exception):
    """``expected_seq`` did not match the run's head."""


class SqliteStore:
    """A small event store on one sqlite3 connection (one per thread when threads write)."""

    def __init__(self, path: str, *, synchronous: str = "FULL") -> None:
        self.path = path
        self.synchronous = synchronous
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=120)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={synchronous}")
        # a page cache and memory-mapped reads, as LMDB has through its map (SQLite's default
        # cache is 2 MiB: a store of a million runs would read pages from the OS on every step)
        self.db.execute("PRAGMA cache_size=-1048576")
        self.db.execute("PRAGMA mmap_size=4294967296")
        self.db.executescript(_SCHEMA)

    def connect(self) -> SqliteStore:
        """Another connection to the same database (for another thread)."""
        return SqliteStore(self.path, synchronous=self.synchronous)

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    # -- writes ----------------------------------------------------------------------------
    def create_session(self, session_id: UUID) -> None:
        """Create a session."""
        self.create_sessions([session_id])

    def create_sessions(self, session_ids: Iterable[UUID]) -> None:
        """Create sessions in one transaction."""
        now = _us(datetime.now(UTC))
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT INTO sessions (id, created_us) VALUES (?, ?)",
                ((sid.bytes, now) for sid in session_ids),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def create_runs(self, runs: Iterable[tuple[UUID, UUID]], *, provider: str, model: str) -> None:
        """Create ``(run_id, session_id)`` runs in one transaction (sessions must exist)."""
        db = self.db
        now = datetime.now(UTC)
        rows = []
        sessions: set[UUID] = set()
        for run_id, session_id in runs:
            sessions.add(session_id)
            record = RunRecord(
                run_id, session_id, RunStatus.PENDING, provider, model, {}, None, now, now
            )
            state = RunState.initial(record)
            rows.append(
                (
                    run_id.bytes,
                    session_id.bytes,
                    RunStatus.PENDING.value,
                    _us(now),
                    _encoder.encode(record),
                    _encoder.encode(state),
                )
            )
        db.execute("BEGIN IMMEDIATE")
        try:
            for session_id in sessions:
                found = db.execute(
                    "SELECT 1 FROM sessions WHERE id = ?", (session_id.bytes,)
                ).fetchone()
                if found is None:
                    raise LookupError(f"session {session_id} not found")
            db.executemany(
                "INSERT INTO runs (id, session_id, status, created_us, record, state) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def create_run(self, run_id: UUID, session_id: UUID, *, provider: str, model: str) -> None:
        """Create one run (status pending) in its own transaction."""
        self.create_runs([(run_id, session_id)], provider=provider, model=model)

    def append(
        self, run_id: UUID, events: Sequence[Event], *, expected_seq: int | None = None
    ) -> list[tuple[int, int]]:
        """Append ``events`` atomically; returns ``(seq, position)`` of each."""
        return self.append_many([(run_id, events, expected_seq)])[0]

    def append_many(
        self, requests: Sequence[tuple[UUID, Sequence[Event], int | None]]
    ) -> list[list[tuple[int, int]]]:
        """Several runs' appends in one transaction, all or nothing."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            out = [self._append(run_id, evs, exp) for run_id, evs, exp in requests]
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return out

    def _append(
        self, run_id: UUID, events: Sequence[Event], expected_seq: int | None
    ) -> list[tuple[int, int]]:
        db = self.db
        rid = run_id.bytes
        row = db.execute("SELECT state FROM runs WHERE id = ?", (rid,)).fetchone()
        if row is None:
            raise LookupError(f"run {run_id} not found")
        head: int = db.execute(
            "SELECT coalesce(max(seq), 0) FROM events WHERE run_id = ?", (rid,)
        ).fetchone()[0]
        if expected_seq is not None and expected_seq != head:
            raise ConflictError(f"run {run_id}: expected seq {expected_seq}, head is {head}")
        state = _state_decoder.decode(row[0])
        now = datetime.now(UTC)
        now_us = _us(now)
        out: list[tuple[int, int]] = []
        seq = head
        for event in events:
            seq += 1
            if state.status in TERMINAL_STATUSES:
                nxt = status_after(state.status, event)
                if nxt != state.status:
                    raise ValueError(f"run {run_id} is {state.status}: cannot move to {nxt}")
            cur = db.execute(
                "INSERT INTO events (run_id, seq, type, recorded_us, payload) "
                "VALUES (?, ?, ?, ?, ?)",
                (rid, seq, type(event).__name__, now_us, _encoder.encode(event)),
            )
            position = cur.lastrowid or 0
            state = state.apply(EventRecord(run_id, seq, position, event, now))
            out.append((seq, position))
        db.execute(
            "UPDATE runs SET status = ?, state = ? WHERE id = ?",
            (state.status.value, _encoder.encode(state), rid),
        )
        return out

    # -- reads -----------------------------------------------------------------------------
    def list_events(self, run_id: UUID) -> list[EventRecord]:
        """The run's events in seq order, decoded."""
        rows = self.db.execute(
            "SELECT seq, position, recorded_us, payload FROM events WHERE run_id = ? ORDER BY seq",
            (run_id.bytes,),
        ).fetchall()
        decode = _event_decoder.decode
        return [
            EventRecord(run_id, seq, pos, decode(payload), _EPOCH + timedelta(microseconds=us))
            for seq, pos, us, payload in rows
        ]

    def get_run(self, run_id: UUID) -> RunRecord | None:
        """The run record with its current status."""
        row = self.db.execute(
            "SELECT record, status FROM runs WHERE id = ?", (run_id.bytes,)
        ).fetchone()
        if row is None:
            return None
        return msgspec.structs.replace(_record_decoder.decode(row[0]), status=RunStatus(row[1]))

    def get_run_state(self, run_id: UUID) -> RunState | None:
        """The materialized run state."""
        row = self.db.execute("SELECT state FROM runs WHERE id = ?", (run_id.bytes,)).fetchone()
        return None if row is None else _state_decoder.decode(row[0])

    def list_runs_filtered(self, *, status: str, limit: int = 100) -> list[RunRecord]:
        """Runs with ``status``, newest first (from the status index)."""
        rows = self.db.execute(
            "SELECT record, state FROM runs WHERE status = ? ORDER BY created_us DESC LIMIT ?",
            (status, limit),
        ).fetchall()
        out = []
        for record, state in rows:
            rec = _record_decoder.decode(record)
            st = _state_decoder.decode(state)
            out.append(
                msgspec.structs.replace(
                    rec, status=st.status, updated_at=st.updated_at or rec.updated_at
                )
            )
        return out

    def rebuild_views(self) -> int:
        """Rebuild the derived tables from the log, as a sqlite3 user would; returns events read.

        In one transaction: every run's state is folded again from its events, read in
        position order (the status column, the status index's key, with it), and every
        session's ``updated_us`` (its newest run's creation or last event) and ``run_count``
        are recomputed; then both tables are written back with ``executemany``.
        """
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            states: dict[bytes, RunState] = {}
            session_of: dict[bytes, bytes] = {}
            for rid, sid, record in db.execute("SELECT id, session_id, record FROM runs"):
                states[rid] = RunState.initial(_record_decoder.decode(record))
                session_of[rid] = sid
            n = 0
            decode = _event_decoder.decode
            for rid, seq, pos, us, payload in db.execute(
                "SELECT run_id, seq, position, recorded_us, payload FROM events ORDER BY position"
            ):
                state = states[rid]
                rec = EventRecord(
                    state.run_id, seq, pos, decode(payload), _EPOCH + timedelta(microseconds=us)
                )
                states[rid] = state.apply(rec)
                n += 1
            sessions: dict[bytes, list[int]] = {
                sid: [created, created, 0]
                for sid, created in db.execute("SELECT id, created_us FROM sessions")
            }
            for rid, state in states.items():
                entry = sessions[session_of[rid]]
                entry[1] = max(entry[1], _us(state.updated_at or state.created_at or _EPOCH))
                entry[2] += 1
            db.executemany(
                "UPDATE runs SET status = ?, state = ? WHERE id = ?",
                ((s.status.value, _encoder.encode(s), rid) for rid, s in states.items()),
            )
            db.executemany(
                "UPDATE sessions SET updated_us = ?, run_count = ? WHERE id = ?",
                ((updated, count, sid) for sid, (_, updated, count) in sessions.items()),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return n
