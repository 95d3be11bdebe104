"""Workload 8: concurrent durable writers - 8 and 64 threads, each appending to its own run.

``python -m benchmarks.concurrent [--quick] [--json]``

Each repetition starts the threads together; each appends one event per call (durable) to its
own run until the repetition's time is up. The figure is the total events/s of all threads;
p99 is the latency of one call. LMDB (and SQLite) admit one writer at a time, so without group
commit the threads take turns: this row becomes the group-commit row when that issue lands.

- ``eventlog`` / ``memory``: one store shared by the threads, ``append_event``;
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
    THROUGHPUT,
    Params,
    PeerOutput,
    Row,
    Sample,
    Workload,
    barrier,
    compare_rows,
    percentiles,
)
from benchmarks.data import MODEL, PROVIDER, run_events, to_plain, uuids

_pack = struct.Struct(">Q").pack

#: makes one appender per thread: appender(thread index) -> append(event)
Factory = Callable[[int], Callable[[object], None]]


def _params(quick: bool) -> Params:
    return {
        "seed": 808,
        "threads": [2, 8] if quick else [8, 64],
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
    factory = _factory(peer, workdir, _int(params, "seed"))
    events: list[object] = list(run_events(_int(params, "seed"), 500))
    out: dict[str, Sample] = {}
    for n in threads:
        barrier()
        _round(factory, n, _float(params, "warmup_seconds"), events)  # warm-up, thrown away
        rates: list[float] = []
        every: list[float] = []
        for _ in range(_int(params, "reps")):
            barrier()
            rate, lat = _round(factory, n, _float(params, "seconds"), events)
            rates.append(rate)
            every.extend(lat)
        out[f"t{n}"] = Sample(
            THROUGHPUT, rates, percentiles(every), {"calls": len(every), "threads": n}
        )
    return out


def _rows(outputs: Mapping[str, PeerOutput], params: Params) -> list[Row]:
    threads = params["threads"]
    assert isinstance(threads, list)
    rows: list[Row] = []
    for n in threads:
        rows += compare_rows(
            8,
            f"concurrent durable writers: {n} threads, own run each",
            outputs,
            f"t{n}",
        )
    for row in rows:
        if row.ratio is None and not row.note:
            row.note = "(becomes the group-commit row)"
    return rows


WORKLOAD = Workload(
    number=8,
    key="concurrent",
    title="concurrent durable writers (8 and 64 threads, each on its own run)",
    peers=("eventlog", "lmdb", "sqlite", "eventsourcing", "memory"),
    params=_params,
    run=_run,
    rows=_rows,
)

if __name__ == "__main__":
    from benchmarks.runner import main

    main([WORKLOAD.key])
