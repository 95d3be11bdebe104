"""The run-state projector: ``RunState`` per run, advanced inside the append transaction.

It loads the run's state, advances it by the append's records and stores it. Advancing is the
model's (:meth:`eventlog.model.state.RunState.advance`), and so is the lifecycle rule it
enforces: an event that would move a terminal run elsewhere raises
:class:`~eventlog.errors.InvalidTransition` (naming the run, both statuses and the seq), which
aborts the whole append.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter
from typing import ClassVar
from uuid import UUID

import msgspec

from eventlog.engine.protocols import ProjectionReader, ProjectionTx
from eventlog.model.records import EventRecord, RunRecord
from eventlog.model.state import RunState
from eventlog.storage.codec import RUN_STATE

__all__ = ["ListedState", "RunStateProjector", "RunStateQuery", "listed_states"]


class ListedState(msgspec.Struct, gc=False):
    """What a listing reads of a state: two fields, left encoded (the others are skipped)."""

    status: msgspec.Raw
    updated_at: msgspec.Raw = msgspec.Raw(b"\xc0")


_listed_states = msgspec.msgpack.Decoder(list[ListedState])
_UPDATED_AT = attrgetter("updated_at")


def listed_states(values: list[bytes | None]) -> list[ListedState] | None:
    """``status`` and ``updated_at`` of each stored state, encoded, in one decode.

    None when a run has no state or no ``updated_at``, or a value does not decode: the caller
    then reads those runs one by one (and a damaged one is reported by name).
    """
    if None in values:
        return None
    joined = b"".join(values)  # type: ignore[arg-type]  # (no None: checked above)
    try:
        found = _listed_states.decode(b"\xdd" + len(values).to_bytes(4, "big") + joined)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if 1 in list(map(len, map(_UPDATED_AT, found))):  # nil: the record's time applies
        return None
    return found


_decode = RUN_STATE.decode
_encode = RUN_STATE.encode


def _advance(tx: ProjectionTx, run_id: UUID, records: Sequence[EventRecord]) -> None:
    """Load ``run_id``'s state, advance it by ``records``, store it (nothing for a non-run)."""
    key = run_id.bytes
    raw = tx.get(key)
    if raw is None:
        return  # not a run (a session's message stream)
    state = _decode(raw, "run", run_id, "state")
    state.advance(records)  # InvalidTransition out of a terminal status: nothing written
    tx.put(key, _encode(state))


class RunStateQuery:
    """Reads of the run-state view."""

    def __init__(self, reader: ProjectionReader) -> None:
        self._reader = reader

    def get(self, run_id: UUID) -> RunState | None:
        """The materialized state of ``run_id`` (None when it is not a run)."""
        raw = self._reader.get(run_id.bytes)
        return None if raw is None else RUN_STATE.decode(raw, "run", run_id, "state")


class RunStateProjector:
    """Keeps ``RunState.fold(record, events)`` for every run; key = the run id's 16 bytes."""

    name: ClassVar[str] = "run_state"
    version: ClassVar[int] = 1
    #: a rebuild may feed it stream by stream:
    #: each run's state folds its own events, in seq order
    replay_order: ClassVar[str] = "stream"
    event_types: ClassVar[frozenset[str]] = frozenset()

    def on_run_created(self, tx: ProjectionTx, run: RunRecord) -> None:
        tx.put(run.id.bytes, RUN_STATE.encode(RunState.initial(run)))

    def on_run_deleted(self, tx: ProjectionTx, run: RunRecord) -> None:
        tx.delete(run.id.bytes)

    def apply(self, tx: ProjectionTx, record: EventRecord) -> None:
        """Advance the run's state by one record (the single append's path)."""
        _advance(tx, record.run_id, (record,))

    def apply_batch(self, tx: ProjectionTx, records: Sequence[EventRecord]) -> None:
        """Advance the run's state by one append's records (one stream): one read, one write."""
        _advance(tx, records[0].run_id, records)

    def query(self, reader: ProjectionReader) -> RunStateQuery:
        """The query object ``store.projection("run_state")`` returns."""
        return RunStateQuery(reader)
