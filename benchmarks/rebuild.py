"""Workload 9: rebuild every projection over the whole log (events/s).

``python -m benchmarks.rebuild [--quick] [--json]``

The log holds ``runs`` runs of ``events`` seeded events each; a repetition rebuilds every view
from it.

- ``eventlog`` / ``memory``: ``store.rebuild_projections()`` - run state, status index, session
  listing and executions, in one write transaction;
- ``lmdb`` (the read side's limit): a cursor over the log in position order, one ``get`` +
  msgspec decode of a minimal struct per event, and a count per run (it writes nothing);
- ``sqlite``: the sqlite3 store rebuilding its derived tables as its user would: read every
  event in position order, decode, fold each run's state, recompute each session's last
  activity and run count, write both tables back (``executemany``; the status index is
  SQLite's own index on the status column);
- ``eventsourcing``: read every stored event through the notification log, map it back to a
  domain event and fold a per-aggregate view (what a projection does with the library).

Target: ≥ 1x the sqlite3 store's rebuild (events/s, the same log).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from benchmarks.core import (
    THROUGHPUT,
    Params,
    PeerOutput,
    Row,
    Sample,
    Workload,
    compare_rows,
    measure_throughput,
)
from benchmarks.data import MODEL, PROVIDER, run_events, to_plain, uuids

_pack = struct.Struct(">Q").pack


def _params(quick: bool) -> Params:
    return {
        "seed": 909,
        "runs": 10 if quick else 100,
        "events": 100 if quick else 1000,
        "per_session": 10,
        "reps": 1 if quick else 3,
    }


def _int(params: Params, key: str) -> int:
    value = params[key]
    assert isinstance(value, int)
    return value


def _run(peer: str, params: Params, workdir: str) -> dict[str, Sample]:
    seed, n_runs, per = _int(params, "seed"), _int(params, "runs"), _int(params, "per_session")
    ids = uuids(seed, n_runs + n_runs // per + 1)
    run_ids, session_ids = ids[:n_runs], ids[n_runs:]
    templates = [run_events(seed + i, _int(params, "events")) for i in range(4)]
    total = n_runs * _int(params, "events")
    work: Callable[[], int]
    if peer in ("eventlog", "memory"):
        from benchmarks.stores import create_runs, open_eventlog
        from eventlog import AppendRequest

        store = open_eventlog(peer, workdir, "fast")
        create_runs(store, run_ids, session_ids, per)
        # interleave the runs in the log, as concurrent runs are
        chunk = 50
        for k in range(0, _int(params, "events"), chunk):
            store.append_many(
                [AppendRequest(r, templates[i % 4][k : k + chunk]) for i, r in enumerate(run_ids)]
            )

        def work() -> int:
            store.rebuild_projections()
            return total

    elif peer == "lmdb":
        import msgspec

        from benchmarks.peers.raw_lmdb import open_env
        from benchmarks.replay import Minimal
        from eventlog.storage.codec import encode_event

        env = open_env(workdir, durable=False)
        now = datetime.now(UTC)
        position = 0
        with env.begin(write=True) as txn:
            for k in range(0, _int(params, "events"), 50):
                for i, r in enumerate(run_ids):
                    for j, ev in enumerate(templates[i % 4][k : k + 50], k + 1):
                        position += 1
                        key = r.bytes + _pack(j)
                        txn.put(b"\x02" + key, encode_event(ev, position, now, None))
                        txn.put(b"\x03" + _pack(position), key)
        decode = msgspec.msgpack.Decoder(Minimal).decode

        def work() -> int:
            counts: dict[bytes, int] = {}
            n = 0
            with env.begin() as txn:
                cur = txn.cursor()
                cur.set_range(b"\x03")
                for _, ref in cur:
                    ev = decode(txn.get(b"\x02" + ref))
                    counts[ref[:16]] = counts.get(ref[:16], 0) + (ev.version > 0)
                    n += 1
            assert n == total
            return total

    elif peer == "sqlite":
        from benchmarks.peers.sqlite_store import SqliteStore

        db = SqliteStore(os.path.join(workdir, "runs.db"), synchronous="NORMAL")
        db.create_sessions(session_ids)
        db.create_runs(
            [(r, session_ids[i // per]) for i, r in enumerate(run_ids)],
            provider=PROVIDER,
            model=MODEL,
        )
        for k in range(0, _int(params, "events"), 50):
            db.append_many([(r, templates[i % 4][k : k + 50], None) for i, r in enumerate(run_ids)])

        def work() -> int:
            n = db.rebuild_views()
            assert n == total
            return total

    elif peer == "eventsourcing":
        from benchmarks.peers.es_app import EsRun, open_app

        app = open_app(os.path.join(workdir, "es.db"))
        runs = [EsRun(PROVIDER, MODEL) for _ in run_ids]
        app.save(*runs)
        for k in range(0, _int(params, "events"), 50):
            for i, run in enumerate(runs):
                for ev in templates[i % 4][k : k + 50]:
                    run.append_event(type(ev).__name__, to_plain(ev))
            app.save(*runs)
        mapper, recorder = app.mapper, app.recorder

        def work() -> int:
            view: dict[object, int] = {}
            n = 0
            start = 1
            while True:
                page = recorder.select_notifications(start, 1000)
                if not page:
                    break
                for item in page:
                    event = mapper.to_domain_event(item)
                    view[event.originator_id] = view.get(event.originator_id, 0) + 1
                    n += 1
                start = page[-1].id + 1
            assert n == total + n_runs  # and one "created" event per aggregate
            return total

    else:
        raise ValueError(f"unknown peer {peer}")
    reps = measure_throughput(lambda: work, reps=_int(params, "reps"), warmup=1)
    return {"rebuild": Sample(THROUGHPUT, reps, extra={"events": total})}


def _rows(outputs: Mapping[str, PeerOutput], params: Params) -> list[Row]:
    total = _int(params, "runs") * _int(params, "events")
    return compare_rows(
        9,
        f"rebuild all projections over {total:,} events",
        outputs,
        "rebuild",
        targets={"sqlite": ("≥ 1x the sqlite3 store's rebuild", ">=", 1.0)},
        labels={"lmdb": "raw py-lmdb log scan + decode (read limit)"},
        gap="rebuild",
    )


WORKLOAD = Workload(
    number=9,
    key="rebuild",
    title="rebuild all projections over the whole log",
    peers=("eventlog", "lmdb", "sqlite", "eventsourcing", "memory"),
    params=_params,
    run=_run,
    rows=_rows,
)

if __name__ == "__main__":
    from benchmarks.runner import main

    main([WORKLOAD.key])
