"""``python -m benchmarks.subscribe_latency``: commit-to-delivery latency across processes.

Process A (this one) appends one event at a time, paced (``--interval``), and notes when each
append returned (the commit and its wake-up signal are done by then). Process B (spawned)
subscribes read-only and notes when each event is delivered. Both use ``time.monotonic_ns``
(CLOCK_MONOTONIC, one clock for the whole machine). Then B stays subscribed with nothing to
read for ``--idle`` seconds and reports the CPU time it used (``resource.getrusage``).

Also measured here, in this process: the cost of the wake-up signal itself
(``Wakeup.committed``: one ``pwrite`` + a condition bump) and of an append with and without it.
No assertion: it prints figures (``--json`` for a document).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import statistics
import tempfile
import time
from multiprocessing.synchronize import Event as MpEvent
from typing import Any

from eventlog import RunStore
from eventlog.events import TextDelta
from eventlog.storage.config import Durability
from eventlog.storage.wakeup import NOTIFY_FILE, Wakeup


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _subscriber(path: str, after: int, n: int, idle: float, ready: MpEvent, out: Any) -> None:
    with RunStore.open(path, readonly=True) as store:
        sub = store.subscribe(after_position=after, timeout=60)
        ready.set()
        got = []
        for record in sub:
            got.append((record.position, time.monotonic_ns()))
            if len(got) == n:
                break
        sub.close()
        idle_sub = store.subscribe(after_position=store.last_position(), timeout=idle)
        woken = store.core.wakeup.generation
        cpu0, wall0 = _cpu(), time.monotonic()
        extra = sum(1 for _ in idle_sub)
        cpu1, wall1 = _cpu(), time.monotonic()
        wakeups = store.core.wakeup.generation - woken
        out.put(
            {
                "deliveries": got,
                "idle_cpu": cpu1 - cpu0,
                "idle_wall": wall1 - wall0,
                "idle_wakeups": wakeups,
            }
        )
        assert extra == 0


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _signal_cost(directory: str, calls: int) -> float:
    wakeup = Wakeup(directory, readonly=False)
    try:
        start = time.perf_counter()
        for _ in range(calls):
            wakeup.committed()
        return (time.perf_counter() - start) / calls * 1e6
    finally:
        wakeup.close()


def _signal_in_appends(directory: str, events: int) -> tuple[float, float]:
    """The signal timed where it runs (after each append's commit): median and mean, in us."""
    with RunStore.open(directory, durability="fast") as store:
        run = store.create_run(store.ensure_session(), provider="p", model="m")
        backend = store.core.backend
        hook = backend.on_commit
        assert hook is not None
        samples: list[int] = []
        clock = time.perf_counter_ns

        def timed() -> None:
            start = clock()
            hook()
            samples.append(clock() - start)

        backend.on_commit = timed
        for _ in range(events):
            store.append_event(run.id, TextDelta("x"))
        backend.on_commit = hook
    return statistics.median(samples) / 1e3, statistics.fmean(samples) / 1e3


def _append_cost(directory: str, events: int, rounds: int) -> tuple[float, float]:
    """Median microseconds per fast-mode append with the signal installed, and without."""
    with RunStore.open(directory, durability="fast") as store:
        run = store.create_run(store.ensure_session(), provider="p", model="m")
        backend = store.core.backend
        hook = backend.on_commit
        samples: dict[bool, list[float]] = {True: [], False: []}
        for n in range(rounds):
            for signal in (True, False) if n % 2 else (False, True):  # alternate the order
                backend.on_commit = hook if signal else None
                start = time.perf_counter()
                for _ in range(events):
                    store.append_event(run.id, TextDelta("x"))
                samples[signal].append((time.perf_counter() - start) / events * 1e6)
        backend.on_commit = hook
    return statistics.median(samples[True]), statistics.median(samples[False])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500, help="paced appends to time")
    parser.add_argument("--interval", type=float, default=0.005, help="seconds between appends")
    parser.add_argument("--idle", type=float, default=5.0, help="idle seconds for the CPU figure")
    parser.add_argument("--durable", action="store_true", help="fsync every append")
    parser.add_argument(
        "--poll", action="store_true", help="no notify file: measure the polling fallback"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: keeps the code working")
    args = parser.parse_args(argv)
    scale = 100 if args.quick else 1

    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "store")
        durability: Durability = "durable" if args.durable else "fast"
        with RunStore.open(path, durability=durability) as store:
            run = store.create_run(store.ensure_session(), provider="p", model="m")
            after = store.last_position()
            if args.poll:  # as with a writer that predates the wake-up file, or no inotify
                os.unlink(os.path.join(path, NOTIFY_FILE))
            ready, out = ctx.Event(), ctx.Queue()
            proc = ctx.Process(
                target=_subscriber, args=(path, after, args.events, args.idle, ready, out)
            )
            proc.start()
            if not ready.wait(60):
                raise SystemExit("the subscriber process did not start")
            called: dict[int, int] = {}  # append called: an upper bound of the latency
            committed: dict[int, int] = {}  # append returned: commit and signal are done
            for i in range(args.events):
                before = time.monotonic_ns()
                record = store.append_event(run.id, TextDelta(str(i)))
                committed[record.position] = time.monotonic_ns()
                called[record.position] = before
                time.sleep(args.interval)  # pacing: each event is delivered to an idle reader
            result = out.get(timeout=120)
            proc.join(60)
        latencies = [(t - committed[p]) / 1e6 for p, t in result["deliveries"]]
        bounds = [(t - called[p]) / 1e6 for p, t in result["deliveries"]]
        signal_us = _signal_cost(tmp, 200_000 // scale)
        with_signal, without = _append_cost(os.path.join(tmp, "cost"), 2000 // scale, 8)
        in_append = _signal_in_appends(os.path.join(tmp, "timed"), 20_000 // scale)

    figures = {
        "machine": f"{platform.platform()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "durability": durability,
        "wakeup": "polling 1-40 ms" if args.poll else "inotify",
        "events": len(latencies),
        "latency_ms": {
            "p50": _pct(latencies, 0.5),
            "p90": _pct(latencies, 0.9),
            "p99": _pct(latencies, 0.99),
            "max": max(latencies),
        },
        "latency_from_append_call_ms": {"p50": _pct(bounds, 0.5), "p99": _pct(bounds, 0.99)},
        "idle_cpu_percent": 100 * result["idle_cpu"] / result["idle_wall"],
        "idle_seconds": result["idle_wall"],
        "idle_wakeups": result["idle_wakeups"],
        "signal_us": signal_us,
        "signal_in_append_us": {"p50": in_append[0], "mean": in_append[1]},
        "append_us_with_signal": with_signal,
        "append_us_without_signal": without,
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    lat = figures["latency_ms"]
    print(
        f"machine: {figures['machine']}; appends: {durability}, paced {args.interval * 1e3:g} ms; "
        f"wake-up: {figures['wakeup']}"
    )
    print(f"commit (process A) -> delivery (process B), {len(latencies)} events:")
    print(
        f"  p50 {lat['p50']:.3f} ms  p90 {lat['p90']:.3f} ms  p99 {lat['p99']:.3f} ms  "
        f"max {lat['max']:.3f} ms (from the append's return; from its call: "
        f"p50 {_pct(bounds, 0.5):.3f} ms, p99 {_pct(bounds, 0.99):.3f} ms)"
    )
    print(
        f"idle subscriber: {result['idle_cpu'] * 1e3:.2f} ms CPU in {result['idle_wall']:.1f} s "
        f"({figures['idle_cpu_percent']:.4f}% of a core), {result['idle_wakeups']} wake-ups"
    )
    print(
        f"wake-up signal (pwrite + generation bump): {signal_us:.2f} us in a loop; timed after "
        f"each of 20000 commits: p50 {in_append[0]:.2f} us, mean {in_append[1]:.2f} us"
    )
    print(
        f"fast-mode append: {with_signal:.1f} us with the signal, {without:.1f} us without "
        "(median of 8 x 2000, interleaved)"
    )


if __name__ == "__main__":
    main()
