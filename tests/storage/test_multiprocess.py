"""Several processes appending to one LMDB store directory at the same time.

Each worker process opens the store itself (``RunStore.open``): the spawn start method is used
so that no LMDB environment is ever inherited. Workers start together on a barrier to maximize
contention. Afterwards the parent checks that seqs are gap-free, every writer's events are all
there in the writer's own order, and log positions are dense.
"""

from __future__ import annotations

import multiprocessing
from collections import defaultdict
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Literal
from uuid import UUID

from eventlog import RunStore
from eventlog.events import TextDelta
from eventlog.storage.lmdb import LmdbBackend

WRITERS = 4
EVENTS_PER_WRITER = 500
BATCH = 10
JOIN_TIMEOUT = 120.0  # seconds; a hung worker fails the test instead of blocking forever
BARRIER_TIMEOUT = 60.0

Durability = Literal["durable", "fast"]


# -- workers (module level: the spawn start method imports this module in the child) -------


def append_one_by_one(
    path: str, run_id: str, writer: int, count: int, durability: Durability, barrier: Barrier
) -> None:
    """Append ``count`` TextDelta events ``"<writer>:<i>"`` one call at a time."""
    with RunStore.open(path, durability=durability) as store:
        barrier.wait(BARRIER_TIMEOUT)
        for i in range(count):
            store.append_event(run_id, TextDelta(f"{writer}:{i}"))


def append_in_batches(
    path: str,
    run_id: str,
    writer: int,
    count: int,
    batch: int,
    durability: Durability,
    barrier: Barrier,
    padding: int = 0,
    map_size: int = 64 << 20,
) -> None:
    """Append ``count`` events ``"<writer>:<i>[:<padding>]"`` in batches of ``batch``."""
    pad = ":" + "x" * padding if padding else ""
    with RunStore.open(path, durability=durability, map_size=map_size) as store:
        barrier.wait(BARRIER_TIMEOUT)
        for start in range(0, count, batch):
            events = [TextDelta(f"{writer}:{i}{pad}") for i in range(start, start + batch)]
            records = store.append_events(run_id, events)
            # one transaction: consecutive seqs and consecutive positions
            assert [r.seq for r in records] == list(range(records[0].seq, records[0].seq + batch))
            first = records[0].position
            assert [r.position for r in records] == list(range(first, first + batch))


# -- helpers -------------------------------------------------------------------------------


def run_workers(processes: list[SpawnProcess]) -> None:
    for p in processes:
        p.start()
    try:
        for p in processes:
            p.join(JOIN_TIMEOUT)
    finally:
        for p in processes:
            if p.is_alive():
                p.kill()
                p.join(JOIN_TIMEOUT)
    assert [p.exitcode for p in processes] == [0] * len(processes)


def parse(delta: object) -> tuple[int, int]:
    assert isinstance(delta, TextDelta)
    writer, counter = delta.delta.split(":")[:2]
    return int(writer), int(counter)


# -- tests ---------------------------------------------------------------------------------


def test_writers_share_one_run(tmp_path: Path) -> None:
    # Default durable mode (an fsync per append): 4 x 500 appends take a few seconds here,
    # well under the budget, so the test exercises the real commit path.
    path = tmp_path / "store"
    ctx = multiprocessing.get_context("spawn")
    with RunStore.open(path) as store:
        session = store.create_session()
        run = store.create_run(session.id, provider="p", model="m")
        base = store.last_position()
        barrier = ctx.Barrier(WRITERS)
        run_workers(
            [
                ctx.Process(
                    target=append_one_by_one,
                    args=(str(path), str(run.id), w, EVENTS_PER_WRITER, "durable", barrier),
                )
                for w in range(WRITERS)
            ]
        )
        total = WRITERS * EVENTS_PER_WRITER
        records = store.list_events(run.id)
        assert [r.seq for r in records] == list(range(1, total + 1))
        by_writer: dict[int, list[int]] = defaultdict(list)
        for r in records:
            writer, counter = parse(r.event)
            by_writer[writer].append(counter)
        # every writer's events are all present, each once, in the writer's own order
        assert by_writer == {w: list(range(EVENTS_PER_WRITER)) for w in range(WRITERS)}

        log = store.read_log(after_position=base)
        assert [r.position for r in log] == list(range(base + 1, base + total + 1))
        assert [(r.run_id, r.seq) for r in log] == [(run.id, r.seq) for r in records]
        assert store.last_position() == base + total
        state = store.get_run_state(run.id)
        assert state is not None
        assert (state.event_count, state.last_seq) == (total, total)


