"""Workload 12: 16 concurrent durable writers on PostgreSQL, across 4 processes (4 each).

``python -m benchmarks.pg_concurrent [--quick] [--json]``

A peer's worker forks 4 writer processes; each opens its own client (the store, the
application, or connections) and runs 4 writer threads, each appending one durable event per
call to its own run. A repetition starts every thread at one instant (one monotonic clock for
all processes) and stops them after the repetition's time; the figure is the total events/s of
the 16 writers, with the p99 latency of one call over every call of every repetition.

- ``eventlog-pg``: one ``RunStore`` per process, shared by its 4 threads: group commit puts the
  requests waiting in that process into one transaction; the processes take turns at the
  store's writer lock (a transaction-scoped advisory lock);
- ``eventsourcing-pg``: one application per process (a pool of 4 connections), one aggregate per
  thread, ``app.save`` per event (its ``LOCK TABLE ... IN EXCLUSIVE MODE`` serialises writers);
- ``psycopg`` (the limit): one connection per thread, one ``INSERT`` per event, each its own
  durable transaction (no lock: the server's limit for 16 clients).

Target: at least 1.5x eventsourcing's throughput; the ratio to raw psycopg is the distance from
the server's limit.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import struct
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from typing import Any

from benchmarks.core import (
    THROUGHPUT,
    Params,
    PeerOutput,
    Row,
    Sample,
    barrier,
    percentiles,
)
from benchmarks.data import MODEL, PROVIDER, run_events, to_plain, uuids
from benchmarks.pg import URL, create_schema, schema_for, store_url
from benchmarks.pg_rows import pg_rows, pg_workload

_pack = struct.Struct(">Q").pack
_FORK = multiprocessing.get_context("fork")

#: one writer thread's append(event)
Append = Callable[[Any], None]


def _params(quick: bool) -> Params:
    return {
        "seed": 1212,
        "processes": 4,
        "threads": 4,
        "seconds": 0.2 if quick else 2.0,
        "warmup_seconds": 0.1 if quick else 0.5,
        "reps": 1 if quick else 4,
    }


def _num(params: Params, key: str) -> float:
    value = params[key]
    assert isinstance(value, int | float)
    return value


def _prepare(peer: str, schema: str) -> None:
    """Create the peer's tables once, before the writers start."""
    if peer == "eventlog-pg":
        from eventlog import RunStore

        RunStore.open(store_url(schema)).close()
    elif peer == "eventsourcing-pg":
        from benchmarks.peers.es_app import open_pg_app

        create_schema(schema)
        open_pg_app(URL, schema, pool_size=1).close()
    elif peer == "psycopg":
        from benchmarks.peers.pg_raw import RawPg

        RawPg(URL, schema).close()
    else:
        raise ValueError(f"unknown peer {peer}")


def _appenders(peer: str, schema: str, seed: int, threads: int) -> tuple[list[Append], Any]:
    """One append per thread (each on its own run), and the client to close afterwards."""
    if peer == "eventlog-pg":
        from eventlog import RunStore

        store = RunStore.open(store_url(schema), durability="durable")
        sid = store.create_session().id
        out: list[Append] = []
        for rid in uuids(seed, threads):
            store.create_run(sid, provider=PROVIDER, model=MODEL, run_id=rid)

            def go(ev: Any, rid: Any = rid, append: Any = store.append_event) -> None:
                append(rid, ev)

            out.append(go)
        return out, store
    if peer == "eventsourcing-pg":
        from benchmarks.peers.es_app import EsRun, open_pg_app

        app = open_pg_app(URL, schema, pool_size=threads, create=False)
        out = []
        for _ in range(threads):
            run = EsRun(PROVIDER, MODEL)
            app.save(run)

            def go_es(ev: Any, run: EsRun = run) -> None:
                run.append_event(type(ev).__name__, to_plain(ev))
                app.save(run)

            out.append(go_es)
        return out, app
    import msgspec

    from benchmarks.peers.pg_raw import RawPg

    encode = msgspec.msgpack.Encoder(uuid_format="bytes").encode
    dbs = [RawPg(URL, schema) for _ in range(threads)]
    out = []
    for db, rid in zip(dbs, uuids(seed, threads), strict=True):
        seq = [0]

        def go_raw(ev: Any, db: RawPg = db, key: bytes = rid.bytes, seq: list[int] = seq) -> None:
            seq[0] += 1
            db.insert(key + _pack(seq[0]), encode(ev))

        out.append(go_raw)

    class _All:
        def close(self) -> None:
            for db in dbs:
                db.close()

    return out, _All()


