"""Group commit: concurrent writers share transactions, and each keeps its own semantics."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from uuid import UUID, uuid4

import pytest
from pg_support import url_for

from eventlog import (
    AppendRequest,
    AsyncRunStore,
    ConcurrencyError,
    EventRecord,
    InvalidTransition,
    ProjectionError,
    RunNotFound,
    RunStore,
)
from eventlog.engine.protocols import ProjectionTx
from eventlog.events import ModelStarted, RunCompleted, TextDelta, ToolCallDelta
from eventlog.storage.kv import KVTxn


class _Picky:
    """A user projector that refuses ToolCallDelta("poison", ...): a per-request failure."""

    name: ClassVar[str] = "picky"
    version: ClassVar[int] = 1
    event_types: ClassVar[frozenset[str]] = frozenset({"ToolCallDelta"})

    def apply(self, tx: ProjectionTx, record: EventRecord) -> None:
        event = record.event
        assert isinstance(event, ToolCallDelta)
        if event.call_id == "poison":
            raise ValueError("poisoned delta")
        tx.put(record.run_id.bytes + record.seq.to_bytes(8, "big"), b"")


def _wait_until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``cond`` until it holds (AssertionError after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()  # never set: wait() is the poll interval
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        tick.wait(0.0005)


@pytest.fixture(params=["lmdb", "memory", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunStore]:
    projectors = [_Picky()]
    if request.param == "lmdb":
        s = RunStore.open(tmp_path / "s", projectors=projectors)
    elif request.param == "postgres":
        request.getfixturevalue("pg_schemas")
        s = RunStore.open(url_for(tmp_path / "s"), projectors=projectors)
    else:
        s = RunStore.in_memory(projectors=projectors)
    yield s
    s.close()


def _hold_the_lead(store: RunStore, until: Callable[[], bool]) -> threading.Thread:
    """Start a writer whose transaction waits until ``until()``: the others queue behind it."""

    def slow(txn: KVTxn) -> None:
        _wait_until(until)

    t = threading.Thread(target=store.core.committer.submit, args=(slow,))
    t.start()
    _wait_until(lambda: store.core.committer.busy)
    return t


def test_a_failing_request_fails_alone_in_its_group(store: RunStore) -> None:
    sid = store.ensure_session()
    run = store.create_run(sid, provider="p", model="m")
    done = store.create_run(sid, provider="p", model="m")
    store.append_event(done.id, RunCompleted("stop", 1))
    outcomes: dict[str, object] = {}

    def call(name: str, fn: Callable[[], object]) -> None:
        try:
            outcomes[name] = fn()
        except Exception as exc:
            outcomes[name] = exc

    calls: dict[str, Callable[[], object]] = {
        "ok1": lambda: store.append_event(run.id, TextDelta("a")),
        "stale": lambda: store.append_event(run.id, TextDelta("b"), expected_seq=99),
        "terminal": lambda: store.append_event(done.id, ModelStarted("p", "m", 2)),
        "unknown": lambda: store.append_event(uuid4(), TextDelta("x")),
        "poison": lambda: store.append_event(run.id, ToolCallDelta("poison", "{")),
        "ok2": lambda: store.append_events(run.id, [TextDelta("c"), TextDelta("d")]),
    }
    groups_before = store.core.committer.groups
    holder = _hold_the_lead(store, lambda: store.core.committer.queued >= len(calls))
    threads = []
    for name, fn in calls.items():  # queued one after the other: arrival order is known
        queued = store.core.committer.queued
        t = threading.Thread(target=call, args=(name, fn))
        t.start()
        threads.append(t)
        # queued (or the holder saw the last one arrive and the group already committed)
        _wait_until(
            lambda q=queued: store.core.committer.queued > q or not holder.is_alive()  # type: ignore[misc]
        )
    holder.join(timeout=30)
    for t in threads:
        t.join(timeout=30)
    # the six requests were one group (plus the holder's own), committed once
    assert store.core.committer.groups == groups_before + 2
    assert isinstance(outcomes["stale"], ConcurrencyError)
    assert isinstance(outcomes["terminal"], InvalidTransition)
    assert isinstance(outcomes["unknown"], RunNotFound)
    assert isinstance(outcomes["poison"], ProjectionError)
    ok1, ok2 = outcomes["ok1"], outcomes["ok2"]
    assert isinstance(ok1, EventRecord)
    assert isinstance(ok2, list)
    assert (ok1.seq, [r.seq for r in ok2]) == (1, [2, 3])
    assert [e.event.delta for e in store.list_events(run.id)] == ["a", "c", "d"]  # type: ignore[attr-defined]
    assert [e.seq for e in store.list_events(done.id)] == [1]
    assert store.verify() == []


def test_a_lonely_writer_commits_alone_at_once(store: RunStore) -> None:
    run = store.create_run(store.ensure_session(), provider="p", model="m")
    before = store.core.committer.groups
    for i in range(20):
        store.append_event(run.id, TextDelta(str(i)))
    assert store.core.committer.groups - before == 20  # nobody to wait for: no batching, no delay


def test_the_byte_cap_splits_a_group_and_keeps_the_order(tmp_path: Path) -> None:
    store = RunStore.open(tmp_path / "s", group_max_bytes=4096)
    try:
        run = store.create_run(store.ensure_session(), provider="p", model="m")
        big = "x" * 3000
        groups = store.core.committer.groups
        holder = _hold_the_lead(store, lambda: store.core.committer.queued >= 6)
        results: list[EventRecord] = []
        lock = threading.Lock()

        def one(i: int) -> None:
            record = store.append_event(run.id, TextDelta(f"{i}:{big}"))
            with lock:
                results.append(record)

        threads = []
        for i in range(6):
            queued = store.core.committer.queued
            t = threading.Thread(target=one, args=(i,))
            t.start()
            threads.append(t)
            # queued (or the holder saw the last one arrive and the group already committed)
        _wait_until(
            lambda q=queued: store.core.committer.queued > q or not holder.is_alive()  # type: ignore[misc]
        )
        holder.join(timeout=30)
        for t in threads:
            t.join(timeout=30)
        # each ~3 KB append passes the 4 KiB cap after two requests: at least 3 groups
        assert store.core.committer.groups - groups >= 1 + 3
        texts = [e.event.delta.split(":")[0] for e in store.list_events(run.id)]  # type: ignore[attr-defined]
        assert texts == [str(i) for i in range(6)]  # arrival order, across the groups
    finally:
        store.close()


@dataclass
class _Model:
    """What a serial application of the successful requests gives: each run's events."""

    runs: dict[UUID, list[str]] = field(default_factory=dict)


