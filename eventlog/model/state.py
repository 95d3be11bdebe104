"""A run's state: the pure fold of its events, and the lifecycle rule that guards it.

:class:`RunState` is what a run looks like after its last event. Two ways to move it on:

- :meth:`RunState.fold` / :meth:`RunState.fold_in` describe *any* history as stored, with no
  judgement (a fresh fold of ``store.list_events`` always equals the materialized state);
- :meth:`RunState.advance` is the store's rule for *new* events: a run in a terminal status
  (``completed``, ``failed``, ``cancelled``) never moves to another status. An event that would
  move it raises :class:`~eventlog.errors.InvalidTransition` naming the run, both statuses and
  the event's seq, and the state is left unchanged - the append that carried it is aborted.

The run-state projector (``projections/run_state.py``) only loads a state, advances it and
stores it; the rule lives here, with the fold it guards.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from itertools import compress
from operator import attrgetter
from typing import Any
from uuid import UUID

import msgspec

from eventlog.errors import InvalidTransition
from eventlog.model.events import (
    AnyEvent,
    Event,
    ModelStarted,
    RawEvent,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunStarted,
    RunStatusChanged,
    TokenUsage,
    UsageRecorded,
)
from eventlog.model.records import EventRecord, RunRecord
from eventlog.model.status import TERMINAL_STATUSES, RunStatus

__all__ = ["FOLD_SPECIAL", "RunState", "check_transitions", "status_after"]

_STATUS_OF: dict[type, RunStatus] = {
    ModelStarted: RunStatus.CALLING_MODEL,
    RunStarted: RunStatus.SESSION_LOADED,
    RunCompleted: RunStatus.COMPLETED,
    RunFailed: RunStatus.FAILED,
    RunCancelled: RunStatus.CANCELLED,
}


def status_after(status: RunStatus, event: AnyEvent) -> RunStatus:
    """Return the status a run in ``status`` has after ``event`` (the fold's status rule).

    >>> from eventlog.events import RunCancelled
    >>> status_after(RunStatus.CALLING_MODEL, RunCancelled())
    <RunStatus.CANCELLED: 'cancelled'>
    """
    if type(event) is RunStatusChanged:
        return RunStatus(event.status)
    return _STATUS_OF.get(type(event), status)


_EVENT = attrgetter("event")

#: Event types the fold must look at one by one (the others cannot change the status:
#: they set only the time, the count and the seq).
FOLD_SPECIAL: frozenset[type] = frozenset({*_STATUS_OF, RunStatusChanged, UsageRecorded, RawEvent})


def check_transitions(status: RunStatus, records: Iterable[EventRecord]) -> RunStatus:
    """The status after ``records`` from ``status``, under the lifecycle rule.

    Raises :class:`~eventlog.errors.InvalidTransition` (run, both statuses, seq) at the first
    record that would move a terminal run to another status.

    >>> from datetime import UTC, datetime
    >>> from uuid import uuid4
    >>> from eventlog.events import RunCompleted, TextDelta
    >>> now = datetime.now(UTC)
    >>> run_id = uuid4()
    >>> check_transitions(RunStatus.COMPLETED, [EventRecord(run_id, 7, 7, TextDelta("x"), now)])
    <RunStatus.COMPLETED: 'completed'>
    >>> from eventlog.errors import InvalidTransition
    >>> moved = [EventRecord(run_id, 8, 8, RunStatusChanged(RunStatus.PENDING), now)]
    >>> try:
    ...     check_transitions(RunStatus.COMPLETED, moved)
    ... except InvalidTransition as exc:
    ...     (exc.current, exc.requested, exc.seq)
    ('completed', 'pending', 8)
    """
    special = FOLD_SPECIAL
    for record in records:
        if type(record.event) in special:  # only these can change the status
            nxt = status_after(status, record.event)
            if status in TERMINAL_STATUSES and nxt != status:
                raise InvalidTransition(record.run_id, status.value, nxt.value, record.seq)
            status = nxt
    return status


class RunState(msgspec.Struct):
    """The fold of a run's events: what the run looks like after its last event.

    ``RunState.fold(record, events)`` is pure: the store's materialized state (what
    ``store.get_run_state`` returns) always equals a fresh fold of ``store.list_events``.

    >>> from datetime import UTC, datetime
    >>> from uuid import uuid4
    >>> from eventlog.events import ModelStarted, UsageRecorded, TokenUsage
    >>> now = datetime.now(UTC)
    >>> rec = RunRecord(uuid4(), uuid4(), RunStatus.PENDING, "openai", "gpt-4o", {}, None, now, now)
    >>> evs = [
    ...     EventRecord(rec.id, 1, 1, ModelStarted("openai", "gpt-4o", 1), now),
    ...     EventRecord(rec.id, 2, 2, UsageRecorded(TokenUsage(10, 5, 15)), now),
    ... ]
    >>> state = RunState.fold(rec, evs)
    >>> (state.status, state.iteration, state.total_usage.total_tokens, state.last_seq)
    (<RunStatus.CALLING_MODEL: 'calling_model'>, 1, 15, 2)
    """

    run_id: UUID
    session_id: UUID
    status: RunStatus
    provider: str
    model: str
    metadata: dict[str, Any]
    iteration: int = 0
    total_usage: TokenUsage = msgspec.field(default_factory=TokenUsage)
    last_finish: str | None = None
    last_error: str | None = None
    event_count: int = 0
    last_seq: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def initial(cls, record: RunRecord) -> RunState:
        """The state of a run that has no events yet."""
        return cls(
            run_id=record.id,
            session_id=record.session_id,
            status=RunStatus.PENDING,
            provider=record.provider,
            model=record.model,
            metadata=dict(record.metadata),
            created_at=record.created_at,
            updated_at=record.created_at,
        )

    @classmethod
    def fold(cls, record: RunRecord, events: Iterable[EventRecord]) -> RunState:
        """Fold ``events`` (in seq order) over the initial state of ``record``."""
        state = cls.initial(record)
        state.fold_in(events)
        return state

    def advance(self, records: Sequence[EventRecord]) -> None:
        """Fold new ``records`` (in seq order) into this state, in place, under the rule.

        Raises :class:`~eventlog.errors.InvalidTransition` - and changes nothing - when one
        of them would move a terminal run to another status (see :func:`check_transitions`).
        """
        check_transitions(self.status, records)
        self.fold_in(records)

    def fold_in(self, events: Iterable[EventRecord]) -> None:
        """Apply ``events`` (in seq order) to this state, in place.

        Most events (text and tool deltas) change only ``updated_at``, ``event_count`` and
        ``last_seq``, which depend on the last event alone: only the events that change more
        go through the per-event rule, the rest are counted. No lifecycle check: use
        :meth:`advance` for new events.
        """
        records = events if isinstance(events, list) else list(events)
        if not records:
            return
        # which records are special, found in C (map), so Python steps through those alone
        flags = list(map(FOLD_SPECIAL.__contains__, map(type, map(_EVENT, records))))
        for i in compress(range(len(records)), flags):
            _step(self, records[i])
        plain = len(flags) - sum(flags)
        if plain and not flags[-1]:
            # the last event was a plain one: it sets the time and the seq
            last = records[-1]
            event = last.event
            self.updated_at = event.timestamp if isinstance(event, Event) else last.recorded_at
            self.last_seq = last.seq
        self.event_count += plain

    def apply(self, record: EventRecord) -> RunState:
        """Return a new state: this one after ``record`` (``self`` is not changed).

        The per-event rule, one record at a time (no lifecycle check, like :meth:`fold_in`).
        """
        new = msgspec.structs.replace(self)
        _step(new, record)
        return new


def _step(state: RunState, record: EventRecord) -> None:
    """The per-event rule: ``state`` after ``record``, in place."""
    event = record.event
    kind = type(event)
    if not isinstance(event, Event):  # raw data, or a registered type (no timestamp)
        state.updated_at = record.recorded_at
    else:
        state.updated_at = event.timestamp
        if kind in _STATUS_OF or kind is RunStatusChanged:
            if isinstance(event, RunStarted):
                state.provider = event.provider
                state.model = event.model
            elif isinstance(event, ModelStarted):
                state.iteration = event.iteration
            elif isinstance(event, RunCompleted):
                state.last_finish = event.finish_reason
            elif isinstance(event, RunFailed):
                state.last_error = event.error
            state.status = status_after(state.status, event)
        elif kind is UsageRecorded:
            assert isinstance(event, UsageRecorded)
            state.total_usage = state.total_usage + event.usage
    state.event_count += 1
    state.last_seq = record.seq
