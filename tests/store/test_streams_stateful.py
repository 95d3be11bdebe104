"""Stateful test of streams of other kinds against a plain model (hypothesis).

Random sequences of stream creation (two kinds), appends of registered and built-in events
(right, wrong or no ``expected_seq``; fresh or reused event ids), appends to a run in
between, deletions and (on LMDB) reopening. The model predicts every seq, position, error
and listing; invariants compare the whole store to it after each step.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from uuid import UUID, uuid4

import msgspec
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from eventlog import ConcurrencyError, EventRecord, RunStore, StreamNotFound, event_type
from eventlog.events import TextDelta


@event_type("tests.stateful.step")
class Step(msgspec.Struct, frozen=True):
    n: int
    note: str = ""


KINDS = ("tests.kind_a", "tests.kind_b")
payloads = st.one_of(
    st.builds(Step, n=st.integers(-5, 5), note=st.text(max_size=4)),
    st.builds(TextDelta, delta=st.text(max_size=4)),
)


@dataclass
class ModelStream:
    kind: str
    events: list[tuple[int, object]] = field(default_factory=list)  # (position, event)
    ids: dict[UUID, int] = field(default_factory=dict)  # event id -> seq


class StreamMachine(RuleBasedStateMachine):
    streams = Bundle("streams")

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp()
        self.store = self.make_store()
        self.run_id = self.store.create_run(self.store.ensure_session(), provider="p", model="m").id
        self.model: dict[UUID, ModelStream] = {}
        self.created: list[UUID] = []  # creation order, deleted ones included
        self.position = 0
        self.used_ids: list[UUID] = []

    def make_store(self) -> RunStore:
        return RunStore.in_memory()

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(target=streams, kind=st.sampled_from(KINDS))
    def create(self, kind: str) -> UUID:
        record = self.store.create_stream(kind=kind, metadata={"k": kind})
        self.model[record.id] = ModelStream(kind)
        self.created.append(record.id)
        return record.id

    @rule(
        stream=streams,
        events=st.lists(payloads, min_size=0, max_size=4),
        mode=st.sampled_from(["none", "right", "wrong"]),
        reuse=st.booleans(),
    )
    def append(self, stream: UUID, events: list[object], mode: str, reuse: bool) -> None:
        m = self.model.get(stream)
        head = 0 if m is None else len(m.events)
        expected = None if mode == "none" else head if mode == "right" else head + 1
        ids = [uuid4() for _ in events]
        if reuse and self.used_ids and ids:
            ids[0] = self.used_ids[-1]
        outcome: list[EventRecord] | StreamNotFound | ConcurrencyError
        try:
            outcome = self.store.append_to_stream(
                stream,
                events,  # type: ignore[arg-type]
                expected_seq=expected,
                event_ids=ids,
            )
        except (StreamNotFound, ConcurrencyError) as exc:
            outcome = exc
        if isinstance(outcome, StreamNotFound):
            assert m is None
            return
        if isinstance(outcome, ConcurrencyError):
            assert m is not None
            assert mode == "wrong"
            assert not events or any(i not in m.ids for i in ids)
            assert outcome.actual_seq == head
            return
        got = outcome
        assert m is not None
        assert mode != "wrong" or (events and all(i in m.ids for i in ids))
        want_seqs: list[int] = []
        for event, eid in zip(events, ids, strict=True):
            if eid in m.ids:
                want_seqs.append(m.ids[eid])
                continue
            self.position += 1
            m.events.append((self.position, event))
            m.ids[eid] = len(m.events)
            want_seqs.append(len(m.events))
        self.used_ids.extend(ids)
        assert [r.seq for r in got] == want_seqs
        assert all(r.run_id == stream for r in got)

    @rule(delta=st.text(max_size=4))
    def append_to_run(self, delta: str) -> None:
        self.store.append_event(self.run_id, TextDelta(delta))
        self.position += 1

    @rule(stream=streams)
    def delete(self, stream: UUID) -> None:
        existed = self.model.pop(stream, None) is not None
        assert self.store.delete_stream(stream) is existed

    @invariant()
    def streams_match(self) -> None:
        for sid, m in self.model.items():
            records = self.store.read_stream(sid)
            assert [r.seq for r in records] == list(range(1, len(m.events) + 1))
            assert [(r.position, r.event) for r in records] == m.events
            tail = self.store.read_stream(sid, reverse=True, limit=2)
            assert [r.seq for r in tail] == list(range(len(m.events), 0, -1))[:2]
        for kind in KINDS:
            listed = [s.id for s in self.store.list_streams(kind, limit=1000)]
            assert listed == [
                s for s in self.created if s in self.model and self.model[s].kind == kind
            ]

    @invariant()
    def log_is_dense_in_commit_order(self) -> None:
        assert self.store.last_position() == self.position
        positions = [r.position for r in self.store.read_log()]
        assert positions == sorted(positions)
        live = sum(len(m.events) for m in self.model.values())
        assert len(positions) == live + len(self.store.list_events(self.run_id))


class LmdbStreamMachine(StreamMachine):
    def make_store(self) -> RunStore:
        return RunStore.open(f"{self.dir}/store", durability="fast")

    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.store = self.make_store()


TestMemoryStreams = StreamMachine.TestCase
TestMemoryStreams.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
TestLmdbStreams = LmdbStreamMachine.TestCase
TestLmdbStreams.settings = settings(max_examples=25, stateful_step_count=25, deadline=None)
