"""Workload 13: replay on PostgreSQL - read, decode and fold a run of 10k events (events/s).

``python -m benchmarks.pg_replay [--quick] [--json]``

- ``eventlog-pg``: ``RunState.fold(store.get_run(id), store.list_events(id))``;
- ``eventsourcing-pg``: ``app.repository.get(id)`` (the aggregate rebuilt from its events);
- ``psycopg`` (the limit): one ``SELECT v ... WHERE k >= first AND k < stop ORDER BY k`` of
  the run's rows, which hold the store's exact envelope bytes, and a msgspec decode of each
  into a minimal ``(type, version, position)`` struct (as the raw LMDB limit of workload 4).

Target: at least eventsourcing's throughput; the ratio to the raw scan is the distance from
the server's limit.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import msgspec

from benchmarks.core import (
    THROUGHPUT,
    Params,
    PeerOutput,
    Row,
    Sample,
    measure_throughput,
)
from benchmarks.data import MODEL, PROVIDER, run_events, uuids
from benchmarks.pg import URL, create_schema, schema_for, store_url
from benchmarks.pg_rows import pg_rows, pg_workload
from benchmarks.replay import Minimal, eventsourcing_replay

_pack = struct.Struct(">Q").pack


def _params(quick: bool) -> Params:
    return {"seed": 1313, "events": 500 if quick else 10_000, "reps": 1 if quick else 10}


def _int(params: Params, key: str) -> int:
    value = params[key]
    assert isinstance(value, int)
    return value


def _run(peer: str, params: Params, workdir: str) -> dict[str, Sample]:
    n = _int(params, "events")
    sid, rid = uuids(_int(params, "seed"), 2)
    events = run_events(_int(params, "seed"), n, sid)
    path = os.path.join(workdir, peer)
    work: Callable[[], int]
    if peer == "eventlog-pg":
        from eventlog import RunState, RunStore

        store = RunStore.open(store_url(schema_for(path)), durability="fast")
        store.create_session(session_id=sid)
        store.create_run(sid, provider=PROVIDER, model=MODEL, run_id=rid)
        for k in range(0, n, 1000):
            store.append_events(rid, events[k : k + 1000])
        store.flush()

        def work() -> int:
            record = store.get_run(rid)
            assert record is not None
            state = RunState.fold(record, store.list_events(rid))
            assert state.event_count == n
            return n

    elif peer == "psycopg":
        from benchmarks.peers.pg_raw import RawPg
        from eventlog.storage.codec import encode_event

        db = RawPg(URL, schema_for(path))
        key = rid.bytes
        now = datetime.now(UTC)
        for k in range(0, n, 1000):
            db.insert_many(
                [key + _pack(seq) for seq in range(k + 1, min(n, k + 1000) + 1)],
                [
                    encode_event(ev, seq, now, None)
                    for seq, ev in enumerate(events[k : k + 1000], k + 1)
                ],
            )
        decode = msgspec.msgpack.Decoder(Minimal).decode
        first, stop = key + _pack(1), key + _pack(n + 1)

        def work() -> int:
            count = last = 0
            for v in db.values(first, stop):
                last = decode(v).position
                count += 1
            assert count == n
            assert last == n
            return n

    elif peer == "eventsourcing-pg":
        from benchmarks.peers.es_app import open_pg_app

        schema = schema_for(path)
        create_schema(schema)
        work = eventsourcing_replay(open_pg_app(URL, schema), events)

    else:
        raise ValueError(f"unknown peer {peer}")
    reps = measure_throughput(lambda: work, reps=_int(params, "reps"), warmup=1)
    from benchmarks.peers.pg_raw import trips_per_call

    trips = trips_per_call(lambda i: work(), calls=2)
    return {"replay": Sample(THROUGHPUT, reps, extra=dict(trips))}


def _rows(outputs: Mapping[str, PeerOutput], params: Params) -> list[Row]:
    return pg_rows(
        13,
        f"PostgreSQL: replay a run of {_int(params, 'events'):,} events (read + decode + fold)",
        outputs,
        "replay",
        labels={"psycopg": "raw psycopg SELECT + decode (limit)"},
    )


WORKLOAD = pg_workload(
    13,
    "pg_replay",
    "PostgreSQL: replay, read + decode + fold a run of 10k events",
    _params,
    _run,
    _rows,
)

if __name__ == "__main__":
    from benchmarks.runner import main

    main([WORKLOAD.key])
