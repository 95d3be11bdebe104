"""The status index: runs by status and session, newest first, with counts.

Keys (all in this projector's keyspace; ``inv`` = newest-first created_at, ``code`` = 1 byte):

- ``r`` + run_id → ``[code, created_us, session_id]`` (where the run's index keys are)
- ``a`` + inv + run_id, ``s`` + code + inv + run_id, ``S`` + session + inv + run_id,
  ``T`` + session + code + inv + run_id → ``b""`` (one ordered list per filter combination)
- ``c`` + code → count, ``C`` + session + code → count

A page of ``limit`` runs after ``offset`` is one cursor walk over one of the lists, so its cost
grows with ``limit + offset``, never with the number of runs; counts read at most 9 keys.
"""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

import msgspec

from eventlog.engine.protocols import ProjectionReader, ProjectionTx
from eventlog.model.records import EventRecord, RunRecord
from eventlog.model.state import status_after
from eventlog.model.status import RunStatus
from projections._keys import STATUS_CODE, STATUS_OF_CODE, inv_micros, read_u64, u64

__all__ = ["StatusIndexProjector", "StatusIndexQuery"]


class _Entry(msgspec.Struct, array_like=True):
    code: bytes
    inv: bytes
    session: bytes


_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(_Entry)


def _list_prefix(status: RunStatus | None, session_id: UUID | None) -> bytes:
    if session_id is None:
        return b"a" if status is None else b"s" + STATUS_CODE[status]
    if status is None:
        return b"S" + session_id.bytes
    return b"T" + session_id.bytes + STATUS_CODE[status]


class StatusIndexQuery:
    """Reads of the status index."""

    def __init__(self, reader: ProjectionReader) -> None:
        self._reader = reader

    def page(
        self,
        *,
        status: RunStatus | None = None,
        session_id: UUID | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[UUID]:
        """Run ids, newest first (by created_at), matching the filters."""
        out: list[UUID] = []
        if limit <= 0:
            return out
        skipped = 0
        for key, _ in self._reader.scan(_list_prefix(status, session_id)):
            if skipped < offset:
                skipped += 1
                continue
            out.append(UUID(bytes=key[-16:]))
            if len(out) >= limit:
                break
        return out

    def count(self, *, status: RunStatus | None = None, session_id: UUID | None = None) -> int:
        """How many runs match the filters (read from counters, not by scanning runs)."""
        codes = list(STATUS_CODE.values()) if status is None else [STATUS_CODE[status]]
        base = b"c" if session_id is None else b"C" + session_id.bytes
        return sum(read_u64(self._reader.get(base + code)) for code in codes)

    def status_of(self, run_id: UUID) -> RunStatus | None:
        """The indexed status of a run."""
        raw = self._reader.get(b"r" + run_id.bytes)
        if raw is None:
            return None
        code = _dec.decode(raw).code
        return STATUS_OF_CODE[code]


def _bump(tx: ProjectionTx, key: bytes, delta: int) -> None:
    n = read_u64(tx.get(key)) + delta
    if n:
        tx.put(key, u64(n))
    else:
        tx.delete(key)


def _add(tx: ProjectionTx, run_id: bytes, entry: _Entry) -> None:
    tx.put(b"s" + entry.code + entry.inv + run_id, b"")
    tx.put(b"T" + entry.session + entry.code + entry.inv + run_id, b"")
    _bump(tx, b"c" + entry.code, 1)
    _bump(tx, b"C" + entry.session + entry.code, 1)


def _remove(tx: ProjectionTx, run_id: bytes, entry: _Entry) -> None:
    tx.delete(b"s" + entry.code + entry.inv + run_id)
    tx.delete(b"T" + entry.session + entry.code + entry.inv + run_id)
    _bump(tx, b"c" + entry.code, -1)
    _bump(tx, b"C" + entry.session + entry.code, -1)


class StatusIndexProjector:
    """Maintains the status index (see the module docstring for the key layout)."""

    name: ClassVar[str] = "status_index"
    version: ClassVar[int] = 1
    event_types: ClassVar[frozenset[str]] = frozenset(
        {
            "RunStarted",
            "ModelStarted",
            "RunCompleted",
            "RunFailed",
            "RunCancelled",
            "RunStatusChanged",
        }
    )

    def on_run_created(self, tx: ProjectionTx, run: RunRecord) -> None:
        rid = run.id.bytes
        entry = _Entry(
            STATUS_CODE[RunStatus.PENDING], inv_micros(run.created_at), run.session_id.bytes
        )
        tx.put(b"r" + rid, _enc.encode(entry))
        tx.put(b"a" + entry.inv + rid, b"")
        tx.put(b"S" + entry.session + entry.inv + rid, b"")
        _add(tx, rid, entry)

    def on_run_deleted(self, tx: ProjectionTx, run: RunRecord) -> None:
        rid = run.id.bytes
        raw = tx.get(b"r" + rid)
        if raw is None:
            return
        entry = _dec.decode(raw)
        _remove(tx, rid, entry)
        tx.delete(b"a" + entry.inv + rid)
        tx.delete(b"S" + entry.session + entry.inv + rid)
        tx.delete(b"r" + rid)

    def apply(self, tx: ProjectionTx, record: EventRecord) -> None:
        rid = record.run_id.bytes
        raw = tx.get(b"r" + rid)
        if raw is None:
            return  # not a run
        entry = _dec.decode(raw)
        current = STATUS_OF_CODE[entry.code]
        new = status_after(current, record.event)
        if new == current:
            return
        _remove(tx, rid, entry)
        entry.code = STATUS_CODE[new]
        _add(tx, rid, entry)
        tx.put(b"r" + rid, _enc.encode(entry))

    def query(self, reader: ProjectionReader) -> StatusIndexQuery:
        """The query object ``store.projection("status_index")`` returns."""
        return StatusIndexQuery(reader)
