"""Property tests: every built-in view rebuilt from the log equals the incrementally kept one.

Hypothesis generates random operation sequences (sessions, runs, single and batched appends,
messages, status updates, run and session deletions) and runs each on a fresh store, in memory
and on LMDB, next to a plain model. Afterwards the store must verify clean, every built-in
view's keyspace must be byte-identical after ``rebuild_projections()``, and the public queries
must agree with the model. A user projector whose version is bumped is rebuilt on open, and a
tampered user view is reported by ``verify()`` and repaired by a targeted rebuild.
"""

from __future__ import annotations

import shutil
import struct
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import ClassVar, TypeAlias
from uuid import UUID

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

import eventlog.engine.projectors
import eventlog.storage.kv
from eventlog import (
    AssistantMessage,
    EventRecord,
    ExecutionStatus,
    InvalidTransition,
    Message,
    ProjectionTx,
    Projector,
    RunStatus,
    RunStore,
    SessionNotFound,
    ToolMessage,
    UserMessage,
)
from eventlog.engine.projectors import ProjectionTxn
from eventlog.events import (
    Event,
    Failure,
    ModelStarted,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunStarted,
    RunStatusChanged,
    Success,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolExecutionFinished,
    ToolExecutionStarted,
    UsageRecorded,
)

BUILTIN_VIEWS = ("run_state", "status_index", "session_listing", "executions")
TERMINAL = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})
NON_TERMINAL = [s for s in RunStatus if s not in TERMINAL]
CALL_IDS = ["c1", "c2", "c3"]
TOOL_NAMES = ["search", "shell"]
BACKENDS = ["memory", "lmdb"]

# -- operations ----------------------------------------------------------------------------


@dataclass(frozen=True)
class NewSession:
    pass


@dataclass(frozen=True)
class NewRun:
    session: int  # index into the live sessions (modulo their number)


@dataclass(frozen=True)
class Append:
    run: int  # index into the live runs (modulo their number)
    events: tuple[Event, ...]
    batch: bool  # append_events (True) or append_event (False, exactly one event)


@dataclass(frozen=True)
class AppendMessage:
    session: int
    message: Message


@dataclass(frozen=True)
class SetStatus:
    run: int
    status: RunStatus


@dataclass(frozen=True)
class DeleteRun:
    run: int


@dataclass(frozen=True)
class DeleteSession:
    session: int


Op: TypeAlias = NewSession | NewRun | Append | AppendMessage | SetStatus | DeleteRun | DeleteSession

# -- strategies ----------------------------------------------------------------------------

small_text = st.text(max_size=6)
# msgpack stores 64-bit integers; bigger JSON ints are out of scope here.
small_ints = st.integers(min_value=-(2**31), max_value=2**31)
call_ids = st.sampled_from(CALL_IDS)
tool_names = st.sampled_from(TOOL_NAMES)
usages = st.builds(
    lambda i, o: TokenUsage(i, o, i + o),
    st.integers(min_value=0, max_value=500),
    st.integers(min_value=0, max_value=500),
)
tool_results: st.SearchStrategy[Success | Failure] = st.one_of(
    st.builds(Success, output=st.one_of(st.none(), small_ints, small_text)),
    st.builds(Failure, error=small_text),
)
# Non-status events come more often than terminal ones, so runs live for a while.
events: st.SearchStrategy[Event] = st.one_of(
    st.builds(RunStarted, session_id=st.uuids(), provider=st.just("p"), model=st.just("m")),
    st.builds(
        ModelStarted,
        provider=st.just("p"),
        model=st.just("m"),
        iteration=st.integers(min_value=0, max_value=9),
    ),
    st.builds(TextDelta, delta=small_text),
    st.builds(UsageRecorded, usage=usages),
    st.builds(ToolExecutionStarted, call_id=call_ids, tool_name=tool_names),
    st.builds(ToolExecutionStarted, call_id=call_ids, tool_name=tool_names),
    st.builds(
        ToolExecutionFinished,
        call_id=call_ids,
        tool_name=tool_names,
        result=tool_results,
        duration_ms=st.integers(min_value=0, max_value=10_000),
    ),
    st.builds(
        ToolExecutionFinished,
        call_id=call_ids,
        tool_name=tool_names,
        result=tool_results,
        duration_ms=st.integers(min_value=0, max_value=10_000),
    ),
    st.builds(RunStatusChanged, status=st.sampled_from(list(RunStatus))),
    st.builds(RunCompleted, finish_reason=st.just("stop"), iterations=st.just(1)),
    st.builds(RunFailed, error=small_text),
    st.builds(RunCancelled),
)
messages: st.SearchStrategy[Message] = st.one_of(
    st.builds(UserMessage, content=small_text),
    st.builds(
        AssistantMessage,
        content=small_text,
        tool_calls=st.lists(
            st.builds(
                ToolCall,
                id=call_ids,
                name=tool_names,
                arguments=st.dictionaries(small_text, small_ints, max_size=2),
            ),
            max_size=2,
        ),
    ),
    st.builds(ToolMessage, tool_call_id=call_ids, name=tool_names, content=small_text),
)
indexes = st.integers(min_value=0, max_value=1_000)
event_lists = st.lists(events, max_size=4)


