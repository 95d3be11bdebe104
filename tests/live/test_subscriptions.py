"""Subscriptions across processes, a consumer killed mid-stream, async projectors on LMDB.

Worker processes use the ``spawn`` start method (LMDB environments cannot cross a fork) and
open the store themselves. Nothing sleeps to wait: processes report through multiprocessing
events and queues, waited on with deadlines.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Barrier
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

import lmdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventlog import EventRecord, ProjectorFailedError, RunStore, StoreError
from eventlog.events import TextDelta
from eventlog.storage.wakeup import NOTIFY_FILE
from eventlog.testing.subscriptions import DEADLINE, Collector, InlineTally, Tally

WRITERS = 4
EVENTS_PER_WRITER = 250
BATCH = 5
JOIN_TIMEOUT = 120.0


# -- workers (module level: spawn imports this module in the child) -------------------------


def subscriber(path: str, after: int, count: int, ready: MpEvent, out: Any) -> None:
    """Collect ``count`` events after ``after`` from a subscription; put their identities."""
    with RunStore.open(path, readonly=True) as store:
        sub = store.subscribe(after_position=after, timeout=JOIN_TIMEOUT)
        ready.set()
        got = []
        for record in sub:
            got.append((record.position, str(record.run_id), record.seq))
            if len(got) == count:
                break
        out.put(got)


def writer(path: str, run_id: str, n: int, barrier: Barrier) -> None:
    """Append ``n`` events in batches of BATCH once every writer is ready."""
    with RunStore.open(path, durability="fast") as store:
        barrier.wait(JOIN_TIMEOUT)
        for start in range(0, n, BATCH):
            store.append_events(run_id, [TextDelta(f"{i}") for i in range(start, start + BATCH)])


def consumer(path: str, log_path: str, batch: int, halfway: int, reached: MpEvent) -> None:
    """A persistent consumer that writes each delivered position to ``log_path``.

    At event ``halfway`` it tells the parent and hangs "processing" it: killed right there.
    """
    with RunStore.open(path) as store, open(log_path, "a") as log:
        sub = store.subscribe(name="killed", batch_size=batch, timeout=JOIN_TIMEOUT)
        for n, record in enumerate(sub, 1):
            log.write(f"{record.position}\n")
            log.flush()
            if n == halfway:
                reached.set()
                threading.Event().wait(JOIN_TIMEOUT)  # never set: the parent kills us here


def tally_writer(path: str, run_id: str, n: int, barrier: Barrier) -> None:
    """Append ``n`` events with the async Tally running in this process too."""
    with RunStore.open(path, durability="fast", projectors=[Tally(), InlineTally()]) as store:
        barrier.wait(JOIN_TIMEOUT)
        for i in range(n):
            store.append_event(run_id, TextDelta(str(i)))
        store.wait_for_projections(timeout=JOIN_TIMEOUT)


def run_all(processes: list[SpawnProcess]) -> None:
    for p in processes:
        p.join(JOIN_TIMEOUT)
    for p in processes:
        if p.is_alive():
            p.kill()
            p.join(JOIN_TIMEOUT)
    assert [p.exitcode for p in processes] == [0] * len(processes)


# -- tests ---------------------------------------------------------------------------------


def test_subscriber_in_another_process_sees_every_event_once_in_order(tmp_path: Path) -> None:
    path = tmp_path / "store"
    ctx = multiprocessing.get_context("spawn")
    with RunStore.open(path, durability="fast") as store:
        session = store.create_session()
        runs = [store.create_run(session.id, provider="p", model="m").id for _ in range(WRITERS)]
        base = store.last_position()
        total = WRITERS * EVENTS_PER_WRITER
        ready, out = ctx.Event(), ctx.Queue()
        sub = ctx.Process(target=subscriber, args=(str(path), base, total, ready, out))
        sub.start()
        assert ready.wait(JOIN_TIMEOUT), "the subscriber did not start"
        barrier = ctx.Barrier(WRITERS)
        writers = [
            ctx.Process(target=writer, args=(str(path), str(r), EVENTS_PER_WRITER, barrier))
            for r in runs
        ]
        for p in writers:
            p.start()
        run_all(writers)
        got = out.get(timeout=JOIN_TIMEOUT)
        run_all([sub])
        expected = [(r.position, str(r.run_id), r.seq) for r in store.read_log(after_position=base)]
        assert len(expected) == total
        assert got == expected  # every event, once, in position order
        assert [g[0] for g in got] == list(range(base + 1, base + total + 1))


def test_consumer_killed_mid_stream_resumes_without_loss(tmp_path: Path) -> None:
    path = tmp_path / "store"
    log_path = tmp_path / "delivered.txt"
    batch, total, halfway = 16, 600, 200
    ctx = multiprocessing.get_context("spawn")
    with RunStore.open(path, durability="fast") as store:
        run = store.create_run(store.ensure_session(), provider="p", model="m")
        for start in range(0, total, 50):
            store.append_events(run.id, [TextDelta(str(i)) for i in range(start, start + 50)])
        reached = ctx.Event()
        args = (str(path), str(log_path), batch, halfway, reached)
        proc = ctx.Process(target=consumer, args=args)
        proc.start()
        try:
            assert reached.wait(JOIN_TIMEOUT), "the consumer did not get halfway"
            assert proc.pid is not None
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.join(JOIN_TIMEOUT)
        assert proc.exitcode == -signal.SIGKILL
        before = [int(line) for line in log_path.read_text().split()]
        [info] = store.consumers()
        acked = info.position
        assert acked <= before[-1]
        with store.subscribe(name="killed", batch_size=batch, timeout=0) as again:
            after = [r.position for r in again]
        everything = [r.position for r in store.read_log()]
        assert sorted(set(before) | set(after)) == everything  # no loss
        assert before == everything[: len(before)]  # in order, no duplicate within a run
        assert after == [p for p in everything if p > acked]  # resumes right after the ack
        redelivered = sorted(set(before) & set(after))
        # the documented window: the batch in hand (200 = 12 * 16 + 8: its first 8 events)
        assert len(before) == halfway
        assert acked == before[(halfway // batch) * batch - 1]
        assert redelivered == before[(halfway // batch) * batch :]
        assert 0 < len(redelivered) <= batch
        assert store.consumers()[0].lag == 0


def test_async_projector_does_not_hold_up_appends(tmp_path: Path) -> None:
    gate = threading.Event()
    with RunStore.open(tmp_path / "store", durability="fast", projectors=[Tally(gate)]) as store:
        run = store.create_run(store.ensure_session(), provider="p", model="m")
        # the projector is stuck on its first event; appends still go through
        records = [store.append_event(run.id, TextDelta(str(i))) for i in range(20)]
        [status] = [p for p in store.projector_status() if p.name == "tally"]
        assert status.checkpoint < records[-1].position
        assert store.verify() == []  # an async view is checked up to its checkpoint
        gate.set()
        store.wait_for_projections(records[-1].position, timeout=DEADLINE)
        assert store.projection("tally").get(run.id.bytes) == b"20 0"
        assert store.verify() == []


def test_async_projector_run_by_several_processes_applies_each_event_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store"
    ctx = multiprocessing.get_context("spawn")
    with RunStore.open(path, durability="fast", projectors=[Tally(), InlineTally()]) as store:
        runs = [store.create_run(store.ensure_session(), provider="p", model="m") for _ in "ab"]
        barrier = ctx.Barrier(2)
        procs = [
            ctx.Process(target=tally_writer, args=(str(path), str(r.id), 150, barrier))
            for r in runs
        ]
        for p in procs:
            p.start()
        run_all(procs)
        store.wait_for_projections(timeout=DEADLINE)  # three processes ran the projector
        view = dict(store.projection("tally").scan())
        assert view == dict(store.projection("tally_inline").scan())
        assert view == {r.id.bytes: b"150 0" for r in runs}
        assert store.verify() == []


def test_async_projector_resumes_after_reopen(tmp_path: Path) -> None:
    path = tmp_path / "store"
    with RunStore.open(path, projectors=[Tally(fail_on="boom")]) as store:
        run = store.create_run(store.ensure_session(), provider="p", model="m")
        store.append_events(run.id, [TextDelta("a"), TextDelta("boom"), TextDelta("c")])
        with pytest.raises(ProjectorFailedError):
            store.wait_for_projections(timeout=DEADLINE)
    with RunStore.open(path, projectors=[Tally()]) as store:  # the fixed projector retries
        store.wait_for_projections(timeout=DEADLINE)
        assert store.projection("tally").get(run.id.bytes) == b"3 0"
        assert store.verify() == []


def test_readonly_store_without_notify_file_polls(tmp_path: Path) -> None:
    path = tmp_path / "store"
    with RunStore.open(path) as store:
        run = store.create_run(store.ensure_session(), provider="p", model="m")
        (path / NOTIFY_FILE).unlink()  # as written by a version before subscriptions
        with RunStore.open(path, readonly=True) as reader:
            collector = Collector(reader.subscribe())
            first = store.append_event(run.id, TextDelta("seen by polling"))
            assert collector.wait_for(1) == [first]
            assert collector.stop() == [first]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("append"), st.integers(0, 2), st.integers(1, 3)),
            st.tuples(st.just("delete"), st.integers(0, 2), st.just(0)),
            st.tuples(st.just("read"), st.integers(1, 5), st.just(0)),
        ),
        max_size=40,
    ),
    st.integers(1, 4),
)
def test_interleaved_appends_deletes_and_reads(ops: list[tuple[str, int, int]], size: int) -> None:
    store = RunStore.in_memory()
    sid = store.ensure_session()
    runs = [store.create_run(sid, provider="p", model="m").id for _ in range(3)]
    appended: dict[int, EventRecord] = {}
    sub = store.subscribe(batch_size=size, timeout=0)
    delivered: list[EventRecord] = []
    for op, a, b in ops:
        if op == "append" and store.get_run(runs[a]) is not None:
            for r in store.append_events(runs[a], [TextDelta(str(i)) for i in range(b)]):
                appended[r.position] = r
        elif op == "delete":
            store.delete_run(runs[a])
        elif op == "read":
            for _ in range(a):
                record = next(sub, None)
                if record is None:
                    sub = store.subscribe(after_position=sub.position, batch_size=size, timeout=0)
                    break
                delivered.append(record)
    delivered.extend(sub)
    positions = [r.position for r in delivered]
    assert positions == sorted(set(positions))  # increasing: no duplicate, never lower
    assert all(appended[r.position] == r for r in delivered)
    assert {r.position for r in store.read_log()} <= set(positions)  # nothing surviving missed


def test_readonly_store_refuses_a_named_consumer(tmp_path: Path) -> None:
    path = tmp_path / "store"
    RunStore.open(path).close()
    with RunStore.open(path, readonly=True) as reader:
        with pytest.raises(StoreError, match="readonly=True"):
            reader.subscribe(name="indexer")
        assert list(reader.subscribe(timeout=0)) == []  # an unnamed subscription is fine


def test_readonly_store_without_a_consumers_table(tmp_path: Path) -> None:
    # a store last written by a version without the table: read-only opens still work
    path = tmp_path / "store"
    with RunStore.open(path) as store:
        run = store.create_run(store.ensure_session(), provider="p", model="m")
        store.append_event(run.id, TextDelta("x"))
    env = lmdb.open(str(path), max_dbs=64)
    db = env.open_db(b"consumers")
    with env.begin(write=True) as txn:
        txn.drop(db, delete=True)
    env.close()
    with RunStore.open(path, readonly=True) as reader:
        assert reader.consumers() == []
        assert [r.event.delta for r in reader.subscribe(timeout=0)] == ["x"]  # type: ignore[attr-defined]
    with RunStore.open(path) as store:  # a writer creates it again
        store.subscribe(name="indexer").close()
        assert [c.name for c in store.consumers()] == ["indexer"]
