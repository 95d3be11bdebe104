"""Stateful (model-based) test: the store against a plain in-memory model.

A hypothesis ``RuleBasedStateMachine`` drives one store through random sequences of session and
run creation, single and batched appends (with right or wrong ``expected_seq``, fresh or reused
event ids), status updates and deletions. A model made of dicts and lists predicts every
result, every error and every seq / position; invariants compare the whole store to the model
after each step. The same machine runs on the in-memory backend and on LMDB.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from dataclasses import dataclass, field
from uuid import UUID

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule

from eventlog import (
    ConcurrencyError,
    EventRecord,
    InvalidTransition,
    RunNotFound,
    RunState,
    RunStatus,
    RunStore,
    SessionNotFound,
)
from eventlog.events import (
    Event,
    ModelStarted,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunStatusChanged,
    TextDelta,
    TokenUsage,
    UsageRecorded,
)

TERMINAL = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})

# -- strategies ----------------------------------------------------------------------------

small_text = st.text(max_size=8)
usage = st.builds(
    lambda i, o: TokenUsage(i, o, i + o),
    st.integers(min_value=0, max_value=1000),
    st.integers(min_value=0, max_value=1000),
)
# Non-status events are more frequent than terminal ones so runs live for a while.
events: st.SearchStrategy[Event] = st.one_of(
    st.builds(TextDelta, delta=small_text),
    st.builds(TextDelta, delta=small_text),
    st.builds(
        ModelStarted,
        provider=st.just("p"),
        model=st.just("m"),
        iteration=st.integers(min_value=0, max_value=20),
    ),
    st.builds(UsageRecorded, usage=usage),
    st.builds(UsageRecorded, usage=usage),
    st.builds(RunStatusChanged, status=st.sampled_from(list(RunStatus))),
    st.builds(
        RunCompleted,
        finish_reason=st.sampled_from(["stop", "length", "tool_calls", "weird"]),
        iterations=st.integers(min_value=0, max_value=20),
    ),
    st.builds(RunFailed, error=small_text),
    st.builds(RunCancelled),
)
# How to pass expected_seq: omit it, give the right value, or give a wrong one.
seq_modes = st.sampled_from(["none", "right", "wrong"])
wrong_offsets = st.integers(min_value=1, max_value=3)
# An event id: none, a fresh uuid, or (an int n) the n-th most recently used id.
id_specs: st.SearchStrategy[UUID | int | None] = st.one_of(
    st.none(), st.uuids(), st.integers(min_value=0, max_value=7)
)
client_request_ids = st.one_of(st.none(), st.sampled_from(["req-a", "req-b", "req-c"]))


# -- the model -----------------------------------------------------------------------------


def model_status_after(status: RunStatus, event: Event) -> RunStatus:
    """The lifecycle rule, written independently of eventlog.model.records.status_after."""
    if isinstance(event, RunStatusChanged):
        return RunStatus(event.status)
    if isinstance(event, ModelStarted):
        return RunStatus.CALLING_MODEL
    if isinstance(event, RunCompleted):
        return RunStatus.COMPLETED
    if isinstance(event, RunFailed):
        return RunStatus.FAILED
    if isinstance(event, RunCancelled):
        return RunStatus.CANCELLED
    return status


@dataclass
class ModelEvent:
    seq: int
    position: int
    event: Event
    event_id: UUID | None


@dataclass
class ModelRun:
    run_id: UUID
    session_id: UUID
    provider: str
    model: str
    client_request_id: str | None
    status: RunStatus = RunStatus.PENDING
    events: list[ModelEvent] = field(default_factory=list)
    ids: dict[UUID, ModelEvent] = field(default_factory=dict)

    def expected_state(self) -> dict[str, object]:
        iteration = 0
        total = TokenUsage()
        last_finish: str | None = None
        last_error: str | None = None
        for me in self.events:
            ev = me.event
            if isinstance(ev, ModelStarted):
                iteration = ev.iteration
            elif isinstance(ev, UsageRecorded):
                total = total + ev.usage
            elif isinstance(ev, RunCompleted):
                last_finish = ev.finish_reason
            elif isinstance(ev, RunFailed):
                last_error = ev.error
        return {
            "status": self.status,
            "event_count": len(self.events),
            "last_seq": len(self.events),
            "iteration": iteration,
            "total_usage": total,
            "last_finish": last_finish,
            "last_error": last_error,
        }


def state_fields(state: RunState) -> dict[str, object]:
    return {
        "status": state.status,
        "event_count": state.event_count,
        "last_seq": state.last_seq,
        "iteration": state.iteration,
        "total_usage": state.total_usage,
        "last_finish": state.last_finish,
        "last_error": state.last_error,
    }


@dataclass
class Outcome:
    """What the model predicts for one append: an error type, or the returned records."""

    error: type[Exception] | None = None
    results: list[ModelEvent] = field(default_factory=list)


class StoreMachine(RuleBasedStateMachine):
    """The machine; subclasses choose the backend with :meth:`make_store`."""

    sessions: Bundle[UUID] = Bundle("sessions")
    runs: Bundle[UUID] = Bundle("runs")

    def __init__(self) -> None:
        super().__init__()
        self.store = self.make_store()
        self.model_sessions: set[UUID] = set()
        self.model_runs: dict[UUID, ModelRun] = {}
        self.deleted: set[UUID] = set()
        self.client_requests: dict[tuple[UUID, str], UUID] = {}
        self.appended = 0  # positions ever assigned (deleted runs included)
        self.used_ids: list[UUID] = []

    def make_store(self) -> RunStore:
        raise NotImplementedError

    def teardown(self) -> None:
        self.store.close()

    # -- helpers ---------------------------------------------------------------------------
    def resolve_id(self, spec: UUID | int | None) -> UUID | None:
        if spec is None:
            return None
        if isinstance(spec, UUID):
            eid = spec
        elif self.used_ids:
            eid = self.used_ids[-1 - spec % len(self.used_ids)]
        else:
            eid = UUID(int=spec + 1)
        self.used_ids.append(eid)
        return eid

    def expected_seq_for(self, run_id: UUID, mode: str, offset: int) -> int | None:
        run = self.model_runs.get(run_id)
        last = 0 if run is None else len(run.events)
        if mode == "none":
            return None
        if mode == "right":
            return last
        return last + offset if offset % 2 or last < offset else last - offset

    def predict_append(
        self,
        run_id: UUID,
        evs: list[Event],
        expected_seq: int | None,
        ids: list[UUID | None] | None,
    ) -> Outcome:
        """Predict an append and, when it succeeds, apply it to the model."""
        run = self.model_runs.get(run_id)
        if run is None:
            return Outcome(RunNotFound)
        ids_ = ids if ids is not None else [None] * len(evs)
        results: list[ModelEvent | None] = [None] * len(evs)
        first_of: dict[UUID, int] = {}
        todo: list[int] = []
        dups: list[tuple[int, int]] = []
        for i, eid in enumerate(ids_):
            if eid is None:
                todo.append(i)
            elif eid in first_of:
                dups.append((i, first_of[eid]))
            elif eid in run.ids:
                results[i] = run.ids[eid]
            else:
                first_of[eid] = i
                todo.append(i)
        if todo:
            if expected_seq is not None and expected_seq != len(run.events):
                return Outcome(ConcurrencyError)
            status = run.status
            for i in todo:
                nxt = model_status_after(status, evs[i])
                if status in TERMINAL and nxt != status:
                    return Outcome(InvalidTransition)
                status = nxt
            # success: apply
            run.status = status
            for i in todo:
                self.appended += 1
                eid = ids_[i]
                me = ModelEvent(len(run.events) + 1, self.appended, evs[i], eid)
                run.events.append(me)
                if eid is not None:
                    run.ids[eid] = me
                results[i] = me
        for i, j in dups:
            results[i] = results[j]
        final = [r for r in results if r is not None]
        assert len(final) == len(evs)
        return Outcome(None, final)

    def check_records(self, run_id: UUID, got: list[EventRecord], want: list[ModelEvent]) -> None:
        assert [(r.run_id, r.seq, r.position, r.event, r.event_id) for r in got] == [
            (run_id, m.seq, m.position, m.event, m.event_id) for m in want
        ]

    def call_append(
        self,
        run_id: UUID,
        evs: list[Event],
        expected_seq: int | None,
        ids: list[UUID | None] | None,
        *,
        single: bool,
    ) -> list[EventRecord]:
        if single:
            eid = None if ids is None else ids[0]
            return [
                self.store.append_event(run_id, evs[0], expected_seq=expected_seq, event_id=eid)
            ]
        return self.store.append_events(
            run_id, evs, expected_seq=expected_seq, event_ids=None if ids is None else list(ids)
        )

    def do_append(
        self,
        run_id: UUID,
        evs: list[Event],
        expected_seq: int | None,
        ids: list[UUID | None] | None,
        *,
        single: bool,
    ) -> None:
        before = self.appended
        outcome = self.predict_append(run_id, evs, expected_seq, ids)
        if outcome.error is not None:
            with pytest.raises(outcome.error):
                self.call_append(run_id, evs, expected_seq, ids, single=single)
            assert self.appended == before
            assert self.store.last_position() == before  # nothing was written
            return
        got = self.call_append(run_id, evs, expected_seq, ids, single=single)
        self.check_records(run_id, got, outcome.results)

    # -- rules -----------------------------------------------------------------------------
    @rule(target=sessions)
    def create_session(self) -> UUID:
        session = self.store.create_session()
        assert session.id not in self.model_sessions
        self.model_sessions.add(session.id)
        return session.id

    @rule(
        target=runs,
        session=sessions,
        crid=client_request_ids,
        provider=st.sampled_from(["p1", "p2"]),
    )
    def create_run(self, session: UUID, crid: str | None, provider: str) -> UUID:
        record = self.store.create_run(
            session, provider=provider, model="m", client_request_id=crid
        )
        key = None if crid is None else (session, crid)
        if key is not None and key in self.client_requests:
            existing = self.model_runs[self.client_requests[key]]
            assert record.id == existing.run_id  # an idempotent retry: the same run
            assert record.provider == existing.provider
            assert record.status == existing.status
            return record.id
        assert record.id not in self.model_runs
        assert record.id not in self.deleted
        assert record.status == RunStatus.PENDING
        assert (record.session_id, record.provider, record.client_request_id) == (
            session,
            provider,
            crid,
        )
        self.model_runs[record.id] = ModelRun(record.id, session, provider, "m", crid)
        if key is not None:
            self.client_requests[key] = record.id
        return record.id

    @rule(session=st.uuids())
    def create_run_unknown_session(self, session: UUID) -> None:
        if session in self.model_sessions:
            return
        with pytest.raises(SessionNotFound):
            self.store.create_run(session, provider="p", model="m")

    @rule(
        run=runs,
        event=events,
        mode=seq_modes,
        offset=wrong_offsets,
        id_spec=id_specs,
    )
    def append_one(
        self, run: UUID, event: Event, mode: str, offset: int, id_spec: UUID | int | None
    ) -> None:
        expected = self.expected_seq_for(run, mode, offset)
        eid = self.resolve_id(id_spec)
        self.do_append(run, [event], expected, None if eid is None else [eid], single=True)

    @rule(
        run=runs,
        batch=st.lists(events, min_size=1, max_size=5),
        mode=seq_modes,
        offset=wrong_offsets,
        specs=st.one_of(st.none(), st.lists(id_specs, min_size=5, max_size=5)),
    )
    def append_batch(
        self,
        run: UUID,
        batch: list[Event],
        mode: str,
        offset: int,
        specs: list[UUID | int | None] | None,
    ) -> None:
        expected = self.expected_seq_for(run, mode, offset)
        ids = None if specs is None else [self.resolve_id(s) for s in specs[: len(batch)]]
        self.do_append(run, batch, expected, ids, single=False)

    def live_run(self, pick: int) -> UUID:
        live = list(self.model_runs)
        return live[pick % len(live)]

    @precondition(lambda self: bool(self.model_runs))
    @rule(
        pick=st.integers(min_value=0, max_value=1000),
        batch=st.lists(events, min_size=1, max_size=5),
        mode=seq_modes,
        offset=wrong_offsets,
        specs=st.lists(id_specs, min_size=5, max_size=5),
    )
    def append_to_live_run(
        self,
        pick: int,
        batch: list[Event],
        mode: str,
        offset: int,
        specs: list[UUID | int | None],
    ) -> None:
        """Like append_one / append_batch, on a run that exists (keeps runs growing)."""
        run = self.live_run(pick)
        expected = self.expected_seq_for(run, mode, offset)
        ids = [self.resolve_id(s) for s in specs[: len(batch)]]
        self.do_append(run, batch, expected, ids, single=len(batch) == 1)

    @rule(run=runs)
    def retry_last_event(self, run: UUID) -> None:
        """Re-send the run's last event with its id and the stale expected_seq: a safe retry."""
        model = self.model_runs.get(run)
        if model is None or not model.events or model.events[-1].event_id is None:
            return
        last = model.events[-1]
        before = self.store.last_position()
        got = self.store.append_event(
            run, last.event, expected_seq=last.seq - 1, event_id=last.event_id
        )
        self.check_records(run, [got], [last])
        assert self.store.last_position() == before

    @rule(run_id=st.uuids(), event=events)
    def append_unknown_run(self, run_id: UUID, event: Event) -> None:
        if run_id in self.model_runs:
            return
        with pytest.raises(RunNotFound):
            self.store.append_event(run_id, event)

    @rule(run=runs, status=st.sampled_from(list(RunStatus)))
    def update_run_status(self, run: UUID, status: RunStatus) -> None:
        before = self.appended
        outcome = self.predict_append(run, [RunStatusChanged(status)], None, None)
        if outcome.error is not None:
            with pytest.raises(outcome.error):
                self.store.update_run_status(run, status.value)
            assert self.store.last_position() == before
            return
        record = self.store.update_run_status(run, status.value)
        assert record.id == run
        assert record.status == status
        stored = self.store.list_events(run)[-1]
        assert stored.seq == self.model_runs[run].events[-1].seq
        assert stored.position == self.appended
        assert isinstance(stored.event, RunStatusChanged)
        assert stored.event.status == status
        # the model recorded the event we built; replace it by the stored one (timestamps)
        self.model_runs[run].events[-1].event = stored.event

    @rule(run=runs)
    def delete_run(self, run: UUID) -> None:
        existed = run in self.model_runs
        assert self.store.delete_run(run) is existed
        if existed:
            model = self.model_runs.pop(run)
            self.deleted.add(run)
            if model.client_request_id is not None:
                del self.client_requests[(model.session_id, model.client_request_id)]

    # -- invariants ------------------------------------------------------------------------
    @invariant()
    def runs_match_model(self) -> None:
        for run_id, model in self.model_runs.items():
            records = self.store.list_events(run_id)
            assert [r.seq for r in records] == list(range(1, len(model.events) + 1))
            self.check_records(run_id, records, model.events)
            record = self.store.get_run(run_id)
            assert record is not None
            assert record.status == model.status
            assert (record.session_id, record.provider, record.client_request_id) == (
                model.session_id,
                model.provider,
                model.client_request_id,
            )
            state = self.store.get_run_state(run_id)
            assert state is not None
            folded = RunState.fold(record, records)
            assert state_fields(state) == state_fields(folded)
            assert state_fields(state) == model.expected_state()

    @invariant()
    def deleted_runs_are_gone(self) -> None:
        for run_id in self.deleted:
            assert self.store.get_run(run_id) is None
            assert self.store.get_run_state(run_id) is None
            with pytest.raises(RunNotFound):
                self.store.list_events(run_id)

    @invariant()
    def log_matches_model(self) -> None:
        log = self.store.read_log()
        positions = [r.position for r in log]
        assert all(a < b for a, b in itertools.pairwise(positions))
        expected = sorted(
            (m.position, run_id, m.seq, m.event)
            for run_id, model in self.model_runs.items()
            for m in model.events
        )
        assert [(r.position, r.run_id, r.seq, r.event) for r in log] == expected
        assert self.store.last_position() == self.appended


MACHINE_SETTINGS = settings(max_examples=50, stateful_step_count=50, deadline=None, database=None)


@MACHINE_SETTINGS
class MemoryStoreMachine(StoreMachine):
    def make_store(self) -> RunStore:
        return RunStore.in_memory()


@MACHINE_SETTINGS
class LmdbStoreMachine(StoreMachine):
    def make_store(self) -> RunStore:
        self.directory = tempfile.mkdtemp(prefix="eventlog-stateful-")
        return RunStore.open(self.directory, durability="fast", map_size=1 << 20)

    @rule()
    def reopen(self) -> None:
        """Close and reopen the directory: everything (and the position counter) persists."""
        self.store.close()
        self.store = RunStore.open(self.directory, durability="fast", map_size=1 << 20)

    def teardown(self) -> None:
        try:
            super().teardown()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


TestMemoryStoreStateful = MemoryStoreMachine.TestCase
TestLmdbStoreStateful = LmdbStoreMachine.TestCase