def operations() -> st.SearchStrategy[list[Op]]:
    """Random operation sequences: appends dominate, deletions are rare.

    ``one_of`` picks one of its strategies; a kind with weight ``w`` gets ``w`` distinct
    strategy objects (repeating one object does not weight it). Appends come first, so a
    failing example shrinks towards them.
    """
    kinds: list[tuple[int, Callable[[], st.SearchStrategy[Op]]]] = [
        (7, lambda: st.builds(lambda r, e: Append(r, (e,), False), indexes, events)),
        (3, lambda: st.builds(lambda r, es: Append(r, tuple(es), True), indexes, event_lists)),
        (3, lambda: st.builds(NewRun, indexes)),
        (2, lambda: st.builds(SetStatus, indexes, st.sampled_from(list(RunStatus)))),
        (2, lambda: st.builds(AppendMessage, indexes, messages)),
        (1, lambda: st.just(NewSession())),
        (1, lambda: st.builds(DeleteRun, indexes)),
        (1, lambda: st.builds(DeleteSession, indexes)),
    ]
    op = st.one_of([make() for weight, make in kinds for _ in range(weight)])
    # Draw the length first: plain st.lists favours short lists, and short runs find little.
    return st.integers(min_value=1, max_value=80).flatmap(
        lambda n: st.lists(op, min_size=n, max_size=n)
    )


# -- the model -----------------------------------------------------------------------------


def model_status_after(status: RunStatus, event: Event) -> RunStatus:
    """The lifecycle rule, written independently of eventlog.model.state.status_after."""
    if isinstance(event, RunStatusChanged):
        return RunStatus(event.status)
    if isinstance(event, RunStarted):
        return RunStatus.SESSION_LOADED
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
class ModelExecution:
    position: int  # the log position of the execution's first event
    call_id: str
    tool_name: str
    status: ExecutionStatus = ExecutionStatus.PENDING
    duration_ms: int | None = None


@dataclass
class ModelRun:
    run_id: UUID
    session_id: UUID
    created_at: datetime
    status: RunStatus = RunStatus.PENDING
    usage: TokenUsage = field(default_factory=TokenUsage)
    executions: dict[str, ModelExecution] = field(default_factory=dict)

    def apply(self, event: Event, position: int) -> None:
        self.status = model_status_after(self.status, event)
        if isinstance(event, UsageRecorded):
            self.usage = self.usage + event.usage
        elif isinstance(event, ToolExecutionStarted | ToolExecutionFinished):
            execution = self.executions.get(event.call_id)
            if execution is None:
                execution = ModelExecution(position, event.call_id, event.tool_name)
                self.executions[event.call_id] = execution
            if isinstance(event, ToolExecutionFinished):
                failed = isinstance(event.result, Failure)
                execution.status = ExecutionStatus.FAILED if failed else ExecutionStatus.SUCCESS
                execution.duration_ms = event.duration_ms


