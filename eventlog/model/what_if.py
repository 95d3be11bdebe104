"""What-if histories: a run's events with some replaced, dropped or inserted (pure, no I/O).

:func:`edit_history` builds the history that ``store.replay(run_id, replace=..., drop=...,
insert=...)`` folds: nothing is written and nothing is executed. Seqs name the real events;
the edited history is renumbered 1..n (its ``last_seq`` and ``event_count`` are the
hypothetical run's). A replaced event keeps the real one's time and position; an inserted one
takes the time of the event it follows (the run's creation for ``after_seq=0``).

>>> from datetime import UTC, datetime
>>> from uuid import uuid4
>>> from eventlog.events import RunCompleted, RunFailed, TextDelta
>>> from eventlog.model.records import EventRecord
>>> rid, now = uuid4(), datetime.now(UTC)
>>> real = [EventRecord(rid, 1, 1, TextDelta("hi"), now),
...         EventRecord(rid, 2, 2, RunCompleted("stop", 1), now)]
>>> edited = edit_history(rid, real, replace={2: RunFailed("boom")}, insert={1: [TextDelta("!")]})
>>> [(r.seq, r.type) for r in edited]
[(1, 'TextDelta'), (2, 'TextDelta'), (3, 'RunFailed')]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from datetime import datetime
from uuid import UUID

from eventlog.errors import ReplayEditError
from eventlog.model.events import AnyEvent
from eventlog.model.records import EventRecord

__all__ = ["edit_history"]


def _check_seqs(run_id: UUID, seqs: Set[int], last: int, what: str, low: int = 1) -> None:
    for seq in sorted(seqs, key=lambda s: (not isinstance(s, int), s)):
        if isinstance(seq, bool) or not isinstance(seq, int):
            raise TypeError(f"replay of run {run_id}: {what} seq must be an int, got {seq!r:.40}")
        if not low <= seq <= last:
            raise ReplayEditError(
                run_id, seq, f"is out of range for {what}: the replayed events are {low}..{last}"
            )


def edit_history(
    run_id: UUID,
    records: Sequence[EventRecord],
    *,
    replace: Mapping[int, AnyEvent] | None = None,
    drop: Set[int] | None = None,
    insert: Mapping[int, Sequence[AnyEvent]] | None = None,
    created_at: datetime | None = None,
) -> list[EventRecord]:
    """``records`` (the run's events 1..last in seq order) edited, renumbered from 1.

    Raises :class:`~eventlog.errors.ReplayEditError` for a seq outside 1..last (0..last for
    ``insert``: 0 inserts before the first event) or a seq both replaced and dropped. The
    events are taken as given: check them first (the store checks them like appends).
    """
    replace = dict(replace or {})
    drop = set(drop or ())
    insert = dict(insert or {})
    last = records[-1].seq if records else 0
    _check_seqs(run_id, set(replace), last, "replace")
    _check_seqs(run_id, drop, last, "drop")
    _check_seqs(run_id, set(insert), last, "insert", low=0)
    both = sorted(set(replace) & drop)
    if both:
        raise ReplayEditError(run_id, both[0], "is both replaced and dropped: choose one")
    out: list[EventRecord] = []

    def add(event: AnyEvent, position: int, at: datetime) -> None:
        out.append(EventRecord(run_id, len(out) + 1, position, event, at))

    start = created_at or (records[0].recorded_at if records else None)
    for event in insert.get(0, ()):
        assert start is not None
        add(event, 0, start)
    for record in records:
        if record.seq not in drop:
            add(replace.get(record.seq, record.event), record.position, record.recorded_at)
        for event in insert.get(record.seq, ()):
            add(event, 0, record.recorded_at)
    return out
