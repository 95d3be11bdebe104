"""EventLogStepStore: pydantic-ai-harness's StepStore protocol over an eventlog store.

The protocol's behaviour on memory, LMDB, PostgreSQL and the async store (lineage listing,
idempotent appends and saves, snapshot states and ``max_snapshots_per_run``, the tool-effect
ledger), surviving a reopen and a rebuild of the view, bad input refused with a typed error
and nothing written; and a hypothesis state machine that sends random protocol calls to this
store and to the harness's own ``InMemoryStepStore`` (the reference) and compares every answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from pg_support import url_for
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai_harness.step_persistence import (
    ContinuableSnapshot,
    InMemoryStepStore,
    RunRecord,
    StepEvent,
    StepStore,
    ToolEffectRecord,
)
from pydantic_ai_harness.step_persistence.recovery import inspect_recovery

from eventlog import AsyncRunStore, RunStore
from eventlog.errors import AlreadyExistsError, ConfigError, EventLogError, InvalidRecordError
from eventlog.integrations.pydantic_ai import RUN_KIND, EventLogStepStore
from projections.pydantic_ai_steps import MAX_DEPTH, SnapshotRecorded

T = TypeVar("T")
BAD: Callable[[object], Any] = lambda value: value  # a value of the wrong type, on purpose  # noqa: E731
T0 = datetime(2026, 1, 1, tzinfo=UTC)
StoreFactory = Callable[[Path], RunStore | AsyncRunStore]


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def history(n: int) -> list[ModelMessage]:
    """A provider-valid history of ``n`` tool rounds."""
    ts = T0
    out: list[ModelMessage] = [ModelRequest(parts=[UserPromptPart("go", timestamp=ts)])]
    for i in range(n):
        call = ToolCallPart("lookup", {"i": i}, tool_call_id=f"c{i}")
        out.append(ModelResponse(parts=[call], timestamp=ts))
        out.append(
            ModelRequest(
                parts=[ToolReturnPart("lookup", f"r{i}", tool_call_id=f"c{i}", timestamp=ts)]
            )
        )
    out.append(ModelResponse(parts=[TextPart("done")], timestamp=ts))
    return out


def snap(
    run_id: str, step: int, state: str = "complete", key: str | None = None
) -> ContinuableSnapshot:
    return ContinuableSnapshot(
        run_id=run_id,
        step_index=step,
        messages=history(step),
        state=state,  # type: ignore[arg-type]
        timestamp=T0 + timedelta(seconds=step),
        idempotency_key=key,
    )


@pytest.fixture(params=["memory", "lmdb", "async-lmdb", "postgresql"])
def make_store(request: pytest.FixtureRequest) -> Iterator[StoreFactory]:
    opened: list[RunStore] = []
    if "postgresql" in request.param:
        request.getfixturevalue("pg_schemas")

    def make(path: Path) -> RunStore | AsyncRunStore:
        if request.param == "memory":
            store = RunStore.in_memory()
        elif request.param == "postgresql":
            store = RunStore.open(url_for(path))
        else:
            store = RunStore.open(path)
        opened.append(store)
        return AsyncRunStore(store) if request.param == "async-lmdb" else store

    yield make
    for store in opened:
        store.close()


def test_protocol(tmp_path: Path, make_store: StoreFactory) -> None:
    store = make_store(tmp_path / "s")
    steps = EventLogStepStore(store)
    assert isinstance(steps, StepStore)

    async def scenario() -> None:
        for i, (rid, conv, parent) in enumerate(
            [("b", "c1", None), ("a", "c1", "b"), ("c", "c2", "b"), ("d", None, None)]
        ):
            started = T0 - timedelta(seconds=i) if rid != "d" else T0 + timedelta(days=1)
            await steps.register_run(
                RunRecord(
                    run_id=rid,
                    conversation_id=conv,
                    parent_run_id=parent,
                    metadata={"k": "v"},
                    started_at=started,
                    registration_id=f"reg-{rid}",
                )
            )
        assert [r.run_id for r in await steps.list_runs()] == ["c", "a", "b", "d"]
        assert [r.run_id for r in await steps.list_runs(conversation_id="c1")] == ["a", "b"]
        assert [r.run_id for r in await steps.list_runs(parent_run_id="b")] == ["c", "a"]
        both = await steps.list_runs(parent_run_id="b", conversation_id="c2")
        assert [r.run_id for r in both] == ["c"]
        assert await steps.list_runs(conversation_id="none") == []
        got = await steps.get_run(run_id="a")
        assert got is not None
        assert (got.parent_run_id, got.metadata, got.registration_id) == ("b", {"k": "v"}, "reg-a")
        assert await steps.get_run(run_id="zz") is None
        with pytest.raises(AlreadyExistsError, match="'a' is already registered"):
            await steps.register_run(RunRecord(run_id="a", conversation_id="other"))
        assert [r.run_id for r in await steps.list_runs(conversation_id="other")] == []

        # events: in order, a retried key dropped
        for i, kind in enumerate(["run_started", "tool_call_started", "tool_call_started"]):
            await steps.append_event(
                StepEvent(run_id="a", kind=kind, step_index=1, idempotency_key=f"k{min(i, 1)}")  # type: ignore[arg-type]
            )
        await steps.append_event(StepEvent(run_id="a", kind="run_completed", step_index=2))
        assert [e.kind for e in await steps.list_events(run_id="a")] == [
            "run_started",
            "tool_call_started",
            "run_completed",
        ]
        assert await steps.list_events(run_id="zz") == []

        # snapshots: latest complete by default, the interrupted one on request
        assert await steps.latest_snapshot(run_id="a") is None
        await steps.save_snapshot(snap("a", 1, key="0:1:complete"))
        await steps.save_snapshot(snap("a", 2, "interrupted", key="1:2:interrupted"))
        await steps.save_snapshot(snap("a", 3, key="0:3:complete"))  # an older N: a replay
        latest = await steps.latest_snapshot(run_id="a")
        assert latest is not None
        assert (latest.step_index, latest.messages) == (1, history(1))
        newest = await steps.latest_snapshot(run_id="a", include_interrupted=True)
        assert newest is not None
        assert (newest.step_index, newest.state) == (2, "interrupted")

        # the ledger: the latest record per call; started ones are unresolved
        for call, status in [("t2", "started"), ("t1", "started"), ("t2", "completed")]:
            await steps.record_tool_effect(
                ToolEffectRecord(tool_call_id=call, tool_name="pay", run_id="a", status=status)  # type: ignore[arg-type]
            )
        effect = await steps.get_tool_effect(run_id="a", tool_call_id="t2")
        assert effect is not None
        assert effect.status == "completed"
        assert [e.tool_call_id for e in await steps.list_unresolved_tool_effects(run_id="a")] == [
            "t1"
        ]
        inspection = await inspect_recovery(store=steps, run_id="a")
        assert inspection.settled == latest
        assert [e.tool_call_id for e in inspection.unresolved] == ["t1"]

    run(scenario())
    sync = store.sync if isinstance(store, AsyncRunStore) else store
    assert [s.kind for s in sync.list_streams(RUN_KIND)] == [RUN_KIND] * 4


def test_max_snapshots_keeps_newest_and_newest_complete(
    tmp_path: Path, make_store: StoreFactory
) -> None:
    steps = EventLogStepStore(make_store(tmp_path / "s"), max_snapshots_per_run=2)

    async def scenario() -> None:
        await steps.save_snapshot(snap("r", 1))
        for step in range(2, 6):
            await steps.save_snapshot(snap("r", step, "interrupted"))
        kept = await steps.list_snapshots(run_id="r", include_interrupted=True)
        assert [s.step_index for s in kept] == [1, 4, 5]
        latest = await steps.latest_snapshot(run_id="r")
        assert latest is not None
        assert latest.step_index == 1
        await steps.save_snapshot(snap("r", 6))
        kept = await steps.list_snapshots(run_id="r", include_interrupted=True)
        assert [s.step_index for s in kept] == [5, 6]

    run(scenario())


def test_snapshots_are_stored_as_deltas() -> None:
    with RunStore.in_memory() as store:
        steps = EventLogStepStore(store)
        for step in range(40):
            run(
                steps.save_snapshot(snap("r", step, "interrupted" if step % 7 == 3 else "complete"))
            )
            latest = run(steps.latest_snapshot(run_id="r", include_interrupted=True))
            assert latest is not None
            assert latest.messages == history(step)
        kept = run(steps.list_snapshots(run_id="r", include_interrupted=True))
        assert [s.messages for s in kept] == [history(step) for step in range(40)]
        sid = store.list_streams(RUN_KIND)[0].id
        events = [r.event for r in store.read_stream(sid)]
        assert isinstance(events[0], SnapshotRecorded)
        whole = [
            i for i, e in enumerate(events) if isinstance(e, SnapshotRecorded) and e.base is None
        ]
        assert whole == [0, MAX_DEPTH + 1, 2 * MAX_DEPTH + 2]  # a whole one after MAX_DEPTH deltas
        stored = sum(len(e.messages) for e in events if isinstance(e, SnapshotRecorded))
        assert stored < sum(len(history(step)) for step in range(40)) / 5
        store.rebuild_projections(["pydantic_ai"])
        assert run(steps.list_snapshots(run_id="r", include_interrupted=True)) == kept
        assert store.verify() == []


def test_survives_reopen_and_rebuild(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with RunStore.open(path) as store:
        steps = EventLogStepStore(store, max_snapshots_per_run=1)
        run(steps.register_run(RunRecord(run_id="r", conversation_id="c", started_at=T0)))
        run(steps.save_snapshot(snap("r", 1)))
        run(steps.save_snapshot(snap("r", 2, key="0:2:complete")))
        run(
            steps.record_tool_effect(
                ToolEffectRecord(tool_call_id="t", tool_name="x", run_id="r", status="started")
            )
        )
    with RunStore.open(path) as store:
        store.rebuild_projections(["pydantic_ai"])
        steps = EventLogStepStore(store)
        assert [r.run_id for r in run(steps.list_runs(conversation_id="c"))] == ["r"]
        kept = run(steps.list_snapshots(run_id="r", include_interrupted=True))
        assert [s.step_index for s in kept] == [2]
        run(steps.save_snapshot(snap("r", 3, key="0:2:complete")))  # the key is remembered
        latest = run(steps.latest_snapshot(run_id="r"))
        assert latest is not None
        assert latest.step_index == 2
        assert [e.tool_call_id for e in run(steps.list_unresolved_tool_effects(run_id="r"))] == [
            "t"
        ]
        assert store.verify() == []
        # deleting the run's stream clears its views
        sid = store.list_streams(RUN_KIND)[0].id
        assert store.delete_stream(sid)
        assert run(steps.list_runs()) == []
        assert run(steps.latest_snapshot(run_id="r", include_interrupted=True)) is None
        assert run(steps.get_tool_effect(run_id="r", tool_call_id="t")) is None


def test_concurrent_retries_store_once(tmp_path: Path) -> None:
    with RunStore.open(tmp_path / "s") as store:
        steps = EventLogStepStore(AsyncRunStore(store))

        async def scenario() -> list[BaseException | None]:
            event = StepEvent(run_id="r", kind="run_started", step_index=0, idempotency_key="0:0")
            await asyncio.gather(*(steps.append_event(event) for _ in range(20)))
            saves = (steps.save_snapshot(snap("r", 1, key="0:1:complete")) for _ in range(20))
            await asyncio.gather(*saves)
            record = RunRecord(run_id="r")
            registered = await asyncio.gather(
                *(steps.register_run(record) for _ in range(10)), return_exceptions=True
            )
            return list(registered)

        outcomes = run(scenario())
        assert [type(o) for o in outcomes].count(AlreadyExistsError) == 9
        assert len(run(steps.list_events(run_id="r"))) == 1
        assert len(run(steps.list_snapshots(run_id="r"))) == 1


def test_export_import_carries_the_runs() -> None:
    with RunStore.in_memory() as source, RunStore.in_memory() as target:
        steps = EventLogStepStore(source, max_snapshots_per_run=1)
        run(steps.register_run(RunRecord(run_id="r", parent_run_id="p", started_at=T0)))
        run(steps.save_snapshot(snap("r", 1)))
        run(steps.save_snapshot(snap("r", 2, "interrupted")))
        effect = ToolEffectRecord(tool_call_id="t", tool_name="x", run_id="r", status="started")
        run(steps.record_tool_effect(effect))
        target.import_jsonl(list(source.export_jsonl()))
        copy = EventLogStepStore(target)
        for read in (answers("r"), lambda s: s.list_runs(parent_run_id="p")):
            assert run(read(copy)) == run(read(steps))
        assert target.verify() == []


@pytest.mark.parametrize(
    ("call", "what"),
    [
        (lambda s: s.register_run(RunRecord(run_id=BAD(7))), "RunRecord.run_id"),
        (
            lambda s: s.register_run(RunRecord(run_id="r", metadata=BAD({"a": 1}))),
            "RunRecord.metadata",
        ),
        (
            lambda s: s.append_event(StepEvent(run_id="r", kind=BAD("nope"), step_index=0)),
            "StepEvent.kind",
        ),
        (
            lambda s: s.append_event(StepEvent(run_id="r", kind="run_started", step_index=2**64)),
            "StepEvent.step_index",
        ),
        (
            lambda s: s.save_snapshot(
                ContinuableSnapshot(run_id="r", step_index=0, messages=BAD([object()]))
            ),
            "ContinuableSnapshot.messages",
        ),
        (
            lambda s: s.save_snapshot(
                ContinuableSnapshot(run_id="r", step_index=0, messages=[], state=BAD("x"))
            ),
            "ContinuableSnapshot.state",
        ),
        (
            lambda s: s.record_tool_effect(
                ToolEffectRecord(tool_call_id="t", tool_name="x", run_id="r", status=BAD("done"))
            ),
            "ToolEffectRecord.status",
        ),
        (lambda s: s.record_tool_effect(BAD({"run_id": "r"})), "record_tool_effect()"),
    ],
)
def test_bad_input_is_typed_and_writes_nothing(
    call: Callable[[EventLogStepStore], Coroutine[Any, Any, None]], what: str
) -> None:
    with RunStore.in_memory() as store:
        with pytest.raises(
            InvalidRecordError, match=f"^{what.replace('(', '[(]').replace(')', '[)]')}"
        ):
            run(call(EventLogStepStore(store)))
        assert store.last_position() == 0


def test_bad_config_and_store() -> None:
    with RunStore.in_memory() as store:
        for bad in (0, 1.5, True):
            with pytest.raises(ConfigError):
                EventLogStepStore(store, max_snapshots_per_run=bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="RunStore or AsyncRunStore"):
        EventLogStepStore("path")  # type: ignore[arg-type]
    assert issubclass(InvalidRecordError, EventLogError)


# -- the harness's in-memory store is the reference -------------------------------------------

RUN_IDS = st.sampled_from(["r0", "r1"])
OPT = st.none() | st.sampled_from(["x", "y"])
KEYS = st.sampled_from(
    [None, "0:1:complete", "1:1:complete", "1:2:interrupted", "2:0:complete", "k", "k2"]
)
TIMES = st.integers(0, 3).map(lambda s: T0 + timedelta(seconds=s))


def answers(rid: str) -> Callable[[Any], Coroutine[Any, Any, list[object]]]:
    """Every read of the protocol (and list_snapshots) about run ``rid``."""

    async def read(s: Any) -> list[object]:
        return [
            await s.get_run(run_id=rid),
            await s.list_events(run_id=rid),
            await s.latest_snapshot(run_id=rid),
            await s.latest_snapshot(run_id=rid, include_interrupted=True),
            await s.list_snapshots(run_id=rid, include_interrupted=True),
            await s.list_unresolved_tool_effects(run_id=rid),
            await s.get_tool_effect(run_id=rid, tool_call_id="t1"),
        ]

    return read


class Compare(RuleBasedStateMachine):
    keep: int | None = None

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.store = RunStore.in_memory()
        self.ours = EventLogStepStore(self.store, max_snapshots_per_run=self.keep)
        self.ref = InMemoryStepStore(max_snapshots_per_run=self.keep)
        self.registered: set[str] = set()

    def both(self, call: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
        got = self.loop.run_until_complete(call(self.ours))
        want = self.loop.run_until_complete(call(self.ref))
        assert got == want
        return got

    @rule(rid=st.sampled_from([f"run{i}" for i in range(6)]), conv=OPT, parent=OPT, when=TIMES)
    def register(self, rid: str, conv: str | None, parent: str | None, when: datetime) -> None:
        record = RunRecord(run_id=rid, conversation_id=conv, parent_run_id=parent, started_at=when)
        if rid in self.registered:  # single-shot, as the harness's persistent stores
            with pytest.raises(AlreadyExistsError):
                self.loop.run_until_complete(self.ours.register_run(record))
            return
        self.registered.add(rid)
        self.both(lambda s: s.register_run(record))

    @rule(rid=RUN_IDS, step=st.integers(0, 3), key=KEYS, tool=OPT)
    def append(self, rid: str, step: int, key: str | None, tool: str | None) -> None:
        event = StepEvent(
            run_id=rid,
            kind="tool_call_started",
            step_index=step,
            idempotency_key=key,
            tool_call_id=tool,
            timestamp=T0,
        )
        self.both(lambda s: s.append_event(event))

    @rule(rid=RUN_IDS, step=st.integers(0, 3), key=KEYS, interrupted=st.booleans())
    def save(self, rid: str, step: int, key: str | None, interrupted: bool) -> None:
        snapshot = snap(rid, step, "interrupted" if interrupted else "complete", key)
        self.both(lambda s: s.save_snapshot(snapshot))

    @rule(
        rid=RUN_IDS,
        call=st.sampled_from(["t0", "t1", "t2"]),
        status=st.sampled_from(["started", "completed", "failed"]),
        summary=OPT,
    )
    def effect(self, rid: str, call: str, status: str, summary: str | None) -> None:
        record = ToolEffectRecord(
            tool_call_id=call,
            tool_name="pay",
            run_id=rid,
            status=BAD(status),
            started_at=T0,
            effect_summary=summary,
        )
        self.both(lambda s: s.record_tool_effect(record))

    @precondition(lambda self: bool(self.registered))
    @rule(conv=OPT, parent=OPT)
    def listing(self, conv: str | None, parent: str | None) -> None:
        self.both(lambda s: s.list_runs(conversation_id=conv, parent_run_id=parent))

    @invariant()
    def same_answers(self) -> None:
        for rid in ["r0", "r1", *sorted(self.registered)]:
            self.both(answers(rid))
        self.both(lambda s: s.list_runs())

    def teardown(self) -> None:
        self.store.close()
        self.loop.close()


class CompareBounded(Compare):
    keep = 2


_settings = settings(
    max_examples=20,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestSameAnswersAsInMemory = Compare.TestCase
TestSameAnswersAsInMemory.settings = _settings
TestSameAnswersBounded = CompareBounded.TestCase
TestSameAnswersBounded.settings = _settings
