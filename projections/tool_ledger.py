"""The tool-effect ledger: every tool call's lifecycle per run, and the runs with unresolved calls.

The rule is the model's (:func:`eventlog.model.tool_calls.advance_call`); this projector stores
its result. Keys (this projector's keyspace; ``inv`` = newest-first created_at of the run):

- ``r`` + run_id → inv + session_id (learned when the run is created)
- ``c`` + run_id + blake2b(call_id) → :class:`~eventlog.model.tool_calls.ToolCallEntry`
- ``U`` + inv + run_id → u64 + session_id: how many of the run's calls are unresolved, and
  the run's session (present only while some are): the index that
  ``list_runs_filtered(unresolved=True)`` walks, newest first, so finding such runs costs
  what there is to find, never a scan of every run
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import ClassVar
from uuid import UUID

import msgspec

from eventlog.engine.protocols import ProjectionReader, ProjectionTx
from eventlog.model.records import EventRecord, RunRecord
from eventlog.model.tool_calls import (
    LEDGER_EVENT_TYPES,
    ToolCallEntry,
    ToolCallPhase,
    advance_call,
    call_id_of,
)
from projections._keys import inv_micros, read_u64, u64

__all__ = ["ToolLedgerProjector", "ToolLedgerQuery"]

_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(ToolCallEntry)


def _call_key(rid: bytes, call_id: str) -> bytes:
    return b"c" + rid + hashlib.blake2b(call_id.encode(), digest_size=16).digest()


def _order(entry: ToolCallEntry) -> tuple[int, str]:
    first = entry.requested_seq or entry.started_seq or entry.finished_seq or 0
    return first, entry.call_id


class ToolLedgerQuery:
    """Reads of the tool-effect ledger."""

    def __init__(self, reader: ProjectionReader) -> None:
        self._reader = reader

    def calls(self, run_id: UUID) -> list[ToolCallEntry]:
        """Every tool call of the run, in the order the run first mentions them."""
        found = [_dec.decode(v) for _, v in self._reader.scan(b"c" + run_id.bytes)]
        return sorted(found, key=_order)

    def unresolved(self, run_id: UUID) -> list[ToolCallEntry]:
        """The run's calls that started executing and have no result."""
        return [c for c in self.calls(run_id) if c.phase == ToolCallPhase.EXECUTING]

    def unresolved_count(self, run_id: UUID) -> int:
        """How many of the run's calls are unresolved (one index look-up)."""
        where = self._reader.get(b"r" + run_id.bytes)
        if where is None:
            return 0
        raw = self._reader.get(b"U" + where[:8] + run_id.bytes)
        return 0 if raw is None else read_u64(raw[:8])

    def unresolved_runs(self) -> Iterator[tuple[bytes, bytes, bytes]]:
        """``(run id, inv created_at, session id)`` (bytes) of the runs with unresolved calls.

        Newest first (by the run's created_at), read from the index: one key per such run.
        """
        for key, value in self._reader.scan(b"U"):
            yield key[9:], key[1:9], value[8:]


class ToolLedgerProjector:
    """Maintains the tool-effect ledger (see the module docstring for the key layout)."""

    name: ClassVar[str] = "tool_ledger"
    version: ClassVar[int] = 1
    #: each run's calls follow its own events; the index holds one key per run
    replay_order: ClassVar[str] = "stream"
    event_types: ClassVar[frozenset[str]] = LEDGER_EVENT_TYPES

    def on_run_created(self, tx: ProjectionTx, run: RunRecord) -> None:
        tx.put(b"r" + run.id.bytes, inv_micros(run.created_at) + run.session_id.bytes)

    def on_run_deleted(self, tx: ProjectionTx, run: RunRecord) -> None:
        rid = run.id.bytes
        for key, _ in list(tx.scan(b"c" + rid)):
            tx.delete(key)
        where = tx.get(b"r" + rid)
        if where is not None:
            tx.delete(b"U" + where[:8] + rid)
        tx.delete(b"r" + rid)

    def apply(self, tx: ProjectionTx, record: EventRecord) -> None:
        self.apply_batch(tx, (record,))

    def apply_batch(self, tx: ProjectionTx, records: Sequence[EventRecord]) -> None:
        """One append's records (one stream): the run's unresolved count is written once."""
        rid = records[0].run_id.bytes
        where = tx.get(b"r" + rid)
        if where is None:
            return  # not a run
        delta = 0
        for record in records:
            call_id = call_id_of(record.event)
            if call_id is None:
                continue
            key = _call_key(rid, call_id)
            raw = tx.get(key)
            before = None if raw is None else _dec.decode(raw)
            was = before is not None and before.phase == ToolCallPhase.EXECUTING
            after = advance_call(before, record)
            if after is None:
                continue
            delta += (after.phase == ToolCallPhase.EXECUTING) - was
            tx.put(key, _enc.encode(after))
        if delta:
            index = b"U" + where[:8] + rid
            raw = tx.get(index)
            n = (0 if raw is None else read_u64(raw[:8])) + delta
            if n > 0:
                tx.put(index, u64(n) + where[8:])
            else:
                tx.delete(index)

    def query(self, reader: ProjectionReader) -> ToolLedgerQuery:
        """The query object ``store.projection("tool_ledger")`` returns."""
        return ToolLedgerQuery(reader)
