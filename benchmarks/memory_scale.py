"""Workload 19: the in-memory store's ``create_run`` rate at 0 runs and at 100k runs.

``python -m benchmarks.memory_scale [--quick] [--json]``

``RunStore.in_memory()`` is what users' own unit tests open, often for thousands of runs; it
must not slow down as it fills. One store is filled to ``size`` runs (``create_run`` one by
one, ten runs per session); then each repetition times ``batch`` ``create_run`` calls on a
fresh, empty store (the rate at 0) and the same number on the full store (the rate at
``size``), one right after the other, so the machine's drift cancels out of their ratio.

Target: the rate at 100k runs ≥ 0.8x the rate at 0 (the median of the per-repetition ratios).
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Mapping

from benchmarks.core import (
    THROUGHPUT,
    Check,
    Params,
    PeerOutput,
    Row,
    Sample,
    Workload,
    fmt_num,
    int_param,
)
from benchmarks.data import MODEL, PROVIDER


def _params(quick: bool) -> Params:
    return {
        "size": 10_000 if quick else 100_000,
        "batch": 1_000 if quick else 3_000,
        "per_session": 10,
        "reps": 3 if quick else 7,
    }


class _Creator:
    """One in-memory store and its sessions; ``create(n)`` times ``n`` more runs (runs/s)."""

    def __init__(self, runs: int, per_session: int) -> None:
        from eventlog import RunStore

        self.store = RunStore.in_memory()
        self.per = per_session
        self.sessions = [self.store.create_session().id for _ in range(runs // per_session + 1)]
        self.done = 0

    def create(self, n: int) -> float:
        store, sessions, per = self.store, self.sessions, self.per
        gc.collect()
        start = time.perf_counter()
        for i in range(self.done, self.done + n):
            store.create_run(sessions[i // per], provider=PROVIDER, model=MODEL)
        elapsed = time.perf_counter() - start
        self.done += n
        return n / elapsed


def _run(peer: str, params: Params, workdir: str) -> dict[str, Sample]:
    if peer != "memory":
        raise ValueError(f"unknown peer {peer}")
    size, batch, reps = (
        int_param(params, "size"),
        int_param(params, "batch"),
        int_param(params, "reps"),
    )
    per = int_param(params, "per_session")
    full = _Creator(size + batch * reps, per)
    fill_start = time.perf_counter()
    full.create(size)
    fill_s = time.perf_counter() - fill_start
    at_zero: list[float] = []
    at_size: list[float] = []
    for _ in range(reps):
        at_zero.append(_Creator(batch, per).create(batch))
        at_size.append(full.create(batch))
    return {
        "zero": Sample(THROUGHPUT, at_zero),
        "full": Sample(THROUGHPUT, at_size, extra={"fill_seconds": round(fill_s, 1)}),
    }


def _rows(outputs: Mapping[str, PeerOutput], params: Params) -> list[Row]:
    out = outputs.get("memory")
    size = f"{int_param(params, 'size') // 1000}k"
    title = f"in-memory store: create_run at {size} runs vs. at 0"
    zero = None if out is None else out.variants.get("zero")
    full = None if out is None else out.variants.get("full")
    if out is None or zero is None or full is None:
        return [Row(19, title, "eventlog in memory", "error")]
    ratios = [b / a for a, b in zip(zero.reps, full.reps, strict=True) if a > 0]
    value = statistics.median(ratios)
    return [
        Row(
            19,
            title,
            "eventlog in memory",
            f"{fmt_num(statistics.median(full.reps))} runs/s at {size}, "
            f"{fmt_num(statistics.median(zero.reps))} at 0 (median of the paired ratios "
            f"{value:.2f})",
            check=Check(f"rate at {size} runs ≥ 0.8x the rate at 0", value, ">=", 0.8),
            rss_mib=out.rss_mib,
        )
    ]


WORKLOAD = Workload(
    number=19,
    key="memory_scale",
    title="the in-memory store's create_run rate at 0 and at 100k runs",
    peers=("memory",),
    params=_params,
    run=_run,
    rows=_rows,
)

if __name__ == "__main__":
    from benchmarks.runner import main

    main([WORKLOAD.key])
