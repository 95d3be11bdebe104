"""Workload 5: ``get_run_state`` on random runs (µs per call).

``python -m benchmarks.run_state [--quick] [--json]``

The store holds ``runs`` runs of ``events`` events each; every call reads the state of a run
drawn at random (seeded, the same sequence for every peer), one call at a time.

- ``eventlog`` / ``memory``: ``store.get_run_state(run_id)``;
- ``lmdb`` (the limit): a read transaction, one ``get`` of the run's state bytes (a
  ``RunState`` encoded with msgspec) and its decode;
- ``sqlite``: ``SELECT state FROM runs WHERE id = ?`` and the same decode;
- ``eventsourcing``: ``app.repository.get(run_id)`` (it rebuilds the aggregate from its
  events: the library keeps no materialized state).

Target: ours ≤ 2x the time of the raw LMDB get + decode (p50).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from benchmarks.core import (
    Params,
    PeerOutput,
    Row,
    Sample,
    Workload,
    compare_rows,
    latency_sample,
    measure_latency,
)
from benchmarks.data import MODEL, PROVIDER, run_events, to_plain, uuids


def _params(quick: bool) -> Params:
    return {
        "seed": 505,
        "runs": 200 if quick else 10_000,
        "events": 10,
        "calls": 300 if quick else 20_000,
        # eventsourcing rebuilds the aggregate on every read (~1 ms): fewer calls
        "slow_calls": 50 if quick else 1_000,
        "reps": 2 if quick else 5,
        "warmup_calls": 100 if quick else 2_000,
        "per_session": 10,
    }


def _int(params: Params, key: str) -> int:
    value = params[key]
    assert isinstance(value, int)
    return value


def _run(peer: str, params: Params, workdir: str) -> dict[str, Sample]:
    seed, n_runs, per = _int(params, "seed"), _int(params, "runs"), _int(params, "per_session")
    ids = uuids(seed, n_runs + n_runs // per + 1)
    run_ids, session_ids = ids[:n_runs], ids[n_runs:]
    events = run_events(seed, _int(params, "events"))
    rng = random.Random(seed + 1)
    total = _int(params, "calls") * _int(params, "reps") + _int(params, "warmup_calls")
    picks = [rng.randrange(n_runs) for _ in range(total)]
    call: Callable[[int], object]
    if peer in ("eventlog", "memory"):
        from benchmarks.stores import create_runs, fill_runs, open_eventlog

        store = open_eventlog(peer, workdir, "fast")
        create_runs(store, run_ids, session_ids, per)
        fill_runs(store, run_ids, events)
        args = [run_ids[i] for i in picks]
        get = store.get_run_state

        def call(i: int) -> object:
            return get(args[i])

    elif peer == "lmdb":
        import msgspec

        from benchmarks.peers.raw_lmdb import open_env
        from eventlog import EventRecord, RunRecord, RunState
        from eventlog.model.status import RunStatus

        env = open_env(workdir, durable=False)
        encoder = msgspec.msgpack.Encoder(uuid_format="bytes")
        now = datetime.now(UTC)
        with env.begin(write=True) as txn:
            for k, rid in enumerate(run_ids):
                sid = session_ids[k // per]
                record = RunRecord(rid, sid, RunStatus.PENDING, PROVIDER, MODEL, {}, None, now, now)
                recs = [EventRecord(rid, s, s, ev, now) for s, ev in enumerate(events, 1)]
                txn.put(rid.bytes, encoder.encode(RunState.fold(record, recs)))
        keys = [run_ids[i].bytes for i in picks]
        decode = msgspec.msgpack.Decoder(RunState).decode
        begin = env.begin

        def call(i: int) -> object:
            with begin() as txn:
                return decode(txn.get(keys[i]))

    elif peer == "sqlite":
        from benchmarks.peers.sqlite_store import SqliteStore

        db = SqliteStore(os.path.join(workdir, "runs.db"), synchronous="NORMAL")
        db.create_sessions(session_ids)
        db.create_runs(
            [(rid, session_ids[k // per]) for k, rid in enumerate(run_ids)],
            provider=PROVIDER,
            model=MODEL,
        )
        for k in range(0, n_runs, 100):
            db.append_many([(rid, events, None) for rid in run_ids[k : k + 100]])
        args = [run_ids[i] for i in picks]
        get_state = db.get_run_state

        def call(i: int) -> object:
            return get_state(args[i])

    elif peer == "eventsourcing":
        from benchmarks.peers.es_app import EsRun, open_app

        app = open_app(os.path.join(workdir, "es.db"))
        plain = [(type(ev).__name__, to_plain(ev)) for ev in events]
        es_ids = []
        for k in range(0, n_runs, 100):
            chunk = []
            for _ in range(min(100, n_runs - k)):
                run = EsRun(PROVIDER, MODEL)
                for name, data in plain:
                    run.append_event(name, data)
                chunk.append(run)
                es_ids.append(run.id)
            app.save(*chunk)
        args = [es_ids[i] for i in picks]
        repo_get = app.repository.get

        def call(i: int) -> object:
            return repo_get(args[i])

    else:
        raise ValueError(f"unknown peer {peer}")
    calls = _int(params, "slow_calls" if peer == "eventsourcing" else "calls")
    rep_p50, every = measure_latency(
        call,
        calls=calls,
        reps=_int(params, "reps"),
        warmup_calls=min(calls, _int(params, "warmup_calls")),
    )
    return {"get": latency_sample(rep_p50, every)}


def _rows(outputs: Mapping[str, PeerOutput], params: Params) -> list[Row]:
    return compare_rows(
        5,
        f"get_run_state, random runs of {_int(params, 'runs'):,}",
        outputs,
        "get",
        targets={"lmdb": ("time ≤ 2x raw LMDB get + decode (vs. ≥ 0.5x)", ">=", 0.5)},
        labels={"lmdb": "raw py-lmdb get + decode (limit)"},
        gap="get_run_state",
    )


WORKLOAD = Workload(
    number=5,
    key="run_state",
    title="get_run_state on random runs (µs per call)",
    peers=("eventlog", "lmdb", "sqlite", "eventsourcing", "memory"),
    params=_params,
    run=_run,
    rows=_rows,
)

if __name__ == "__main__":
    from benchmarks.runner import main

    main([WORKLOAD.key])