def _round(appenders: list[Append], events: list[Any], start_at: float, stop_at: float) -> Any:
    """Every thread appends from ``start_at`` to ``stop_at``: (calls, last end, latencies µs)."""
    counts = [0] * len(appenders)
    ends = [start_at] * len(appenders)
    latencies: list[list[float]] = [[] for _ in appenders]

    def body(t: int) -> None:
        append, lat, clock = appenders[t], latencies[t], time.perf_counter
        n = 0
        while clock() < start_at:
            time.sleep(0.0005)
        while True:
            t0 = clock()
            if t0 >= stop_at:
                break
            append(events[(t * 97 + n) % len(events)])
            t1 = clock()
            lat.append((t1 - t0) * 1e6)
            n += 1
        counts[t] = n
        ends[t] = clock()

    pool = [threading.Thread(target=body, args=(t,)) for t in range(len(appenders))]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    return sum(counts), max(ends), [x for lat in latencies for x in lat]


def _writer(peer: str, schema: str, seed: int, threads: int, conn: Connection) -> None:
    """A writer process: open the client, then run each round the parent asks for."""
    try:
        appenders, client = _appenders(peer, schema, seed, threads)
        events: list[Any] = list(run_events(seed, 500))
        conn.send("ready")
        while True:
            try:
                msg = conn.recv()
            except EOFError:  # the parent went away
                break
            if msg is None:
                break
            start_at, stop_at, counted = msg
            if not counted:
                conn.send((*_round(appenders, events, start_at, stop_at), 0, 0, 0))
                continue
            from benchmarks.peers.pg_raw import count_trips

            with count_trips() as trips:
                got = _round(appenders, events, start_at, stop_at)
            conn.send((*got, trips.queries, trips.round_trips, trips.store_writes))
        client.close()
    except BaseException:
        conn.send("error: " + traceback.format_exc(limit=6))
        raise


def _run(peer: str, params: Params, workdir: str) -> dict[str, Sample]:
    schema = schema_for(os.path.join(workdir, peer))
    _prepare(peer, schema)
    procs, pipes = [], []
    seed = int(_num(params, "seed"))
    for p in range(int(_num(params, "processes"))):
        ours, theirs = _FORK.Pipe()
        proc = _FORK.Process(
            target=_writer, args=(peer, schema, seed + p, int(_num(params, "threads")), theirs)
        )
        proc.start()
        procs.append(proc)
        pipes.append(ours)
    try:
        for c in pipes:
            got = c.recv()
            if got != "ready":
                raise RuntimeError(f"a writer process failed: {got}")
        rates: list[float] = []
        every: list[float] = []
        reps = int(_num(params, "reps"))
        trips: dict[str, float] = {"queries_per_call": 0.0, "trips_per_call": 0.0}
        for rep in range(reps + 2):
            # the warm-up, the measured repetitions, then one more (untimed) that counts the
            # queries and round trips of every call in every process
            counted = rep == reps + 1
            seconds = _num(params, "warmup_seconds" if rep in (0, reps + 1) else "seconds")
            barrier()
            start_at = time.perf_counter() + 0.01
            for c in pipes:
                c.send((start_at, start_at + seconds, counted))
            results = [c.recv() for c in pipes]
            for got in results:
                if isinstance(got, str):
                    raise RuntimeError(f"a writer process failed: {got}")
            if counted:
                calls = max(1, sum(r[0] for r in results))
                trips["queries_per_call"] = sum(r[3] for r in results) / calls
                trips["trips_per_call"] = sum(r[4] for r in results) / calls
                if peer == "eventlog-pg":  # group commit: appends per write transaction
                    trips["appends_per_txn"] = calls / max(1, sum(r[5] for r in results))
            if rep == 0 or counted:
                continue
            calls = sum(r[0] for r in results)
            rates.append(calls / (max(r[1] for r in results) - start_at))
            for r in results:
                every.extend(r[2])
    finally:
        for c in pipes:  # a writer waiting for its next round stops (also after a failure)
            with contextlib.suppress(OSError):
                c.send(None)
            c.close()
        for proc in procs:
            proc.join(timeout=30)
            if proc.exitcode is None:
                proc.kill()
    writers = int(_num(params, "processes") * _num(params, "threads"))
    return {
        "writers": Sample(
            THROUGHPUT,
            rates,
            percentiles(every),
            {"calls": len(every), "writers": writers, **trips},
        )
    }


def _rows(outputs: Mapping[str, PeerOutput], params: Params) -> list[Row]:
    n, p = int(_num(params, "threads")), int(_num(params, "processes"))
    return pg_rows(
        12,
        f"PostgreSQL: {n * p} concurrent durable writers ({p} processes x {n} threads), "
        "own run each",
        outputs,
        "writers",
        es_ratio=1.5,
    )


WORKLOAD = pg_workload(
    12,
    "pg_concurrent",
    "PostgreSQL: 16 concurrent durable writers across 4 processes",
    _params,
    _run,
    _rows,
)

if __name__ == "__main__":
    from benchmarks.runner import main

    main([WORKLOAD.key])
