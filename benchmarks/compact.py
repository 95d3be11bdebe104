"""Workload 21: ``eventlog compact`` on a store most of whose data was deleted (ms, bytes).

``python -m benchmarks.compact [--quick] [--json]``

The store holds ``runs`` runs of ``events`` seeded events, then all but ``kept`` of them are
deleted: LMDB keeps the freed pages in the file. A repetition copies that file into place
(untimed) and compacts it:

- ``eventlog``: :func:`eventlog.tools.compact.compact_store` - the exclusive lock, the
  compacted copy, its fsync, the rename and the directory fsync;
- ``lmdb`` (the limit): raw py-lmdb ``env.copyfd(fd, compact=True)``, an fsync of the copy,
  its rename over ``data.mdb`` and a directory fsync (the same steps, without the locks).

Reported: the time of one compaction (ms) and the file's bytes before and after.
Target: ≥ 0.8x raw py-lmdb (what eventlog adds is two flocks and its checks).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping

from benchmarks.core import (
    Params,
    PeerOutput,
    Row,
    Sample,
    Workload,
    barrier,
    compare_rows,
    int_param,
    percentiles,
)
from benchmarks.data import run_events, uuids


def _params(quick: bool) -> Params:
    return {
        "seed": 2020,
        "runs": 20 if quick else 2000,
        "kept": 2 if quick else 200,
        "events": 50 if quick else 200,
        "reps": 1 if quick else 5,
    }


def _dirty_store(workdir: str, params: Params) -> tuple[str, int]:
    """The store with most of its runs deleted, and a pristine copy of its ``data.mdb``."""
    from benchmarks.stores import create_runs, open_eventlog

    n, kept = int_param(params, "runs"), int_param(params, "kept")
    ids = uuids(int_param(params, "seed"), n + 1)
    store = open_eventlog("eventlog", workdir, "fast")
    create_runs(store, ids[:n], ids[n:], n)
    events = run_events(int_param(params, "seed"), int_param(params, "events"))
    for rid in ids[:n]:
        store.append_events(rid, events)
    for rid in ids[kept:n]:
        store.delete_run(rid)
    store.flush()
    store.close()
    data = os.path.join(workdir, "store", "data.mdb")
    shutil.copyfile(data, os.path.join(workdir, "dirty.mdb"))
    return data, os.stat(data).st_size


def _run(peer: str, params: Params, workdir: str) -> dict[str, Sample]:
    data, before = _dirty_store(workdir, params)
    dirty = os.path.join(workdir, "dirty.mdb")
    times: list[float] = []
    after = 0
    for _ in range(int_param(params, "reps")):
        shutil.copyfile(dirty, data)  # the deleted data back in the file (untimed)
        os.sync()
        barrier()
        if peer == "eventlog":
            from eventlog.tools.compact import compact_store

            start = time.perf_counter()
            report = compact_store(os.path.dirname(data))
            times.append((time.perf_counter() - start) * 1000)
            after = report.bytes_after
        elif peer == "lmdb":
            import lmdb

            store_dir = os.path.dirname(data)
            target = data + ".copy"
            start = time.perf_counter()
            env = lmdb.open(store_dir, readonly=True, max_dbs=64, lock=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            env.copyfd(fd, compact=True)
            os.fsync(fd)
            os.close(fd)
            env.close()
            os.replace(target, data)
            dir_fd = os.open(store_dir, os.O_RDONLY)
            os.fsync(dir_fd)
            os.close(dir_fd)
            times.append((time.perf_counter() - start) * 1000)
            after = os.stat(data).st_size
        else:
            raise ValueError(f"unknown peer {peer}")
    extra: dict[str, float | int | str | list[float]] = {
        "bytes_before": before,
        "bytes_after": after,
    }
    return {"compact": Sample("ms", times, pct=percentiles(times), extra=extra)}


def _rows(outputs: Mapping[str, PeerOutput], params: Params) -> list[Row]:
    ours = outputs.get("eventlog")
    sizes = ""
    if ours is not None and "compact" in ours.variants:
        extra = ours.variants["compact"].extra
        sizes = f": {extra['bytes_before']:,} -> {extra['bytes_after']:,} bytes"
    deleted = int_param(params, "runs") - int_param(params, "kept")
    return compare_rows(
        21,
        f"compact after deleting {deleted:,} of {int_param(params, 'runs'):,} runs{sizes}",
        outputs,
        "compact",
        targets={"lmdb": ("≥ 0.8x raw py-lmdb compact copy", ">=", 0.8)},
        labels={"lmdb": "raw py-lmdb compact copy + fsync + rename (limit)"},
    )


WORKLOAD = Workload(
    number=21,
    key="compact",
    title="compact a store after deleting most of it",
    peers=("eventlog", "lmdb"),
    params=_params,
    run=_run,
    rows=_rows,
)

if __name__ == "__main__":
    from benchmarks.runner import main

    main([WORKLOAD.key])
