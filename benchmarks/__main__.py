"""Quick append benchmark: ``python -m benchmarks [--events N] [--repeat R] [--json]``.

Single-event appends through ``RunStore`` against raw py-lmdb doing one put per transaction
with the same durability, in the same run. Figures are the median (min-max) of ``--repeat``
repetitions; the ratio column is store / raw. (The full suite is tracked in its own issue.)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

import lmdb
import msgspec

from eventlog import RunStore
from eventlog.events import TextDelta


def _raw(sync: bool, n: int, workdir: str) -> float:
    env = lmdb.open(tempfile.mkdtemp(dir=workdir), map_size=1 << 30, sync=sync, metasync=sync)
    payload = msgspec.msgpack.encode(TextDelta("hello world"))
    rid = uuid.uuid4().bytes
    start = time.perf_counter()
    for i in range(1, n + 1):
        with env.begin(write=True) as txn:
            txn.put(rid + i.to_bytes(8, "big"), payload)
    rate = n / (time.perf_counter() - start)
    env.close()
    return rate


def _store(durability: str, n: int, workdir: str) -> float:
    store = RunStore.open(tempfile.mkdtemp(dir=workdir), durability=durability)  # type: ignore[arg-type]
    run = store.create_run(store.ensure_session(), provider="p", model="m")
    event = TextDelta("hello world")
    start = time.perf_counter()
    for _ in range(n):
        store.append_event(run.id, event)
    rate = n / (time.perf_counter() - start)
    store.close()
    return rate


def _measure(fn: Callable[[], float], repeat: int) -> dict[str, float]:
    fn()  # warm-up, excluded
    rates = [fn() for _ in range(repeat)]
    return {"median": statistics.median(rates), "min": min(rates), "max": max(rates)}


def main() -> None:
    """Run the quick append benchmark and print a table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(dir=os.getcwd()) as workdir:
        for durability, sync in (("durable", True), ("fast", False)):
            n = args.events if sync else args.events * 10
            raw = _measure(partial(_raw, sync, n, workdir), args.repeat)
            ours = _measure(partial(_store, durability, n, workdir), args.repeat)
            rows.append(
                {
                    "workload": f"{durability} append, 1 event/call",
                    "store_events_per_s": ours,
                    "raw_lmdb_events_per_s": raw,
                    "ratio": ours["median"] / raw["median"],
                }
            )
    meta = {
        "python": platform.python_version(),
        "lmdb": lmdb.__version__,
        "msgspec": msgspec.__version__,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus",
    }
    if args.json:
        print(json.dumps({"meta": meta, "rows": rows}, indent=2))
        return
    print(f"{'workload':<28} {'store ev/s (min-max)':>28} {'raw lmdb ev/s (min-max)':>28} vs.")
    for row in rows:
        s, r = row["store_events_per_s"], row["raw_lmdb_events_per_s"]
        print(
            f"{row['workload']:<28} {s['median']:>10.0f} ({s['min']:.0f}-{s['max']:.0f})".rjust(29)
            + f"{r['median']:>10.0f} ({r['min']:.0f}-{r['max']:.0f})".rjust(29)
            + f"  {row['ratio']:.2f}x"
        )
    print(meta)


if __name__ == "__main__":
    main()
