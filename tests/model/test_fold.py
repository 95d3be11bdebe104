"""The fold's fast path (plain events counted, not applied one by one) equals the per-event rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from eventlog import RawEvent, RunState
from eventlog.events import (
    AnyEvent,
    ContextBuilt,
    ModelStarted,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunStarted,
    RunStatusChanged,
    TextDelta,
    TokenUsage,
    ToolCallDelta,
    UsageRecorded,
)
from eventlog.model.records import EventRecord, RunRecord
from eventlog.model.status import RunStatus

T0 = datetime(2026, 1, 1, tzinfo=UTC)

_events = st.one_of(
    st.builds(
        lambda i: TextDelta(f"t{i}", timestamp=T0 + timedelta(seconds=i)), st.integers(0, 99)
    ),
    st.builds(
        lambda i: ToolCallDelta("c", "{", timestamp=T0 + timedelta(seconds=i)), st.integers(0, 99)
    ),
    st.builds(lambda n: ContextBuilt(n), st.integers(0, 5)),
    st.builds(lambda i: ModelStarted("p", "m", i), st.integers(1, 9)),
    st.builds(
        lambda a, b: UsageRecorded(TokenUsage(a, b, a + b)), st.integers(0, 9), st.integers(0, 9)
    ),
    st.just(RunStarted(uuid4(), "p2", "m2")),
    st.just(RunCompleted("stop", 1)),
    st.just(RunFailed("boom")),
    st.just(RunCancelled()),
    st.sampled_from([RunStatusChanged(s) for s in RunStatus]),
    st.just(RawEvent("FutureThing", 3, {"x": 1})),
)


def _one_by_one(record: RunRecord, records: list[EventRecord]) -> RunState:
    state = RunState.initial(record)
    for r in records:
        state = state.apply(r)  # the per-event rule, one record at a time
    return state


@settings(max_examples=300, deadline=None)
@given(st.lists(_events, max_size=30))
def test_fast_fold_equals_the_per_event_rule(events: list[AnyEvent]) -> None:
    now = T0
    record = RunRecord(uuid4(), uuid4(), RunStatus.PENDING, "p", "m", {}, None, now, now)
    records = [
        EventRecord(record.id, i + 1, i + 1, e, T0 + timedelta(minutes=i))
        for i, e in enumerate(events)
    ]
    fast = RunState.fold(record, records)
    slow = _one_by_one(record, records)
    assert msgspec.structs.asdict(fast) == msgspec.structs.asdict(slow)
    assert fast.event_count == len(events)
    assert fast.last_seq == len(events)