@dataclass
class Model:
    sessions: dict[UUID, list[Message]] = field(default_factory=dict)  # live, insertion order
    runs: dict[UUID, ModelRun] = field(default_factory=dict)  # live, creation order
    deleted_sessions: set[UUID] = field(default_factory=set)
    deleted_runs: set[UUID] = field(default_factory=set)

    def session_runs(self, session_id: UUID) -> list[ModelRun]:
        return [r for r in self.runs.values() if r.session_id == session_id]

    def delete_run(self, run_id: UUID) -> None:
        del self.runs[run_id]
        self.deleted_runs.add(run_id)

    def delete_session(self, session_id: UUID) -> None:
        for run in self.session_runs(session_id):
            self.delete_run(run.run_id)
        del self.sessions[session_id]
        self.deleted_sessions.add(session_id)


def pick(ids: list[UUID], index: int) -> UUID | None:
    return ids[index % len(ids)] if ids else None


def would_violate(status: RunStatus, evs: tuple[Event, ...]) -> bool:
    """Whether appending ``evs`` in order moves a terminal run to another status."""
    for ev in evs:
        nxt = model_status_after(status, ev)
        if status in TERMINAL and nxt != status:
            return True
        status = nxt
    return False


def run_ops(store: RunStore, ops: list[Op]) -> Model:
    """Apply ``ops`` to the store and to a model; the store must raise exactly when expected.

    An operation that needs a session or a run when there is none creates one first, so every
    operation does something.
    """
    model = Model()

    def session_at(index: int) -> UUID:
        sid = pick(list(model.sessions), index)
        if sid is None:
            sid = store.create_session().id
            model.sessions[sid] = []
        return sid

    def new_run(session_index: int) -> UUID:
        sid = session_at(session_index)
        rec = store.create_run(sid, provider="p", model="m")
        assert rec.status == RunStatus.PENDING
        model.runs[rec.id] = ModelRun(rec.id, sid, rec.created_at)
        return rec.id

    def run_at(index: int) -> UUID:
        rid = pick(list(model.runs), index)
        return new_run(index) if rid is None else rid

    for op in ops:
        if isinstance(op, NewSession):
            model.sessions[store.create_session().id] = []
        elif isinstance(op, NewRun):
            new_run(op.session)
        elif isinstance(op, Append | SetStatus):
            rid = run_at(op.run)
            run = model.runs[rid]
            evs: tuple[Event, ...] = (
                (RunStatusChanged(op.status),) if isinstance(op, SetStatus) else op.events
            )
            expect_error = would_violate(run.status, evs)
            try:
                if isinstance(op, SetStatus):
                    returned = store.update_run_status(rid, op.status)
                    assert returned.status == op.status
                    positions = [store.last_position()]
                elif op.batch:
                    positions = [r.position for r in store.append_events(rid, list(evs))]
                else:
                    positions = [store.append_event(rid, evs[0]).position]
            except InvalidTransition:
                assert expect_error, f"unexpected InvalidTransition for {op!r} ({run.status})"
                continue
            assert not expect_error, f"{op!r} moved a {run.status} run out of its status"
            for ev, position in zip(evs, positions, strict=True):
                run.apply(ev, position)
        elif isinstance(op, AppendMessage):
            sid = session_at(op.session)
            store.append_message(sid, op.message)
            model.sessions[sid].append(op.message)
        elif isinstance(op, DeleteRun):
            rid = run_at(op.run)
            assert store.delete_run(rid)
            model.delete_run(rid)
        else:
            sid = session_at(op.session)
            assert store.delete_session(sid)
            model.delete_session(sid)
    return model


# -- checks --------------------------------------------------------------------------------


def snapshot_views(store: RunStore) -> dict[str, dict[bytes, bytes]]:
    """Every built-in view's keyspace, read in one snapshot."""

    def read(txn: eventlog.storage.kv.KVTxn) -> dict[str, dict[bytes, bytes]]:
        return {n: dict(eventlog.engine.projectors.reader(txn, n).scan()) for n in BUILTIN_VIEWS}

    return store.core.backend.read(read)


