"""The append workloads' peers (workloads 1, 2 and 3): the same events, the same durability.

Every peer appends the same seeded events (:func:`benchmarks.data.run_events`) to a fresh run
per repetition:

- ``eventlog`` / ``memory``: ``append_event`` per event, ``append_events`` for a batch of one
  run, ``append_many`` for a batch spread over runs;
- ``lmdb``: raw py-lmdb, the limit — msgspec-encode the event, one ``put`` of
  ``run_id + seq`` → value per event; one transaction per event (or per batch);
- ``lmdb-ops``: raw py-lmdb replaying every operation the store made for the same calls
  (recorded on the real engine, see :mod:`benchmarks.peers.raw_lmdb`);
- ``sqlite`` / ``sqlite-off``: :class:`~benchmarks.peers.sqlite_store.SqliteStore`;
- ``eventsourcing``: one aggregate event per agent event, ``app.save`` per call.

The PostgreSQL rows (workloads 10 and 11), each peer in schemas of its own on the same server:

- ``eventlog-pg``: the store on PostgreSQL (``RunStore.open(postgresql://...)``), the same calls;
- ``eventsourcing-pg``: the same application on the library's PostgreSQL persistence;
- ``psycopg`` (the limit): raw psycopg, one ``INSERT`` of the msgspec-encoded event per event
  in its own transaction, one multi-row ``INSERT`` per batch
  (:class:`~benchmarks.peers.pg_raw.RawPg`).

For the PostgreSQL peers, the calls of one more (untimed) repetition are counted: the queries
they send and the round trips they wait for, per call (``queries_per_call``,
``trips_per_call`` in the sample's extra).
"""

from __future__ import annotations

import os
import random
import struct
from collections.abc import Callable
from itertools import count
from uuid import UUID

import msgspec

from benchmarks.core import THROUGHPUT, Params, Sample, measure_throughput, written_bytes
from benchmarks.data import MODEL, PROVIDER, run_events, seeded_uuid, to_plain, uuids
from benchmarks.pg_rows import PG_PEERS
from eventlog.events import Event
from eventlog.storage.config import Durability

__all__ = ["batch_append", "single_append"]

_pack = struct.Struct(">Q").pack
_encoder = msgspec.msgpack.Encoder(uuid_format="bytes")


def _int(params: Params, key: str) -> int:
    value = params[key]
    assert isinstance(value, int)
    return value


#: one call: (run index within the repetition's runs, the events appended to it) per run
Call = list[tuple[int, list[Event]]]


class _Plan:
    """What one peer does: ``runs_per_rep`` fresh runs per repetition, then ``calls``.

    Each call is a list of (run index, events); a single-event append is one call with one
    event, a batch of one run one call with 100 events, a spread batch one call with one
    event for each of 100 runs.
    """

    def __init__(self, seed: int, calls: list[Call], runs: int) -> None:
        self.seed = seed
        self.calls = calls
        self.runs_per_rep = runs
        self.events = sum(len(evs) for call in calls for _, evs in call)
        self._ids = (seeded_uuid_from(seed, i) for i in count())

    def next_runs(self) -> list[UUID]:
        return [next(self._ids) for _ in range(self.runs_per_rep)]


def seeded_uuid_from(seed: int, i: int) -> UUID:
    """The ``i``-th run id of ``seed`` (stable across processes)."""
    return seeded_uuid(random.Random(seed * 1_000_003 + i))


def _single_plan(params: Params) -> _Plan:
    n = _int(params, "events")
    events = list(run_events(_int(params, "seed"), n))
    return _Plan(_int(params, "seed"), [[(0, [ev])] for ev in events], 1)


def _batch_plan(params: Params, spread: bool) -> _Plan:
    size, batches = _int(params, "batch"), _int(params, "batches")
    events = list(run_events(_int(params, "seed"), size * batches))
    if not spread:
        return _Plan(
            _int(params, "seed"),
            [[(0, events[b * size : (b + 1) * size])] for b in range(batches)],
            1,
        )
    return _Plan(
        _int(params, "seed") + 1,
        [[(k, [events[b * size + k]]) for k in range(size)] for b in range(batches)],
        size,
    )