def test_writers_on_their_own_runs_in_batches(tmp_path: Path) -> None:
    path = tmp_path / "store"
    ctx = multiprocessing.get_context("spawn")
    with RunStore.open(path, durability="fast") as store:
        session = store.create_session()
        runs: list[UUID] = [
            store.create_run(session.id, provider="p", model="m").id for _ in range(WRITERS)
        ]
        base = store.last_position()
        barrier = ctx.Barrier(WRITERS)
        run_workers(
            [
                ctx.Process(
                    target=append_in_batches,
                    args=(str(path), str(runs[w]), w, EVENTS_PER_WRITER, BATCH, "fast", barrier),
                )
                for w in range(WRITERS)
            ]
        )
        total = WRITERS * EVENTS_PER_WRITER
        for w, run_id in enumerate(runs):
            records = store.list_events(run_id)
            assert [r.seq for r in records] == list(range(1, EVENTS_PER_WRITER + 1))
            assert [parse(r.event) for r in records] == [(w, i) for i in range(EVENTS_PER_WRITER)]
            # each batch was one transaction: its positions are consecutive
            for start in range(0, EVENTS_PER_WRITER, BATCH):
                positions = [r.position for r in records[start : start + BATCH]]
                assert positions == list(range(positions[0], positions[0] + BATCH))

        log = store.read_log(after_position=base)
        assert [r.position for r in log] == list(range(base + 1, base + total + 1))
        assert sorted((r.run_id, r.seq) for r in log) == sorted(
            (run_id, seq) for run_id in runs for seq in range(1, EVENTS_PER_WRITER + 1)
        )
        assert store.last_position() == base + total


def test_map_growth_by_one_process_is_seen_by_the_others(tmp_path: Path) -> None:
    # A 1 MiB map and ~8 MB of events: the map grows several times while other processes are
    # writing, so they must adopt the new size (LMDB's MDB_MAP_RESIZED) and carry on.
    path = tmp_path / "store"
    ctx = multiprocessing.get_context("spawn")
    small = 1 << 20
    with RunStore.open(path, durability="fast", map_size=small) as store:
        session = store.create_session()
        runs = [store.create_run(session.id, provider="p", model="m").id for _ in range(WRITERS)]
        base = store.last_position()
        barrier = ctx.Barrier(WRITERS)
        run_workers(
            [
                ctx.Process(
                    target=append_in_batches,
                    args=(str(path), str(runs[w]), w, EVENTS_PER_WRITER, BATCH, "fast", barrier),
                    kwargs={"padding": 4000, "map_size": small},
                )
                for w in range(WRITERS)
            ]
        )
        for w, run_id in enumerate(runs):
            records = store.list_events(run_id)
            assert [r.seq for r in records] == list(range(1, EVENTS_PER_WRITER + 1))
            assert [parse(r.event) for r in records] == [(w, i) for i in range(EVENTS_PER_WRITER)]
        total = WRITERS * EVENTS_PER_WRITER
        log = store.read_log(after_position=base)
        assert [r.position for r in log] == list(range(base + 1, base + total + 1))
        assert store.last_position() == base + total
        # the parent (which opened the store first) can still write after the growth
        record = store.append_event(runs[0], TextDelta("parent"))
        assert (record.seq, record.position) == (EVENTS_PER_WRITER + 1, base + total + 1)
        backend = store.core.backend
        assert isinstance(backend, LmdbBackend)
        assert backend.info()["map_size"] > small