def _random_work(
    store: RunStore, runs: list[UUID], done: UUID, worker: int, n: int
) -> list[tuple[str, Any, Any]]:
    rng = random.Random(worker)
    out: list[tuple[str, Any, Any]] = []
    for i in range(n):
        text = f"w{worker}-{i}"
        kind = rng.choice(["plain", "expect", "dup", "terminal", "poison", "batch"])
        run = rng.choice(runs)
        try:
            if kind == "plain":
                result: Any = store.append_event(run, TextDelta(text))
            elif kind == "expect":  # often stale: another writer got there first
                head = store.get_run_state(run)
                assert head is not None
                result = store.append_event(run, TextDelta(text), expected_seq=head.last_seq)
            elif kind == "dup":  # the same event id twice: the second returns the first
                eid = uuid4()
                first = store.append_event(run, TextDelta(text), event_id=eid)
                again = store.append_event(run, TextDelta(text + "-again"), event_id=eid)
                assert again == first
                result = first
            elif kind == "terminal":
                result = store.append_event(done, ModelStarted("p", text, 2))
            elif kind == "poison":
                result = store.append_event(run, ToolCallDelta("poison", text))
            else:
                result = store.append_events(run, [TextDelta(text + "a"), TextDelta(text + "b")])
            out.append((kind, text, result))
        except Exception as exc:
            out.append((kind, text, exc))
    return out