def _run(peer: str, plan: _Plan, workdir: str, durable: bool, reps: int) -> Sample:
    runners: dict[str, Callable[[_Plan, str, bool], Callable[[], Callable[[], int]]]] = {
        "eventlog": _eventlog,
        "memory": _eventlog,
        "lmdb": _lmdb,
        "lmdb-ops": _lmdb_ops,
        "sqlite": _sqlite,
        "sqlite-off": _sqlite,
        "eventsourcing": _eventsourcing,
        "eventlog-pg": _eventlog,
        "eventsourcing-pg": _eventsourcing,
        "psycopg": _psycopg,
    }
    inner = runners[peer](plan, os.path.join(workdir, peer), durable)
    written = [0, 0]  # bytes handed to write(), events appended

    def setup() -> Callable[[], int]:
        work = inner()

        def counted() -> int:
            before = written_bytes()
            n = work()
            written[0] += written_bytes() - before
            written[1] += n
            return n

        return counted

    rates = measure_throughput(setup, reps=reps, warmup=1)
    extra: dict[str, float | int | str | list[float]] = {
        "written_per_event": written[0] / max(1, written[1])
    }
    if peer in PG_PEERS:  # what the calls ask of the server
        from benchmarks.peers.pg_raw import count_trips

        work = inner()
        with count_trips() as trips:
            work()
        extra["queries_per_call"] = trips.queries / len(plan.calls)
        extra["trips_per_call"] = trips.round_trips / len(plan.calls)
    return Sample(THROUGHPUT, rates, extra=extra)


def single_append(peer: str, params: Params, workdir: str, *, durable: bool) -> dict[str, Sample]:
    """Workloads 1 and 3: one event per call."""
    return {"single": _run(peer, _single_plan(params), workdir, durable, _int(params, "reps"))}


def batch_append(peer: str, params: Params, workdir: str) -> dict[str, Sample]:
    """Workload 2: batches of ``batch`` events of one run, and spread over ``batch`` runs."""
    out = {}
    for name, spread in (("one_run", False), ("spread", True)):
        plan = _batch_plan(params, spread)
        out[name] = _run(peer, plan, os.path.join(workdir, name), True, _int(params, "reps"))
    return out


# -- the peers ------------------------------------------------------------------------------
Setup = Callable[[], Callable[[], int]]


def _eventlog(plan: _Plan, path: str, durable: bool) -> Setup:
    from eventlog import AppendRequest, RunStore

    peer = os.path.basename(path)
    durability: Durability = "durable" if durable else "fast"
    if peer == "memory":
        store = RunStore.in_memory()
    elif peer == "eventlog-pg":
        from benchmarks.pg import schema_for, store_url

        store = RunStore.open(store_url(schema_for(path)), durability=durability)
    else:
        store = RunStore.open(path, durability=durability)
    sid = store.create_session(session_id=uuids(plan.seed, 1)[0]).id

    def setup() -> Callable[[], int]:
        rids = plan.next_runs()
        for rid in rids:
            store.create_run(sid, provider=PROVIDER, model=MODEL, run_id=rid)
        calls = [[(rids[i], evs) for i, evs in call] for call in plan.calls]
        append_event, append_events, append_many = (
            store.append_event,
            store.append_events,
            store.append_many,
        )

        def work() -> int:
            for call in calls:
                if len(call) > 1:
                    append_many([AppendRequest(rid, evs) for rid, evs in call])
                elif len(call[0][1]) == 1:
                    append_event(call[0][0], call[0][1][0])
                else:
                    append_events(call[0][0], call[0][1])
            return plan.events

        return work

    return setup


def _lmdb(plan: _Plan, path: str, durable: bool) -> Setup:
    from benchmarks.peers.raw_lmdb import open_env

    os.makedirs(path)
    env = open_env(path, durable=durable)
    encode = _encoder.encode

    def setup() -> Callable[[], int]:
        rids = [r.bytes for r in plan.next_runs()]
        heads = [0] * len(rids)
        calls: list[list[tuple[bytes, int, Event]]] = []
        for call in plan.calls:
            ops = []
            for i, evs in call:
                for ev in evs:
                    heads[i] += 1
                    ops.append((rids[i], heads[i], ev))
            calls.append(ops)

        def work() -> int:
            for ops in calls:
                with env.begin(write=True) as txn:
                    for rid, seq, ev in ops:
                        txn.put(rid + _pack(seq), encode(ev))
            return plan.events

        return work

    return setup


