"""The lifecycle rule is the model's: ``RunState.advance`` refuses to move a terminal run.

``advance`` checks a whole batch before it changes anything, and names the run, both statuses
and the seq of the first event it refuses; ``fold``/``fold_in`` describe any stored history
without judging it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventlog import InvalidTransition, RunState
from eventlog.events import (
    AnyEvent,
    ModelStarted,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunStarted,
    RunStatusChanged,
    TextDelta,
)
from eventlog.model.records import EventRecord, RunRecord
from eventlog.model.status import TERMINAL_STATUSES, RunStatus

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RUN = RunRecord(uuid4(), uuid4(), RunStatus.PENDING, "p", "m", {}, None, T0, T0)


def _records(events: list[AnyEvent], first_seq: int = 1) -> list[EventRecord]:
    return [
        EventRecord(RUN.id, first_seq + i, first_seq + i, e, T0 + timedelta(seconds=i))
        for i, e in enumerate(events)
    ]


def _status_by_hand(status: RunStatus, event: AnyEvent) -> RunStatus:
    """The status rule, written again here (not eventlog.model.state.status_after)."""
    if isinstance(event, RunStatusChanged):
        return RunStatus(event.status)
    found = {
        RunStarted: RunStatus.SESSION_LOADED,
        ModelStarted: RunStatus.CALLING_MODEL,
        RunCompleted: RunStatus.COMPLETED,
        RunFailed: RunStatus.FAILED,
        RunCancelled: RunStatus.CANCELLED,
    }
    return found.get(type(event), status)


def test_advance_refuses_to_move_a_terminal_run_and_changes_nothing() -> None:
    state = RunState.fold(RUN, _records([ModelStarted("p", "m", 1), RunCompleted("stop", 1)]))
    before = msgspec.structs.asdict(state)
    with pytest.raises(InvalidTransition) as info:
        state.advance(
            _records([TextDelta("late"), RunStatusChanged(RunStatus.PENDING)], first_seq=3)
        )
    error = info.value
    assert (error.run_id, error.current, error.requested, error.seq) == (
        RUN.id,
        "completed",
        "pending",
        4,
    )
    assert f"run {RUN.id}" in str(error)
    assert "seq 4" in str(error)
    assert msgspec.structs.asdict(state) == before  # the text delta was not folded either


def test_a_terminal_run_still_takes_events_that_keep_its_status() -> None:
    state = RunState.fold(RUN, _records([RunFailed("boom")]))
    state.advance(
        _records([TextDelta("x"), RunFailed("again"), RunStatusChanged(RunStatus.FAILED)], 2)
    )
    assert (state.status, state.last_error, state.event_count, state.last_seq) == (
        RunStatus.FAILED,
        "again",
        4,
        4,
    )


_events = st.lists(
    st.one_of(
        st.just(TextDelta("t")),
        st.builds(lambda i: ModelStarted("p", "m", i), st.integers(1, 5)),
        st.just(RunStarted(uuid4(), "p", "m")),
        st.just(RunCompleted("stop", 1)),
        st.just(RunFailed("boom")),
        st.just(RunCancelled()),
        st.sampled_from([RunStatusChanged(s) for s in RunStatus]),
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(_events, _events)
def test_advance_is_the_fold_when_the_rule_allows_it(
    history: list[AnyEvent], batch: list[AnyEvent]
) -> None:
    state = RunState.fold(RUN, _records(history))
    new = _records(batch, first_seq=len(history) + 1)
    status, refused_at = state.status, None
    for record in new:
        nxt = _status_by_hand(status, record.event)
        if status in TERMINAL_STATUSES and nxt != status:
            refused_at = record.seq
            break
        status = nxt
    before = msgspec.structs.asdict(state)
    if refused_at is not None:
        with pytest.raises(InvalidTransition) as info:
            state.advance(new)
        assert info.value.seq == refused_at
        assert msgspec.structs.asdict(state) == before
        return
    state.advance(new)
    assert state == RunState.fold(RUN, _records(history + batch))