def check_against_model(store: RunStore, model: Model) -> None:
    """The public queries agree with the model."""
    live = model.runs
    for rid, run in live.items():
        state = store.get_run_state(rid)
        assert state is not None
        assert state.status == run.status, rid
        record = store.get_run(rid)
        assert record is not None
        assert record.status == run.status
    for rid in model.deleted_runs:
        assert store.get_run(rid) is None
        assert store.get_run_state(rid) is None

    everyone = store.list_runs_filtered(limit=100_000)
    assert {r.id for r in everyone} == set(live)
    assert len(everyone) == len(live)
    assert store.count_runs() == len(live)
    for status in RunStatus:
        want = {rid for rid, r in live.items() if r.status == status}
        page = store.list_runs_filtered(status=status, limit=100_000)
        assert {r.id for r in page} == want, status
        assert len(page) == len(want)
        assert all(r.status == status for r in page)
        assert store.count_runs(status) == len(want), status

    for sid, msgs in model.sessions.items():
        runs = model.session_runs(sid)
        assert store.count_runs(session_id=sid) == len(runs)
        for status in RunStatus:
            want = {r.run_id for r in runs if r.status == status}
            assert store.count_runs(status, sid) == len(want), (sid, status)
            page = store.list_runs_filtered(status=status, session_id=sid, limit=100_000)
            assert {r.id for r in page} == want, (sid, status)
        # Creation order: created_at never goes back, and a tie is ordered by run id bytes.
        in_order = sorted(runs, key=lambda r: (r.created_at, r.run_id.bytes))
        assert [r.id for r in store.list_runs(sid)] == [r.run_id for r in in_order]
        assert store.list_messages(sid) == msgs

        model_execs = sorted(
            ((e, r.run_id) for r in runs for e in r.executions.values()),
            key=lambda pair: pair[0].position,
        )
        got = store.list_executions(sid)
        assert [(e.call_id, e.tool_name, e.status, e.duration_ms, e.run_id) for e in got] == [
            (e.call_id, e.tool_name, e.status, e.duration_ms, rid) for e, rid in model_execs
        ]
        stats = store.session_stats(sid)
        assert stats.total_runs == len(runs)
        assert stats.tool_calls == len(model_execs)
        total = TokenUsage()
        for r in runs:
            total = total + r.usage
        assert stats.total_usage == total

    for sid in model.deleted_sessions:
        assert store.get_session(sid) is None
        with pytest.raises(SessionNotFound):
            store.list_runs(sid)
        assert store.count_runs(session_id=sid) == 0


@contextmanager
def open_store(backend: str, projectors: list[Projector] | None = None) -> Iterator[RunStore]:
    """A fresh store on ``backend``, closed (and its directory removed) afterwards."""
    extra = projectors or []
    if backend == "memory":
        with RunStore.in_memory(projectors=extra) as store:
            yield store
        return
    path = tempfile.mkdtemp(prefix="eventlog-props-")
    try:
        with RunStore.open(path, durability="fast", projectors=extra) as store:
            yield store
    finally:
        shutil.rmtree(path, ignore_errors=True)


def check_rebuild_is_identity(store: RunStore, model: Model) -> None:
    problems = store.verify()
    assert problems == [], problems
    check_against_model(store, model)
    before = snapshot_views(store)
    store.rebuild_projections()
    after = snapshot_views(store)
    for name in BUILTIN_VIEWS:
        assert after[name] == before[name], f"view {name} changed when rebuilt from the log"
    assert store.verify() == []
    check_against_model(store, model)


# -- the property --------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
# No explain phase: its line tracing makes shrinking a failure take minutes instead of seconds.
@settings(
    max_examples=40,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)
@given(ops=operations())
def test_rebuild_from_log_equals_incremental_views(backend: str, ops: list[Op]) -> None:
    with open_store(backend) as store:
        model = run_ops(store, ops)
        check_rebuild_is_identity(store, model)