def test_many_writers_each_get_their_own_result_and_the_log_is_serial(
    store: RunStore,
) -> None:
    sid = store.ensure_session()
    runs = [store.create_run(sid, provider="p", model="m").id for _ in range(4)]
    done = store.create_run(sid, provider="p", model="m").id
    store.append_event(done, RunCompleted("stop", 1))
    results: dict[int, list[tuple[str, Any, Any]]] = {}
    groups, requests = store.core.committer.groups, store.core.committer.requests

    def worker(w: int) -> None:
        results[w] = _random_work(store, runs, done, w, 40)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    # every caller got exactly its own outcome
    written: list[EventRecord] = []
    for outcomes in results.values():
        for kind, text, result in outcomes:
            if kind == "terminal":
                assert isinstance(result, InvalidTransition)
            elif kind == "poison":
                assert isinstance(result, ProjectionError)
            elif kind == "expect" and isinstance(result, Exception):
                assert isinstance(result, ConcurrencyError)
            else:
                records = result if isinstance(result, list) else [result]
                assert all(isinstance(r, EventRecord) for r in records), (kind, result)
                assert [r.event.delta for r in records] == (  # its own events, nobody else's
                    [text + "a", text + "b"] if kind == "batch" else [text]
                )
                written.extend(records)
    # the log is exactly the successful requests, applied one after the other
    log = [e for e in store.read_log() if e.run_id in runs]
    assert sorted((r.position, r.run_id, r.seq) for r in written) == [
        (e.position, e.run_id, e.seq) for e in log
    ]
    model = _Model()
    for r in sorted(written, key=lambda r: r.position):
        model.runs.setdefault(r.run_id, []).append(r.event.delta)  # type: ignore[attr-defined]
    for run in runs:
        stored = store.list_events(run)
        assert [e.seq for e in stored] == list(range(1, len(stored) + 1))
        assert [e.event.delta for e in stored] == model.runs.get(run, [])  # type: ignore[attr-defined]
    positions = [e.position for e in store.read_log()]
    assert positions == list(range(positions[0], positions[0] + len(positions)))
    assert store.verify() == []
    if store.path is not None:  # durable LMDB: while one group fsyncs, the others queue up
        assert store.core.committer.requests - requests > store.core.committer.groups - groups


def test_async_writers_share_commits_and_keep_their_semantics(tmp_path: Path) -> None:
    async def main() -> None:
        async with await AsyncRunStore.open(tmp_path / "s") as store:
            sid = await store.ensure_session()
            runs = [(await store.create_run(sid, provider="p", model="m")).id for _ in range(8)]
            committer = store.sync.core.committer
            groups = committer.groups

            async def writer(run: UUID) -> list[int]:
                seqs = []
                for i in range(25):
                    seqs.append((await store.append_event(run, TextDelta(str(i)))).seq)
                with pytest.raises(ConcurrencyError):
                    await store.append_event(run, TextDelta("stale"), expected_seq=0)
                return seqs

            got = await asyncio.gather(*(writer(r) for r in runs))
            assert got == [list(range(1, 26))] * 8
            assert committer.groups - groups < 8 * 26  # tasks' appends shared commits
            for run in runs:
                assert [e.event.delta for e in await store.list_events(run)] == [  # type: ignore[attr-defined]
                    str(i) for i in range(25)
                ]
            many = await store.append_many([AppendRequest(r, [TextDelta("m")]) for r in runs])
            assert [b[0].seq for b in many] == [26] * 8
            assert await store.verify() == []

    asyncio.run(main())


def test_async_bad_input_raises_in_the_task_and_writes_nothing() -> None:
    async def main() -> None:
        store = AsyncRunStore.in_memory()
        run = await store.create_run(await store.ensure_session(), provider="p", model="m")
        with pytest.raises(TypeError):
            await store.append_event(run.id, {"type": "TextDelta"})  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="expected_seq"):
            await store.append_event(run.id, TextDelta("x"), expected_seq=-1)
        assert await store.list_events(run.id) == []
        await store.close()

    asyncio.run(main())
