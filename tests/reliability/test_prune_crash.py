"""Prune under SIGKILL and next to a writer in another process (LMDB).

SIGKILL: a child prunes in batches of two; the parent kills it right after a random number
of committed batches (waiting on the child's progress messages, not sleeping), reopens the
store and checks that ``verify()`` is clean, that every run is either exactly as it was or
entirely gone, that no run the policy keeps is touched, and that the pruned-ranges record
counts exactly the events of the runs that went. Then the prune is finished.

Concurrency: a child writes terminal runs and keeps appending to running ones while the
parent prunes again and again; nothing of a running run is lost.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import random
import signal
from multiprocessing.context import ForkServerContext
from pathlib import Path
from uuid import UUID

from eventlog import RunStore
from eventlog.engine.retention import pruned_ranges
from eventlog.model.events import RunCompleted, TextDelta
from eventlog.testing.retention import snapshot_of
from reliability.pruner import run_pruner, run_writer

TIMEOUT = 60.0


def _context() -> ForkServerContext:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["reliability.pruner"])
    return ctx


def _fill(store: RunStore) -> tuple[set[UUID], set[UUID]]:
    """30 runs in two sessions, three events each: ``(prunable, kept)``."""
    sessions = [store.ensure_session(), store.ensure_session()]
    prunable, kept = set(), set()
    for i in range(30):
        run = store.create_run(sessions[i % 2], provider="p", model="m")
        store.append_events(run.id, [TextDelta(f"a{i}"), TextDelta(f"b{i}")])
        if i % 3:
            store.append_event(run.id, RunCompleted("stop", 1))
            prunable.add(run.id)
        else:
            store.append_event(run.id, TextDelta("still running"))
            kept.add(run.id)
    return prunable, kept


def test_sigkill_during_prune_leaves_each_run_whole_or_gone(tmp_path: Path) -> None:
    path = str(tmp_path / "store")
    rng = random.Random(18)
    ctx = _context()
    with RunStore.open(path) as store:
        prunable, kept = _fill(store)
        original = snapshot_of(store, sorted(prunable | kept))
        events = {rid: len(store.list_events(rid)) for rid in original}
    kills = 0
    for _ in range(3):
        progress: multiprocessing.Queue[tuple[int, int]] = ctx.Queue()
        proc = ctx.Process(target=run_pruner, args=(path, 2, progress))
        proc.start()
        assert proc.pid is not None
        with contextlib.suppress(queue.Empty):
            for _ in range(rng.randint(1, 4)):  # (0, total) first, then one per batch
                progress.get(timeout=TIMEOUT)
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.join(TIMEOUT)
        kills += proc.exitcode == -signal.SIGKILL
        with RunStore.open(path) as store:
            assert store.verify() == []
            now = snapshot_of(store, sorted(original))
            gone = {rid for rid, snap in now.items() if snap is None}
            assert gone <= prunable  # nothing the policy keeps went
            for rid, snap in now.items():
                assert snap is None or snap == original[rid]  # whole or gone
            ranges = store.core.backend.read(pruned_ranges)
            assert sum(r.count for r in ranges) == sum(events[rid] for rid in gone)
    assert kills >= 1
    with RunStore.open(path) as store:
        store.prune()
        now = snapshot_of(store, sorted(original))
        assert {rid for rid, snap in now.items() if snap is None} == prunable
        assert all(now[rid] == original[rid] for rid in kept)
        assert store.verify() == []


def test_prune_next_to_a_writer_process_loses_no_running_run(tmp_path: Path) -> None:
    path = str(tmp_path / "store")
    ctx = _context()
    RunStore.open(path).close()
    out: multiprocessing.Queue[dict[UUID, int]] = ctx.Queue()
    proc = ctx.Process(target=run_writer, args=(path, 25, out))
    proc.start()
    pruned = 0
    with RunStore.open(path) as store:
        result: dict[UUID, int] | None = None
        while result is None:
            pruned += store.prune(batch_size=3).runs
            with contextlib.suppress(queue.Empty):
                result = out.get(timeout=0.01)
        proc.join(TIMEOUT)
        assert proc.exitcode == 0
        pruned += store.prune().runs
        assert pruned == 25  # every terminal run went, once
        for rid, count in result.items():
            assert len(store.list_events(rid)) == count
        assert store.count_runs() == len(result) == 25
        assert store.verify() == []
