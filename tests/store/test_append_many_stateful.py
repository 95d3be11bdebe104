"""Stateful test of ``append_many`` across streams of every kind, against a plain model.

A hypothesis ``RuleBasedStateMachine`` creates sessions, runs and streams of two kinds, and
calls ``append_many`` with random mixes of requests: existing streams and new ones (a stream
kind with ``expected_seq=0`` creates), ids from a small pool of names (so a "new" stream is
sometimes an existing one), the right kind, no kind or a wrong one, ``expected_seq`` absent,
right, wrong or 0, event ids fresh or repeated (idempotency, also within one request), and
now and then a request that the plan refuses. A model of dicts and lists, written from the
rules in ``docs/how-to/atomic-appends.md`` (not from the engine), predicts every result or
error; a failed call must change nothing. Invariants compare every stream, the log, the
listings and the kinds with the model after each step, on memory and on LMDB (with reopens).
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from dataclasses import dataclass, field
from uuid import UUID, uuid4

import msgspec
import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from eventlog import (
    AppendRequest,
    ConcurrencyError,
    EventRecord,
    RunNotFound,
    RunStore,
    SessionNotFound,
    StreamKindError,
    StreamNotFound,
    event_type,
    stream_id_for,
)
from eventlog.events import TextDelta


@event_type("tests.append_many.moved")
class Moved(msgspec.Struct, frozen=True):
    amount: int


KINDS = ("tests.am.account", "tests.am.ledger")
ALL_KINDS = ("run", "session", *KINDS)
NAMES = ("a", "b", "c")  # pooled names: a "new" stream id is sometimes an existing stream

payloads = st.one_of(
    st.builds(TextDelta, delta=st.text(max_size=3)),
    st.builds(Moved, amount=st.integers(-9, 9)),
)


@dataclass
class ModelEvent:
    seq: int
    position: int
    event: object
    event_id: UUID | None


@dataclass
class ModelStream:
    kind: str  # "run", "session" or a stream kind
    metadata: dict[str, object] = field(default_factory=dict)
    events: list[ModelEvent] = field(default_factory=list)
    ids: dict[UUID, ModelEvent] = field(default_factory=dict)


@dataclass
class Model:
    streams: dict[UUID, ModelStream] = field(default_factory=dict)
    created: list[UUID] = field(default_factory=list)  # creation order of streams of kinds
    position: int = 0


@dataclass(frozen=True)
class Part:
    """One request as drawn: what it targets and how (resolved against the model later)."""

    target: tuple[str, int]  # ("existing", pick) | ("named", kind index * len(NAMES) + name)
    kind_mode: str  # "none" | "own" | "wrong"
    seq_mode: str  # "none" | "right" | "wrong" | "zero"
    events: tuple[object, ...]
    id_specs: tuple[int | None, ...]  # None: no id; -1: fresh; n >= 0: the n-th used id
    with_metadata: bool
    retry: bool  # re-send the stream's last events with their ids and the stale expected_seq
    invalid: str | None  # a request the plan refuses, or None


parts = st.builds(
    Part,
    target=st.one_of(
        st.tuples(st.just("existing"), st.integers(0, 100)),
        st.tuples(st.just("named"), st.integers(0, len(KINDS) * len(NAMES) - 1)),
    ),
    kind_mode=st.sampled_from(["none", "own", "own", "own", "wrong"]),
    seq_mode=st.sampled_from(["none", "none", "right", "right", "wrong", "zero"]),
    events=st.lists(payloads, max_size=3).map(tuple),
    id_specs=st.lists(
        st.one_of(st.none(), st.just(-1), st.integers(0, 5)), min_size=3, max_size=3
    ).map(tuple),
    with_metadata=st.booleans(),
    retry=st.booleans(),
    invalid=st.sampled_from(["id_count", "metadata_without_kind", "bad_kind", *[None] * 27]),
)


def predict(model: Model, requests: list[AppendRequest]) -> list[list[ModelEvent]]:
    """Apply ``requests`` to ``model`` in order, as the documented rules say; raise the error.

    The caller passes a copy: on an error the copy is dropped, so nothing of the call counts.
    """
    out: list[list[ModelEvent]] = []
    for req in requests:
        sid = req.stream_id
        stream = model.streams.get(sid)
        if stream is None:
            if req.kind is None:
                raise StreamNotFound(sid)
            if req.kind == "run":
                raise RunNotFound(sid)
            if req.kind == "session":
                raise SessionNotFound(sid)
            if req.expected_seq != 0:
                raise StreamNotFound(sid)
            stream = ModelStream(req.kind, dict(req.metadata or {}))
            model.streams[sid] = stream
            model.created.append(sid)
        elif req.kind is not None and req.kind != stream.kind:
            raise StreamKindError(sid, req.kind, stream.kind)
        ids = list(req.event_ids) if req.event_ids is not None else [None] * len(req.events)
        results: list[ModelEvent | None] = [None] * len(req.events)
        new: list[int] = []
        first: dict[UUID, int] = {}
        for i, eid in enumerate(ids):
            if eid is not None and eid in stream.ids:
                results[i] = stream.ids[eid]  # stored already: returned, not written
            elif eid is not None and eid in first:
                continue  # a repeat within the request: the first one's record
            else:
                if eid is not None:
                    first[eid] = i
                new.append(i)
        retry = bool(req.events) and not new  # every event stored: expected_seq not checked
        head = len(stream.events)
        if not retry and req.expected_seq is not None and req.expected_seq != head:
            raise ConcurrencyError(sid, req.expected_seq, head)
        for i in new:
            model.position += 1
            eid = ids[i]
            me = ModelEvent(len(stream.events) + 1, model.position, req.events[i], eid)
            stream.events.append(me)
            if eid is not None:
                stream.ids[eid] = me
            results[i] = me
        for i, eid in enumerate(ids):
            if results[i] is None:
                assert eid is not None
                results[i] = stream.ids[eid]
        out.append([r for r in results if r is not None])
    return out


class AppendManyMachine(RuleBasedStateMachine):
    """The machine; :class:`LmdbAppendManyMachine` runs it on LMDB."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="eventlog-append-many-")
        self.store = self.make_store()
        self.model = Model()
        self.sessions: list[UUID] = []
        self.used_ids: list[UUID] = []

    def make_store(self) -> RunStore:
        return RunStore.in_memory()

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- creating streams ------------------------------------------------------------------
    @rule()
    def create_session(self) -> None:
        sid = self.store.create_session().id
        self.model.streams[sid] = ModelStream("session")
        self.sessions.append(sid)

    @precondition(lambda self: bool(self.sessions))
    @rule(pick=st.integers(0, 100))
    def create_run(self, pick: int) -> None:
        session = self.sessions[pick % len(self.sessions)]
        run = self.store.create_run(session, provider="p", model="m")
        self.model.streams[run.id] = ModelStream("run")

    @rule(kind=st.sampled_from(KINDS), named=st.sampled_from((None, *NAMES)))
    def create_stream(self, kind: str, named: str | None) -> None:
        sid = uuid4() if named is None else stream_id_for(kind, named)
        if sid in self.model.streams:
            return  # ensure_stream semantics are tested elsewhere
        self.store.create_stream(sid, kind=kind, metadata={"by": "create"})
        self.model.streams[sid] = ModelStream(kind, {"by": "create"})
        self.model.created.append(sid)

    # -- append_many -----------------------------------------------------------------------
    def request(self, n: int, part: Part) -> AppendRequest:
        """The request a drawn part stands for, against the model as it is now."""
        streams = self.model.streams
        if part.target[0] == "existing" and streams:
            sid = list(streams)[part.target[1] % len(streams)]
            own = streams[sid].kind
        else:
            k, name = divmod(part.target[1] % (len(KINDS) * len(NAMES)), len(NAMES))
            own = KINDS[k]
            sid = stream_id_for(own, NAMES[name])
        head = len(streams[sid].events) if sid in streams else 0
        kind = {
            "none": None,
            "own": own,
            "wrong": ALL_KINDS[(ALL_KINDS.index(own) + 1) % len(ALL_KINDS)],
        }[part.kind_mode]
        expected = {"none": None, "right": head, "wrong": head + 1, "zero": 0}[part.seq_mode]
        events = list(part.events)
        ids: list[UUID | None] | None = None
        if any(s is not None for s in part.id_specs):
            ids = [self.event_id(s) for s in part.id_specs[: len(events)]]
        metadata = {"n": n} if part.with_metadata and kind in KINDS else None
        stored = [e for e in streams[sid].events if e.event_id] if sid in streams else []
        if part.retry and stored:  # a safe retry: returns the stored records, writes nothing
            again = stored[-max(1, len(part.events)) :]
            events = [e.event for e in again]
            ids = [e.event_id for e in again]
            expected = None if part.seq_mode == "none" else again[0].seq - 1
        if part.invalid == "id_count":
            ids = [uuid4() for _ in range(len(events) + 1)]
        elif part.invalid == "metadata_without_kind":
            kind, metadata = None, {"n": n}
        elif part.invalid == "bad_kind":
            kind = "Not A Kind"
        return AppendRequest(sid, events, expected, ids, kind=kind, metadata=metadata)  # type: ignore[arg-type]

    def event_id(self, spec: int | None) -> UUID | None:
        if spec is None:
            return None
        if spec < 0 or not self.used_ids:
            eid = uuid4()
        else:
            eid = self.used_ids[-1 - spec % len(self.used_ids)]
        self.used_ids.append(eid)
        return eid

    def label(
        self, error: type[Exception] | None, trial: Model, want: list[list[ModelEvent]]
    ) -> None:
        """What a call did, for ``pytest --hypothesis-show-statistics``."""
        event(f"append_many: {'ok' if error is None else error.__name__}")
        if error is not None:
            return
        if len(trial.created) > len(self.model.created):
            event("append_many: created a stream")
        if trial.position > self.model.position:
            event("append_many: wrote events")
        if any(m.position <= self.model.position for part in want for m in part):
            event("append_many: returned a stored record (idempotent)")

    @rule(drawn=st.lists(parts, min_size=1, max_size=3))
    def append_many(self, drawn: list[Part]) -> None:
        requests = [self.request(n, p) for n, p in enumerate(drawn)]
        before = self.store.read_log()
        trial = copy.deepcopy(self.model)
        expected: type[Exception] | None = None
        want: list[list[ModelEvent]] = []
        if any(p.invalid for p in drawn):
            expected = ValueError  # the plan refuses it before the transaction
        else:
            try:
                want = predict(trial, requests)
            except (
                ConcurrencyError,
                StreamNotFound,
                StreamKindError,
                RunNotFound,
                SessionNotFound,
            ) as exc:
                expected = type(exc)
        self.label(expected, trial, want)
        if expected is not None:
            with pytest.raises(expected) as info:
                self.store.append_many(requests)
            assert type(info.value) is expected, info.value
            # nothing of the call was written: no event, no position, no new stream
            assert self.store.read_log() == before
            assert self.store.last_position() == self.model.position
            for req in requests:
                if req.stream_id not in self.model.streams:
                    assert self.store.get_stream(req.stream_id) is None
            return
        got = self.store.append_many(requests)
        assert [
            [(r.run_id, r.seq, r.position, r.event, r.event_id) for r in part] for part in got
        ] == [
            [(req.stream_id, m.seq, m.position, m.event, m.event_id) for m in part]
            for req, part in zip(requests, want, strict=True)
        ]
        self.model = trial

    # -- invariants ------------------------------------------------------------------------
    @invariant()
    def every_stream_matches_the_model(self) -> None:
        for sid, m in self.model.streams.items():
            records = self.store.read_stream(sid)
            assert [r.seq for r in records] == list(range(1, len(m.events) + 1))
            assert [(r.seq, r.position, r.event, r.event_id) for r in records] == [
                (e.seq, e.position, e.event, e.event_id) for e in m.events
            ]
            if m.kind in KINDS:
                record = self.store.get_stream(sid)
                assert record is not None
                assert (record.kind, record.metadata) == (m.kind, m.metadata)

    @invariant()
    def the_log_is_the_models_in_commit_order(self) -> None:
        log: list[EventRecord] = self.store.read_log()
        assert [r.position for r in log] == list(range(1, self.model.position + 1))
        assert self.store.last_position() == self.model.position
        want = sorted(
            (e.position, sid, e.seq, e.event)
            for sid, m in self.model.streams.items()
            for e in m.events
        )
        assert [(r.position, r.run_id, r.seq, r.event) for r in log] == want

    @invariant()
    def listings_match_the_model(self) -> None:
        kinds = []
        for kind in KINDS:
            listed = [s.id for s in self.store.list_streams(kind, limit=1000)]
            assert listed == [s for s in self.model.created if self.model.streams[s].kind == kind]
            if listed:
                kinds.append(kind)
        assert self.store.list_stream_kinds() == kinds


class LmdbAppendManyMachine(AppendManyMachine):
    def make_store(self) -> RunStore:
        return RunStore.open(f"{self.dir}/store", durability="fast")

    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.store = self.make_store()


TestMemoryAppendMany = AppendManyMachine.TestCase
TestMemoryAppendMany.settings = settings(
    max_examples=80, stateful_step_count=40, deadline=None, database=None
)
TestLmdbAppendMany = LmdbAppendManyMachine.TestCase
TestLmdbAppendMany.settings = settings(
    max_examples=50, stateful_step_count=40, deadline=None, database=None
)