def _lmdb_ops(plan: _Plan, path: str, durable: bool) -> Setup:
    """Record what the store does for the same calls, replay it with raw py-lmdb."""
    from benchmarks.peers.raw_lmdb import OpsRecorder, OpsReplayer
    from eventlog import AppendRequest, RunStore
    from eventlog.storage.memory import MemoryBackend

    recorder = OpsRecorder(MemoryBackend())
    store = RunStore(recorder)
    sid = store.create_session(session_id=uuids(plan.seed, 1)[0]).id
    os.makedirs(path)
    replayer = OpsReplayer(path, durable=durable)
    replayer.replay(replayer.compile(recorder.take()))  # format stamp, projector metadata, session

    def setup() -> Callable[[], int]:
        rids = plan.next_runs()
        for rid in rids:
            store.create_run(sid, provider=PROVIDER, model=MODEL, run_id=rid)
        replayer.replay(replayer.compile(recorder.take()))
        for call in plan.calls:
            reqs = [AppendRequest(rids[i], evs) for i, evs in call]
            store.append_many(reqs)
        timed = replayer.compile(recorder.take())

        def work() -> int:
            replayer.replay(timed)
            return plan.events

        return work

    return setup


def _psycopg(plan: _Plan, path: str, durable: bool) -> Setup:
    """The server's limit: one INSERT per event per transaction, one multi-row one per batch."""
    from benchmarks.peers.pg_raw import RawPg
    from benchmarks.pg import URL, schema_for

    if not durable:
        raise ValueError("the PostgreSQL rows are durable")
    db = RawPg(URL, schema_for(path))
    encode = _encoder.encode

    def setup() -> Callable[[], int]:
        rids = [r.bytes for r in plan.next_runs()]
        heads = [0] * len(rids)
        calls: list[tuple[list[bytes], list[Event]]] = []
        for call in plan.calls:
            keys: list[bytes] = []
            values: list[Event] = []
            for i, evs in call:
                for ev in evs:
                    heads[i] += 1
                    keys.append(rids[i] + _pack(heads[i]))
                    values.append(ev)
            calls.append((keys, values))
        insert, insert_many = db.insert, db.insert_many

        def work() -> int:
            for keys, evs in calls:
                if len(keys) == 1:
                    insert(keys[0], encode(evs[0]))
                else:
                    insert_many(keys, [encode(ev) for ev in evs])
            return plan.events

        return work

    return setup


def _sqlite(plan: _Plan, path: str, durable: bool) -> Setup:
    from benchmarks.peers.sqlite_store import SqliteStore

    peer = os.path.basename(path)
    sync = "FULL" if durable else ("OFF" if peer == "sqlite-off" else "NORMAL")
    os.makedirs(path)
    store = SqliteStore(os.path.join(path, "runs.db"), synchronous=sync)
    sid = uuids(plan.seed, 1)[0]
    store.create_session(sid)

    def setup() -> Callable[[], int]:
        rids = plan.next_runs()
        store.create_runs([(rid, sid) for rid in rids], provider=PROVIDER, model=MODEL)
        calls = [[(rids[i], evs, None) for i, evs in call] for call in plan.calls]

        def work() -> int:
            for call in calls:
                if len(call) == 1:
                    rid, evs, _ = call[0]
                    store.append(rid, evs)
                else:
                    store.append_many(call)
            return plan.events

        return work

    return setup


def _eventsourcing(plan: _Plan, path: str, durable: bool) -> Setup:
    from benchmarks.peers.es_app import EsRun, open_app, open_pg_app

    if not durable:
        raise ValueError("eventsourcing has no non-durable mode to compare with")
    if os.path.basename(path) == "eventsourcing-pg":
        from benchmarks.pg import URL, create_schema, schema_for

        schema = schema_for(path)
        create_schema(schema)
        app = open_pg_app(URL, schema)
    else:
        os.makedirs(path)
        app = open_app(os.path.join(path, "es.db"))

    def setup() -> Callable[[], int]:
        runs = [EsRun(PROVIDER, MODEL) for _ in range(plan.runs_per_rep)]
        app.save(*runs)
        calls = plan.calls

        def work() -> int:
            for call in calls:
                touched = []
                for i, evs in call:
                    run = runs[i]
                    for ev in evs:
                        run.append_event(type(ev).__name__, to_plain(ev))
                    touched.append(run)
                app.save(*touched)
            return plan.events

        return work

    return setup
