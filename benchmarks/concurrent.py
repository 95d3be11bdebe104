"""Workload 8: group commit - 1, 8, 64 and 256 concurrent durable writers, each on its own run.

``python -m benchmarks.concurrent [--quick] [--json]``

Each repetition starts the writers together; each appends one event per call (durable) to its
own run until the repetition's time is up. The figure is the total events/s of all writers;
p50/p99 are the latency of one call. LMDB (and SQLite) admit one writer at a time: the store's
group commit puts every request waiting at that moment into one transaction with one fsync,
the peers without it take turns.

Targets: at 64 writers ≥ 10x the store's own single-writer rate in the same run, for threads
(``eventlog`` at 64 vs. at 1) and for asyncio tasks (``eventlog-async`` at 64 vs. at 1): it
replaces the earlier ≥ 20x for threads; and ≥ 10x the ``eventsourcing`` library at the same
concurrency (kept).

- ``eventlog`` / ``memory``: one store shared by the threads, ``append_event``;
- ``eventlog-async``: one ``AsyncRunStore``, one asyncio task per writer, ``await
  append_event`` (all tasks on one event loop);
- ``lmdb`` (the limit): one environment, one put per durable transaction per call;
- ``sqlite``: one connection per thread (``synchronous=FULL``; a busy writer makes the others
  wait in SQLite's busy handler);
- ``eventsourcing``: one application, one aggregate per thread, ``app.save`` per event.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from collections.abc import Callable, Mapping

from benchmarks.core import (
    PEER_LABELS,
    THROUGHPUT,
    Check,
    Params,
    PeerOutput,
    Row,
    Sample,
    Workload,
    barrier,
    central,
    compare_rows,
    fmt_num,
    percentiles,
    ratio,
)
from benchmarks.data import MODEL, PROVIDER, run_events, to_plain, uuids

_pack = struct.Struct(">Q").pack

#: makes one appender per thread: appender(thread index) -> append(event)
Factory = Callable[[int], Callable[[object], None]]


def _params(quick: bool) -> Params:
    return {
        "seed": 808,
        "threads": [1, 4] if quick else [1, 8, 64, 256],
        "seconds": 0.1 if quick else 1.0,
        "warmup_seconds": 0.05 if quick else 0.2,
        "reps": 1 if quick else 3,
    }


def _int(params: Params, key: str) -> int:
    value = params[key]
    assert isinstance(value, int)
    return value


def _float(params: Params, key: str) -> float:
    value = params[key]
    assert isinstance(value, int | float)
    return float(value)


def _round(
    factory: Factory, threads: int, seconds: float, events: list[object]
) -> tuple[float, list[float]]:
    """Run ``threads`` appenders for ``seconds``; (events/s, every call's latency in µs)."""
    appenders = [factory(t) for t in range(threads)]
    counts = [0] * threads
    latencies: list[list[float]] = [[] for _ in range(threads)]
    start_gate = threading.Barrier(threads + 1)
    stop_at = [0.0]

    def body(t: int) -> None:
        append, lat = appenders[t], latencies[t]
        clock = time.perf_counter
        n = 0
        start_gate.wait()
        deadline = stop_at[0]
        while True:
            t0 = clock()
            if t0 >= deadline:
                break
            append(events[n % len(events)])
            lat.append((clock() - t0) * 1e6)
            n += 1
        counts[t] = n

    pool = [threading.Thread(target=body, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    stop_at[0] = time.perf_counter() + seconds
    begin = time.perf_counter()
    start_gate.wait()
    for th in pool:
        th.join()
    elapsed = time.perf_counter() - begin
    return sum(counts) / elapsed, [x for lat in latencies for x in lat]


def _async_round(
    workdir: str, seed: int, writers: int, seconds: float, events: list[object]
) -> tuple[float, list[float]]:
    """The asyncio variant of :func:`_round`: ``writers`` tasks on one event loop."""
    import asyncio

    from eventlog import AsyncRunStore

    async def main() -> tuple[float, list[float]]:
        store = await AsyncRunStore.open(os.path.join(workdir, "async"))
        sid = await store.ensure_session()
        runs = [
            (await store.create_run(sid, provider=PROVIDER, model=MODEL)).id for _ in range(writers)
        ]
        latencies: list[float] = []
        counts = [0] * writers
        clock = time.perf_counter
        deadline = clock() + seconds

        async def writer(w: int) -> None:
            run, n = runs[w], 0
            while True:
                t0 = clock()
                if t0 >= deadline:
                    break
                await store.append_event(run, events[n % len(events)])  # type: ignore[arg-type]
                latencies.append((clock() - t0) * 1e6)
                n += 1
            counts[w] = n

        begin = clock()
        await asyncio.gather(*(writer(w) for w in range(writers)))
        elapsed = clock() - begin
        await store.close()
        return sum(counts) / elapsed, latencies

    return asyncio.run(main())


def _factory(peer: str, workdir: str, seed: int) -> Factory:
    ids = iter(uuids(seed, 100_000))
    if peer in ("eventlog", "memory"):
        from benchmarks.stores import open_eventlog

        store = open_eventlog(peer, workdir, "durable")
        sid = store.create_session().id

        def make(t: int) -> Callable[[object], None]:
            rid = store.create_run(sid, provider=PROVIDER, model=MODEL, run_id=next(ids)).id
            append = store.append_event

            def go(ev: object) -> None:
                append(rid, ev)  # type: ignore[arg-type]

            return go

        return make
    if peer == "lmdb":
        import msgspec

        from benchmarks.peers.raw_lmdb import open_env

        env = open_env(workdir, durable=True)
        encode = msgspec.msgpack.Encoder().encode

        def make_raw(t: int) -> Callable[[object], None]:
            rid = next(ids).bytes
            seq = [0]

            def go(ev: object) -> None:
                seq[0] += 1
                with env.begin(write=True) as txn:
                    txn.put(rid + _pack(seq[0]), encode(ev))

            return go

        return make_raw
    if peer == "sqlite":
        from benchmarks.peers.sqlite_store import SqliteStore

        main = SqliteStore(os.path.join(workdir, "runs.db"), synchronous="FULL")
        sid = next(ids)
        main.create_session(sid)

        def make_sql(t: int) -> Callable[[object], None]:
            rid = next(ids)
            main.create_run(rid, sid, provider=PROVIDER, model=MODEL)
            conn = main.connect()

            def go(ev: object) -> None:
                conn.append(rid, [ev])  # type: ignore[list-item]

            return go

        return make_sql
    if peer == "eventsourcing":
        from benchmarks.peers.es_app import EsRun, open_app

        app = open_app(os.path.join(workdir, "es.db"))

        def make_es(t: int) -> Callable[[object], None]:
            run = EsRun(PROVIDER, MODEL)
            app.save(run)

            def go(ev: object) -> None:
                run.append_event(type(ev).__name__, to_plain(ev))  # type: ignore[arg-type]
                app.save(run)

            return go

        return make_es
    raise ValueError(f"unknown peer {peer}")


def _run(peer: str, params: Params, workdir: str) -> dict[str, Sample]:
    threads = params["threads"]
    assert isinstance(threads, list)
    seed = _int(params, "seed")
    events: list[object] = list(run_events(seed, 500))
    if peer == "eventlog-async":

        def measure(n: int, seconds: float) -> tuple[float, list[float]]:
            return _async_round(workdir, seed, n, seconds, events)

    else:
        factory = _factory(peer, workdir, seed)

        def measure(n: int, seconds: float) -> tuple[float, list[float]]:
            return _round(factory, n, seconds, events)

    out: dict[str, Sample] = {}
    for n in threads:
        barrier()
        measure(n, _float(params, "warmup_seconds"))  # warm-up, thrown away
        rates: list[float] = []
        every: list[float] = []
        for _ in range(_int(params, "reps")):
            barrier()
            rate, lat = measure(n, _float(params, "seconds"))
            rates.append(rate)
            every.extend(lat)
        out[f"t{n}"] = Sample(
            THROUGHPUT, rates, percentiles(every), {"calls": len(every), "threads": n}
        )
    return out


def _rows(outputs: Mapping[str, PeerOutput], params: Params) -> list[Row]:
    threads = params["threads"]
    assert isinstance(threads, list)
    top = 64 if 64 in threads else max(threads)
    rows: list[Row] = []
    for n in threads:
        targets = (
            {"eventsourcing": (f"≥ 10x eventsourcing at {n} writers", ">=", 10.0)}
            if n == top
            else None
        )
        rows += compare_rows(
            8,
            f"concurrent durable writers: {n} threads, own run each",
            outputs,
            f"t{n}",
            targets=targets,  # type: ignore[arg-type]
        )
    rows.append(_scaling_row(outputs, "eventlog", min(threads), top))
    rows.append(_scaling_row(outputs, "eventlog-async", min(threads), top))
    return rows


def _scaling_row(outputs: Mapping[str, PeerOutput], peer: str, one: int, top: int) -> Row:
    """Group commit's own target: ``peer`` at ``top`` writers vs. at ``one``, same run."""
    kind = "tasks" if peer == "eventlog-async" else "threads"
    title = f"group commit: {top} writers vs. {one} ({kind})"
    ours = outputs.get(peer)
    lo = None if ours is None else ours.variants.get(f"t{one}")
    hi = None if ours is None else ours.variants.get(f"t{top}")
    if lo is None or hi is None:
        return Row(8, title, PEER_LABELS[peer], "error")
    value = ratio(hi, lo)
    return Row(
        8,
        title,
        PEER_LABELS[peer],
        f"{fmt_num(central(hi))} events/s at {top} writers, {fmt_num(central(lo))} at {one}",
        check=Check(f"≥ 10x the single-writer rate at {top} writers", value, ">=", 10.0),
    )


WORKLOAD = Workload(
    number=8,
    key="concurrent",
    title="group commit: 1, 8, 64 and 256 concurrent durable writers, each on its own run",
    peers=("eventlog", "eventlog-async", "lmdb", "sqlite", "eventsourcing", "memory"),
    params=_params,
    run=_run,
    rows=_rows,
)

if __name__ == "__main__":
    from benchmarks.runner import main

    main([WORKLOAD.key])