# -- a user projector whose version is bumped ------------------------------------------------

_COUNT_TOTAL = struct.Struct(">QQ")
_MAX = struct.Struct(">Q")


def _finished(record: EventRecord) -> ToolExecutionFinished:
    event = record.event
    assert isinstance(event, ToolExecutionFinished)
    return event


class LatencyV1:
    """Per tool name: how many executions finished and their total duration."""

    name: ClassVar[str] = "tool_latency"
    version: ClassVar[int] = 1
    event_types: ClassVar[frozenset[str]] = frozenset({"ToolExecutionFinished"})

    def apply(self, tx: ProjectionTx, record: EventRecord) -> None:
        event = _finished(record)
        key = event.tool_name.encode()
        raw = tx.get(key)
        count, total = (0, 0) if raw is None else _COUNT_TOTAL.unpack(raw)
        tx.put(key, _COUNT_TOTAL.pack(count + 1, total + event.duration_ms))


class LatencyV2:
    """Version 2 of the same view: per tool name, the longest duration."""

    name: ClassVar[str] = "tool_latency"
    version: ClassVar[int] = 2
    event_types: ClassVar[frozenset[str]] = frozenset({"ToolExecutionFinished"})

    def apply(self, tx: ProjectionTx, record: EventRecord) -> None:
        event = _finished(record)
        key = event.tool_name.encode()
        raw = tx.get(key)
        longest = 0 if raw is None else _MAX.unpack(raw)[0]
        tx.put(key, _MAX.pack(max(longest, event.duration_ms)))


def expected_v1(durations: dict[str, list[int]]) -> dict[bytes, bytes]:
    return {t.encode(): _COUNT_TOTAL.pack(len(d), sum(d)) for t, d in durations.items() if d}


def expected_v2(durations: dict[str, list[int]]) -> dict[bytes, bytes]:
    return {t.encode(): _MAX.pack(max(d)) for t, d in durations.items() if d}


def finished(call: str, tool: str, duration: int, ok: bool = True) -> ToolExecutionFinished:
    result: Success | Failure = Success("out") if ok else Failure("boom")
    return ToolExecutionFinished(call, tool, result, duration)


def user_view(store: RunStore) -> dict[bytes, bytes]:
    view = store.projection("tool_latency")
    return dict(view.scan())


def test_version_bump_rebuilds_user_projector_on_open(tmp_path: Path) -> None:
    path = tmp_path / "store"
    kept: dict[str, list[int]] = {"search": [], "shell": [], "fetch": []}
    with RunStore.open(path, durability="fast", projectors=[LatencyV1()]) as store:
        keep = store.create_session()
        gone = store.create_session()
        a = store.create_run(keep.id, provider="p", model="m")
        b = store.create_run(keep.id, provider="p", model="m")
        doomed = store.create_run(gone.id, provider="p", model="m")
        store.append_events(
            a.id,
            [
                ToolExecutionStarted("c1", "search"),
                finished("c1", "search", 120),
                TextDelta("x"),
                finished("c2", "shell", 7, ok=False),
            ],
        )
        store.append_event(b.id, finished("c1", "search", 30))
        store.append_events(b.id, [finished("c2", "fetch", 45), RunCompleted("stop", 1)])
        store.append_event(b.id, finished("c3", "search", 500))  # allowed after completion
        kept["search"] += [120, 30, 500]
        kept["shell"] += [7]
        kept["fetch"] += [45]
        # Events of a deleted session's run leave the log: neither version may count them.
        store.append_events(doomed.id, [finished("c9", "search", 9_999), finished("c8", "x", 1)])
        everything = {k: list(v) for k, v in kept.items()}
        everything["search"].append(9_999)
        everything["x"] = [1]
        assert user_view(store) == expected_v1(everything)
        assert store.delete_session(gone.id)
        # v1 is incremental: deleting a run does not retract what it already counted.
        assert user_view(store) == expected_v1(everything)
        status = {s.name: s for s in store.projector_status()}
        assert (status["tool_latency"].version, status["tool_latency"].ready) == (1, True)
        last = store.last_position()

    with RunStore.open(path, durability="fast", projectors=[LatencyV2()]) as store:
        assert store.last_position() == last
        status = {s.name: s for s in store.projector_status()}
        latency = status["tool_latency"]
        assert (latency.version, latency.ready, latency.checkpoint) == (2, True, last)
        assert all(s.ready for s in status.values())
        # Rebuilt on open from the whole (current) log: what v2 computes, not v1's bytes.
        assert user_view(store) == expected_v2(kept)
        # ... and equal to folding v2 over the log by hand.
        by_tool: dict[str, list[int]] = {}
        for record in store.read_log():
            if isinstance(record.event, ToolExecutionFinished):
                by_tool.setdefault(record.event.tool_name, []).append(record.event.duration_ms)
        assert user_view(store) == expected_v2(by_tool)
        assert store.verify() == []
        # From now on v2 is applied inline.
        store.append_event(a.id, finished("c4", "shell", 64))
        kept["shell"].append(64)
        assert user_view(store) == expected_v2(kept)
        assert store.verify() == []

    # Reopening with the same version keeps the view as it is.
    with RunStore.open(path, durability="fast", projectors=[LatencyV2()]) as store:
        assert user_view(store) == expected_v2(kept)
        assert store.verify() == []


