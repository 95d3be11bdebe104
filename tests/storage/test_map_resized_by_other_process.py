"""A map grown by another process is adopted (LMDB's MapResizedError never reaches the user)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from uuid import UUID

from eventlog import RunStore
from eventlog.events import TextDelta

MiB = 1 << 20


def _grow_store(path: str, run_id: str) -> None:
    with RunStore.open(path, durability="fast", map_size=MiB) as store:
        big = "x" * 20_000
        for _ in range(20):
            store.append_events(UUID(run_id), [TextDelta(big) for _ in range(20)])  # ~8 MB


def test_other_process_grows_the_map(tmp_path: Path) -> None:
    path = tmp_path / "s"
    store = RunStore.open(path, durability="fast", map_size=MiB)
    try:
        run = store.create_run(store.ensure_session(), provider="p", model="m")
        store.append_event(run.id, TextDelta("before"))
        before = store.core.backend.info()["map_size"]  # type: ignore[attr-defined]
        ctx = multiprocessing.get_context("spawn")
        child = ctx.Process(target=_grow_store, args=(str(path), str(run.id)))
        child.start()
        child.join(timeout=120)
        assert child.exitcode == 0
        # this process still has the old, smaller map: reads and writes must adopt the new size
        events = store.list_events(run.id)
        assert len(events) == 1 + 400
        assert store.append_event(run.id, TextDelta("after")).seq == 402
        assert store.core.backend.info()["map_size"] > before  # type: ignore[attr-defined]
    finally:
        store.close()
