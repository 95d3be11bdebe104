"""Workload 27: forking a run (zero-copy) against copying its prefix, and reading a fork.

``python -m benchmarks.fork [--quick] [--json]``

One peer, ours, on LMDB (``durability="fast"``: the work, not the fsync, is what differs).
For each prefix length ``n`` (10, 1,000 and 10,000 events of a seeded agent run):

- ``fork_n``: ``fork_run(parent, n)``: a new run sharing the parent's first ``n`` events
  (one commit: the run's record, two index keys, the prefix folded into its views once);
- ``copy_n``: what a fork costs without it: read the parent's first ``n`` events and
  ``create_run(..., events=prefix)`` (one commit that writes every event again);
- ``read_fork_n``: ``list_events`` of a fork at ``n`` with ``n // 10`` events of its own;
- ``read_plain_n``: ``list_events`` of a plain run of the same length.

µs per call (the p50 of every call). Targets: a fork at 10,000 events ≥ 10x cheaper than the
copy; reading a fork ≥ 0.8x as fast as reading a plain run of the same length.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Mapping
from functools import partial

from benchmarks.core import (
    Check,
    Params,
    PeerOutput,
    Row,
    Sample,
    Workload,
    barrier,
    describe,
    int_param,
    latency_sample,
    ratio,
)
from benchmarks.data import run_events


def _params(quick: bool) -> Params:
    return {
        "seed": 2020,
        "sizes": "10,100" if quick else "10,1000,10000",
        "calls": 3 if quick else 20,
        "reps": 2 if quick else 5,
    }


def _sizes(params: Params) -> list[int]:
    return [int(s) for s in str(params["sizes"]).split(",")]


def _run(peer: str, params: Params, workdir: str) -> dict[str, Sample]:
    from eventlog import RunStore

    calls, reps = int_param(params, "calls"), int_param(params, "reps")
    out: dict[str, Sample] = {}
    with RunStore.open(os.path.join(workdir, "fork"), durability="fast") as store:
        session = store.ensure_session()
        for n in _sizes(params):
            events = run_events(int_param(params, "seed"), n + n // 10)
            prefix, tail = events[:n], events[n:]
            parent = store.create_run(session, provider="p", model="m", events=prefix).id
            fork = store.fork_run(parent, n).id
            if tail:
                store.append_events(fork, tail, expected_seq=n)
            plain = store.create_run(session, provider="p", model="m", events=events).id

            def fork_once(n: int = n, parent: object = parent) -> None:
                store.fork_run(str(parent), n)

            def copy_once(n: int = n, parent: object = parent) -> None:
                shared = [r.event for r in store.list_events(str(parent), to_seq=n)]
                store.create_run(session, provider="p", model="m", events=shared)

            work: dict[str, Callable[[], object]] = {
                f"fork_{n}": fork_once,
                f"copy_{n}": copy_once,
                f"read_fork_{n}": partial(store.list_events, fork),
                f"read_plain_{n}": partial(store.list_events, plain),
            }
            for name, fn in work.items():
                rep_p50: list[float] = []
                every: list[float] = []
                for rep in range(1 + reps):  # the first is a warm-up
                    gc.collect()
                    barrier()
                    took = []
                    for _ in range(calls):
                        start = time.perf_counter()
                        fn()
                        took.append((time.perf_counter() - start) * 1e6)
                    if rep:
                        took.sort()
                        rep_p50.append(took[len(took) // 2])
                        every += took
                out[name] = latency_sample(rep_p50, every, events=n)
    return out


def _rows(outputs: Mapping[str, PeerOutput], params: Params) -> list[Row]:
    out = outputs.get("eventlog")
    got = {} if out is None else out.variants
    rows: list[Row] = []
    sizes = _sizes(params)
    for n in sizes:
        fork, copy = got.get(f"fork_{n}"), got.get(f"copy_{n}")
        read_fork, read_plain = got.get(f"read_fork_{n}"), got.get(f"read_plain_{n}")
        title = f"fork vs copy, {n:,}-event prefix"
        if fork is None or copy is None or read_fork is None or read_plain is None:
            rows.append(Row(27, title, "eventlog (ours, LMDB)", "error"))
            continue
        cheaper = ratio(fork, copy)
        big = n == max(sizes) and n >= 10_000
        rows.append(Row(27, title, "fork_run (ours, zero-copy)", describe(fork)))
        rows.append(
            Row(
                27,
                title,
                "copy the prefix (read + create_run)",
                describe(copy),
                ratio=cheaper,
                check=Check("fork ≥ 10x cheaper than copying", cheaper, ">=", 10.0)
                if big
                else None,
            )
        )
        reads = ratio(read_fork, read_plain)
        title = f"read a fork vs a plain run, {n + n // 10:,} events"
        rows.append(Row(27, title, "list_events of the fork", describe(read_fork)))
        rows.append(
            Row(
                27,
                title,
                "list_events of a plain run",
                describe(read_plain),
                ratio=reads,
                check=Check("≥ 0.8x a plain run's read", reads, ">=", 0.8),
            )
        )
    return rows


WORKLOAD = Workload(
    number=27,
    key="fork",
    title="fork a run vs copy its prefix; read a fork",
    peers=("eventlog",),
    params=_params,
    run=_run,
    rows=_rows,
)

if __name__ == "__main__":
    from benchmarks.runner import main

    main([WORKLOAD.key])