def tamper(store: RunStore, change: Callable[[ProjectionTxn], None]) -> None:
    """Write into the user projector's keyspace behind the store's back."""
    store.core.backend.write(lambda txn: change(ProjectionTxn(txn, "tool_latency")))


@pytest.mark.parametrize("backend", BACKENDS)
def test_verify_reports_tampered_user_view_and_targeted_rebuild_fixes_it(backend: str) -> None:
    durations: dict[str, list[int]] = {}
    with open_store(backend, [LatencyV1()]) as store:
        session = store.create_session()
        runs = [store.create_run(session.id, provider="p", model="m").id for _ in range(3)]
        # Enough events (2,400) for the rebuild to report progress along the way.
        for i in range(120):
            batch: list[Event] = []
            for j in range(20):
                tool = TOOL_NAMES[(i + j) % 2]
                batch.append(finished(f"c{j}", tool, i * 20 + j, ok=j % 3 != 0))
                durations.setdefault(tool, []).append(i * 20 + j)
            store.append_events(runs[i % 3], batch)
        assert store.verify() == []
        good = user_view(store)
        assert good == expected_v1(durations)
        builtins_before = snapshot_views(store)

        def corrupt(tx: ProjectionTxn) -> None:
            tx.put(b"search", _COUNT_TOTAL.pack(1, 2))  # a wrong value
            tx.put(b"phantom", b"\x00")  # a key no replay produces
            tx.delete(b"shell")  # a key the replay produces, gone

        tamper(store, corrupt)
        problems = store.verify()
        assert {p.kind for p in problems} == {"view_mismatch"}
        assert {p.projector for p in problems} == {"tool_latency"}
        details = {p.where.removeprefix("projector tool_latency key "): p.detail for p in problems}
        assert set(details) == {"b'phantom'", "b'search'", "b'shell'"}
        assert "does not produce" in details["b'phantom'"]  # an extra key
        assert "differs" in details["b'search'"]  # a wrong value
        assert "lacks" in details["b'shell'"]  # a missing key

        calls: list[tuple[str, int, int]] = []
        store.rebuild_projections(
            ["tool_latency"], progress=lambda n, pos, last: calls.append((n, pos, last))
        )
        last = store.last_position()
        assert calls[-1] == ("tool_latency", last, last)
        assert len(calls) >= 2  # at least one progress report before the final one
        assert {c[0] for c in calls} == {"tool_latency"}
        assert all(c[2] == last for c in calls)
        assert [c[1] for c in calls] == sorted(c[1] for c in calls)
        assert store.verify() == []
        assert user_view(store) == good
        assert snapshot_views(store) == builtins_before  # the built-ins were not touched
