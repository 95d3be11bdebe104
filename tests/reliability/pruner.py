"""Child processes of the prune reliability tests: a pruner and a concurrent writer.

:func:`run_pruner` prunes in batches of two and puts ``(done, total)`` on ``progress`` after
every committed batch (the parent kills it with SIGKILL at a random one). :func:`run_writer`
creates runs - terminal ones (prunable) and running ones it keeps appending to - and puts the
running runs' ids and event counts on ``out`` when it is done.
"""

from __future__ import annotations

from multiprocessing.queues import Queue
from uuid import UUID

from eventlog import RunStore
from eventlog.model.events import RunCompleted, TextDelta

__all__ = ["run_pruner", "run_writer"]


def run_pruner(path: str, batch_size: int, progress: Queue[tuple[int, int]]) -> None:
    """Open the store and prune every terminal run, reporting each committed batch."""
    with RunStore.open(path) as store:
        store.prune(batch_size=batch_size, progress=lambda d, t: progress.put((d, t)))


def run_writer(path: str, rounds: int, out: Queue[dict[UUID, int]]) -> None:
    """Write ``rounds`` rounds: a terminal run, a running run, an event to the last 3 running."""
    running: dict[UUID, int] = {}
    with RunStore.open(path, durability="fast") as store:
        session = store.ensure_session()
        for i in range(rounds):
            done = store.create_run(session, provider="p", model="m")
            store.append_events(done.id, [TextDelta(f"d{i}"), RunCompleted("stop", 1)])
            live = store.create_run(session, provider="p", model="m")
            running[live.id] = 0
            for rid in list(running)[-3:]:
                store.append_event(rid, TextDelta(f"r{i}"))
                running[rid] += 1
    out.put(running)
