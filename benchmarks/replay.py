"""Workload 4: replay - read, decode and fold a run of 10k events (events/s).

``python -m benchmarks.replay [--quick] [--json]``

- ``eventlog`` / ``memory``: ``RunState.fold(store.get_run(id), store.list_events(id))``;
- ``lmdb`` (the limit): one read transaction, a cursor over the run's keys, msgspec-decode of
  each stored envelope (the store's exact bytes) into a minimal struct ``(type, version,
  position)``, and a count;
- ``lmdb-full`` (the floor of our work): the same cursor scan, then the run's values joined
  and decoded **whole** - envelope and typed payload, what ``list_events`` must return - in
  one msgspec call, with no Python per event; what decoding every field costs with zero
  Python, beside the minimal struct the limit decodes;
- ``sqlite``: ``SELECT … ORDER BY seq``, decode each payload, the same ``RunState.fold``;
- ``eventsourcing``: ``app.repository.get(id)`` (the aggregate rebuilt from its events).

Targets: ≥ 0.6x the raw LMDB scan, ≥ 2x the sqlite3 store, ≥ 15x eventsourcing.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Union
from uuid import UUID

import msgspec

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
from eventlog.events import Event

if TYPE_CHECKING:
    from benchmarks.peers.es_app import RunsApp

_pack = struct.Struct(">Q").pack


class Minimal(msgspec.Struct, array_like=True):
    """The least a reader can decode of a stored event (later fields are skipped)."""

    type: str
    version: int
    position: int


def _raw_run(workdir: str, key: bytes, events: Sequence[Event]) -> tuple[Any, bytes]:
    """A raw LMDB env holding the run's stored envelopes at ``key + seq``; (env, key)."""
    from benchmarks.peers.raw_lmdb import open_env
    from eventlog.storage.codec import encode_event

    env = open_env(workdir, durable=False)
    now = datetime.now(UTC)
    with env.begin(write=True) as txn:
        for seq, ev in enumerate(events, 1):
            txn.put(key + _pack(seq), encode_event(ev, seq, now, None), append=True)
    return env, key


def full_decoder() -> msgspec.msgpack.Decoder[list[Any]]:
    """A decoder of a msgpack array of stored envelopes, payloads typed (every built-in)."""
    from eventlog.events import EVENT_TYPES

    payload: Any = Union[tuple(EVENT_TYPES.values())]  # noqa: UP007
    envelope = msgspec.defstruct(
        "FullEnvelope",
        [
            ("type", str),
            ("version", int),
            ("position", int),
            ("recorded_at", datetime),
            ("event_id", UUID | None),
            ("payload", payload),
            ("check", int),
        ],
        array_like=True,
        gc=False,
    )
    return msgspec.msgpack.Decoder(list[envelope])  # type: ignore[valid-type]


def eventsourcing_replay(app: RunsApp, events: Sequence[Event]) -> Callable[[], int]:
    """Save ``events`` as one aggregate's (1,000 per ``save``); the work rebuilds it."""
    from benchmarks.peers.es_app import EsRun

    n = len(events)
    run = EsRun(PROVIDER, MODEL)
    for k in range(0, n, 1000):
        for ev in events[k : k + 1000]:
            run.append_event(type(ev).__name__, to_plain(ev))
        app.save(run)
    run_id = run.id

    def work() -> int:
        got: EsRun = app.repository.get(run_id)
        assert got.event_count == n
        return n

    return work


def _params(quick: bool) -> Params:
    return {"seed": 404, "events": 500 if quick else 10_000, "reps": 2 if quick else 15}


def _int(params: Params, key: str) -> int:
    value = params[key]
    assert isinstance(value, int)
    return value


def _run(peer: str, params: Params, workdir: str) -> dict[str, Sample]:
    n = _int(params, "events")
    sid, rid = uuids(_int(params, "seed"), 2)
    events = run_events(_int(params, "seed"), n, sid)
    work: Callable[[], int]
    if peer in ("eventlog", "memory"):
        from benchmarks.stores import open_eventlog
        from eventlog import RunState

        store = open_eventlog(peer, workdir, "fast")
        store.create_session(session_id=sid)
        store.create_run(sid, provider=PROVIDER, model=MODEL, run_id=rid)
        for k in range(0, n, 1000):
            store.append_events(rid, events[k : k + 1000])

        def work() -> int:
            record = store.get_run(rid)
            assert record is not None
            state = RunState.fold(record, store.list_events(rid))
            assert state.event_count == n
            return n

    elif peer == "lmdb":
        env, key = _raw_run(workdir, rid.bytes, events)
        decode = msgspec.msgpack.Decoder(Minimal).decode
        first = key + _pack(1)

        def work() -> int:
            count = last = 0
            with env.begin() as txn:
                cur = txn.cursor()
                if cur.set_range(first):
                    for k, v in cur:
                        if k[:16] != key:
                            break
                        last = decode(v).position
                        count += 1
            assert count == n
            assert last == n
            return n

    elif peer == "lmdb-full":
        from itertools import islice

        env, key = _raw_run(workdir, rid.bytes, events)
        decode_all = full_decoder().decode
        first = key + _pack(1)

        def work() -> int:
            with env.begin() as txn:
                cur = txn.cursor()
                cur.set_range(first)
                values = list(islice(cur.iternext(keys=False), n))
            decoded = decode_all(b"\xdd" + len(values).to_bytes(4, "big") + b"".join(values))
            assert len(decoded) == n
            assert decoded[-1].position == n
            return n

    elif peer == "sqlite":
        from benchmarks.peers.sqlite_store import SqliteStore
        from eventlog import RunState

        db = SqliteStore(os.path.join(workdir, "runs.db"), synchronous="NORMAL")
        db.create_session(sid)
        db.create_run(rid, sid, provider=PROVIDER, model=MODEL)
        for k in range(0, n, 1000):
            db.append(rid, events[k : k + 1000])

        def work() -> int:
            record = db.get_run(rid)
            assert record is not None
            state = RunState.fold(record, db.list_events(rid))
            assert state.event_count == n
            return n

    elif peer == "eventsourcing":
        from benchmarks.peers.es_app import open_app

        work = eventsourcing_replay(open_app(os.path.join(workdir, "es.db")), events)

    else:
        raise ValueError(f"unknown peer {peer}")
    reps = measure_throughput(lambda: work, reps=_int(params, "reps"), warmup=1)
    return {"replay": Sample(THROUGHPUT, reps)}


def _rows(outputs: Mapping[str, PeerOutput], params: Params) -> list[Row]:
    return compare_rows(
        4,
        f"replay a run of {_int(params, 'events'):,} events (read + decode + fold)",
        outputs,
        "replay",
        targets={
            "lmdb": ("≥ 0.6x raw LMDB cursor scan + msgspec decode", ">=", 0.6),
            "sqlite": ("≥ 2x the sqlite3 store", ">=", 2.0),
            "eventsourcing": ("≥ 15x eventsourcing", ">=", 15.0),
        },
        labels={
            "lmdb": "raw py-lmdb scan + decode (limit)",
            "lmdb-full": "raw py-lmdb scan + full decode, no Python per event (floor)",
        },
        gap="replay",
    )


WORKLOAD = Workload(
    number=4,
    key="replay",
    title="replay: read + decode + fold a run of 10k events",
    peers=("eventlog", "lmdb", "lmdb-full", "sqlite", "eventsourcing", "memory"),
    params=_params,
    run=_run,
    rows=_rows,
)

if __name__ == "__main__":
    from benchmarks.runner import main

    main([WORKLOAD.key])
