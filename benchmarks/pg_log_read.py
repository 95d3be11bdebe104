"""Workload 18: read the log on PostgreSQL in pages - log read and catch-up (events/s).

``python -m benchmarks.pg_log_read [--quick] [--json]``

One store holds 10,000 events of 100 runs (100 each, appended run by run); each peer reads all
of them in position order, 1,000 per page:

- ``eventlog-pg``, ``log``: ``store.read_log(after_position=..., limit=1000)`` until empty
  (every event decoded into its typed ``EventRecord``); ``catchup``: a subscription from the
  start with ``batch_size=1000`` that ends when it has caught up (``timeout=0``);
- ``eventsourcing-pg`` (both rows): its PostgreSQL recorder's
  ``PostgresApplicationRecorder.select_notifications(start, 1000)`` until empty (it returns
  the stored notifications without decoding their state; its 100 aggregates' creation events
  are notifications too, so it reads 10,100);
- ``psycopg`` (the limit): ``SELECT k, v ... WHERE k > last ORDER BY k LIMIT 1000`` of a table
  holding the store's exact envelope bytes keyed by position, and a msgspec decode of each
  into a minimal ``(type, version, position)`` struct.

Target: at least eventsourcing's throughput (both rows); the ratio to raw psycopg is the
distance from the server's limit.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import msgspec

from benchmarks.core import THROUGHPUT, Params, PeerOutput, Row, Sample, measure_throughput
from benchmarks.data import MODEL, PROVIDER, run_events, to_plain, uuids
from benchmarks.pg import URL, create_schema, schema_for, store_url
from benchmarks.pg_rows import pg_rows, pg_workload
from benchmarks.replay import Minimal

_pack = struct.Struct(">Q").pack
VARIANTS = ("log", "catchup")


def _params(quick: bool) -> Params:
    return {
        "seed": 1818,
        "events": 500 if quick else 10_000,
        "runs": 10 if quick else 100,
        "page": 1000,
        "reps": 1 if quick else 10,
    }


def _int(params: Params, key: str) -> int:
    value = params[key]
    assert isinstance(value, int)
    return value


def _ours(params: Params, path: str) -> dict[str, Callable[[], int]]:
    from eventlog import RunStore

    n, runs, page = _int(params, "events"), _int(params, "runs"), _int(params, "page")
    seed = _int(params, "seed")
    store = RunStore.open(store_url(schema_for(path)), durability="fast")
    sid = store.create_session().id
    for i, rid in enumerate(uuids(seed, runs)):
        store.create_run(sid, provider=PROVIDER, model=MODEL, run_id=rid)
        store.append_events(rid, run_events(seed + i, n // runs, sid))
    store.flush()

    def log() -> int:
        after = count = 0
        while got := store.read_log(after_position=after, limit=page):
            count += len(got)
            after = got[-1].position
        assert count == n
        return count

    def catchup() -> int:
        with store.subscribe(batch_size=page, timeout=0) as sub:
            count = sum(1 for _ in sub)
        assert count == n
        return count

    return {"log": log, "catchup": catchup}


def _eventsourcing(params: Params, path: str) -> Callable[[], int]:
    from benchmarks.peers.es_app import EsRun, open_pg_app

    n, runs, page = _int(params, "events"), _int(params, "runs"), _int(params, "page")
    seed = _int(params, "seed")
    schema = schema_for(path)
    create_schema(schema)
    app = open_pg_app(URL, schema)
    for i in range(runs):
        run = EsRun(PROVIDER, MODEL)
        for ev in run_events(seed + i, n // runs):
            run.append_event(type(ev).__name__, to_plain(ev))
        app.save(run)
    recorder = app.recorder
    select = recorder.select_notifications

    def work(app: object = app) -> int:  # (holds the application: it closes when collected)
        start, count = 1, 0
        while got := select(start, page):
            count += len(got)
            start = got[-1].id + 1
        assert count == n + runs  # the aggregates' creation events are notifications too
        return count

    return work


def _raw(params: Params, path: str) -> Callable[[], int]:
    from benchmarks.peers.pg_raw import RawPg
    from eventlog.storage.codec import encode_event

    n, runs, page = _int(params, "events"), _int(params, "runs"), _int(params, "page")
    seed = _int(params, "seed")
    db = RawPg(URL, schema_for(path))
    now = datetime.now(UTC)
    position = 0
    for i in range(runs):
        events = run_events(seed + i, n // runs)
        keys = [_pack(position + k) for k in range(1, len(events) + 1)]
        db.insert_many(
            keys, [encode_event(ev, position + k, now, None) for k, ev in enumerate(events, 1)]
        )
        position += len(events)
    decode = msgspec.msgpack.Decoder(Minimal).decode

    def work() -> int:
        after, count, last = _pack(0), 0, 0
        while rows := db.page(after, page):
            for _, v in rows:
                last = decode(v).position
            count += len(rows)
            after = rows[-1][0]
        assert count == last == n
        return count

    return work


def _run(peer: str, params: Params, workdir: str) -> dict[str, Sample]:
    path = os.path.join(workdir, peer)
    works: dict[str, Callable[[], int]]
    if peer == "eventlog-pg":
        works = _ours(params, path)
    elif peer == "eventsourcing-pg":
        one = _eventsourcing(params, path)
        works = dict.fromkeys(VARIANTS, one)
    elif peer == "psycopg":
        one = _raw(params, path)
        works = dict.fromkeys(VARIANTS, one)
    else:
        raise ValueError(f"unknown peer {peer}")
    from benchmarks.peers.pg_raw import trips_per_call

    out = {}
    # the pages of events, then the empty page that tells every peer it is done
    pages = -(-_int(params, "events") // _int(params, "page")) + 1
    for variant, work in works.items():
        reps = measure_throughput(lambda work=work: work, reps=_int(params, "reps"), warmup=1)  # type: ignore[misc]
        trips = trips_per_call(lambda i, work=work: work(), calls=2)  # type: ignore[misc]
        per_page = {k: v / pages for k, v in trips.items()}  # a call here reads every page
        out[variant] = Sample(THROUGHPUT, reps, extra=dict(per_page))
    return out


def _rows(outputs: Mapping[str, PeerOutput], params: Params) -> list[Row]:
    n, page = _int(params, "events"), _int(params, "page")
    labels = {"psycopg": "raw psycopg SELECT page + decode (limit)"}
    what = f"{n:,} events in pages of {page:,} (trips per page, the last one empty)"
    return [
        *pg_rows(18, f"PostgreSQL: log read, read_log, {what}", outputs, "log", labels=labels),
        *pg_rows(18, f"PostgreSQL: catch-up, subscribe, {what}", outputs, "catchup", labels=labels),
    ]


WORKLOAD = pg_workload(
    18,
    "pg_log_read",
    "PostgreSQL: read the log in pages of 1,000 (log read, catch-up)",
    _params,
    _run,
    _rows,
)

if __name__ == "__main__":
    from benchmarks.runner import main

    main([WORKLOAD.key])
