"""Workload 6: ``list_runs_filtered(status=..., limit=100)`` with 10k, 100k and 1M runs.

``python -m benchmarks.listing [--quick] [--json]``

One store per peer grows through the sizes: runs are created one by one (``create_run``;
ten runs per session), every tenth run fails (a ``RunFailed`` event), and at each size the
page of the 100 newest failed runs is listed, one call at a time. The time must stay flat as
the store grows: the status index walks 100 entries of one list whatever the number of runs.

- ``eventlog``: the LMDB store (``durability="fast"`` while filling: it is not measured);
- ``lmdb`` (a limit): a raw index ``status + newest-first time + run id`` walked by a cursor,
  then one ``get`` + decode of each run record;
- ``sqlite``: ``WHERE status = ? ORDER BY created_us DESC LIMIT 100`` on a
  ``(status, created_us)`` index, decoding each record and state;
- ``memory``: the in-memory store, at the sizes it can reach in the time budget (its sorted
  key lists make every insert O(n)).

Targets: at every size, the time ≤ 1.0x the sqlite3 store's (p50); and the time at 1M runs
≤ 1.5x the time at 10k runs (p50, drift-corrected by the reference store).
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from uuid import UUID

from benchmarks.core import (
    Check,
    Params,
    PeerOutput,
    Row,
    Sample,
    Workload,
    compare_rows,
    fmt_num,
    latency_sample,
    measure_latency,
    percentiles,
)
from benchmarks.data import MODEL, PROVIDER, uuids

_pack = struct.Struct(">Q").pack


def _params(quick: bool) -> Params:
    return {
        "seed": 606,
        "sizes": [1_000, 2_000, 3_000] if quick else [10_000, 100_000, 1_000_000],
        "memory_max": 3_000 if quick else 10_000,
        "failed_every": 10,
        "per_session": 10,
        "limit": 100,
        "calls": 50 if quick else 400,
        "reps": 2 if quick else 3,
        "warmup_calls": 10 if quick else 50,
    }


def _int(params: Params, key: str) -> int:
    value = params[key]
    assert isinstance(value, int)
    return value


def _sizes(params: Params) -> list[int]:
    value = params["sizes"]
    assert isinstance(value, list)
    return value


class _Grower:
    """A peer's store, grown size by size."""

    def grow(self, run_ids: list[UUID], session_ids: list[UUID], failed: list[UUID]) -> None:
        raise NotImplementedError

    def query(self) -> Callable[[int], object]:
        raise NotImplementedError


class _EventlogGrower(_Grower):
    """The store, filled through ``import_jsonl`` (one transaction per chunk of runs).

    Creating runs one by one (``create_run``, one transaction each) costs 170-260 µs per run
    on the 2-core machine (half of it LMDB's commit writing the ~25 pages a run touches), so
    1M runs would take ~4 minutes of the 15-minute budget. Importing the same sessions, runs
    and ``RunFailed`` events goes through the same engine calls and projector hooks, in one
    transaction per chunk; the B-trees a listing walks are the same.
    """

    CHUNK = 50_000

    def __init__(self, peer: str, workdir: str, per_session: int) -> None:
        from benchmarks.stores import open_eventlog

        self.store = open_eventlog(peer, workdir, "fast")
        self.per = per_session
        self.clock = datetime(2025, 1, 1, tzinfo=UTC)

    def grow(self, run_ids: list[UUID], session_ids: list[UUID], failed: list[UUID]) -> None:
        import msgspec

        encode = msgspec.json.Encoder().encode
        failed_set = set(failed)
        for k in range(0, len(run_ids), self.CHUNK):
            chunk = run_ids[k : k + self.CHUNK]
            lines: list[bytes] = []
            events: list[bytes] = []
            for j, rid in enumerate(chunk, k):
                self.clock += timedelta(microseconds=50)
                now = self.clock
                if j % self.per == 0:
                    lines.append(
                        encode(
                            {
                                "kind": "session",
                                "id": session_ids[j // self.per],
                                "title": "bench",
                                "model": MODEL,
                                "metadata": {},
                                "created_at": now,
                                "updated_at": now,
                            }
                        )
                    )
                lines.append(
                    encode(
                        {
                            "kind": "run",
                            "id": rid,
                            "session_id": session_ids[j // self.per],
                            "status": "pending",
                            "provider": PROVIDER,
                            "model": MODEL,
                            "metadata": {},
                            "client_request_id": None,
                            "created_at": now,
                            "updated_at": now,
                        }
                    )
                )
                if rid in failed_set:
                    events.append(
                        encode(
                            {
                                "kind": "event",
                                "run_id": rid,
                                "seq": 1,
                                "type": "RunFailed",
                                "version": 1,
                                "recorded_at": now,
                                "event_id": None,
                                "payload": {
                                    "type": "RunFailed",
                                    "error": "rate limited",
                                    "timestamp": now,
                                },
                            }
                        )
                    )
            self.store.import_jsonl(lines + events)

    def query(self) -> Callable[[int], object]:
        lister = self.store.list_runs_filtered

        def call(i: int) -> object:
            page = lister(status="failed", limit=100)
            assert len(page) == 100
            return page

        return call


class _SqliteGrower(_Grower):
    def __init__(self, workdir: str, per_session: int) -> None:
        from benchmarks.peers.sqlite_store import SqliteStore

        self.db = SqliteStore(os.path.join(workdir, "runs.db"), synchronous="NORMAL")
        self.per = per_session

    def grow(self, run_ids: list[UUID], session_ids: list[UUID], failed: list[UUID]) -> None:
        from eventlog.events import RunFailed

        db = self.db
        db.create_sessions(session_ids)
        for k in range(0, len(run_ids), 100_000):
            db.create_runs(
                [
                    (rid, session_ids[(k + j) // self.per])
                    for j, rid in enumerate(run_ids[k : k + 100_000])
                ],
                provider=PROVIDER,
                model=MODEL,
            )
        event = RunFailed("rate limited")
        for k in range(0, len(failed), 1000):
            db.append_many([(rid, [event], None) for rid in failed[k : k + 1000]])

    def query(self) -> Callable[[int], object]:
        lister = self.db.list_runs_filtered

        def call(i: int) -> object:
            page = lister(status="failed", limit=100)
            assert len(page) == 100
            return page

        return call


class _LmdbGrower(_Grower):
    """A raw status index: ``b"s" + status + inverted time + run id`` → ``b""``."""

    def __init__(self, workdir: str, per_session: int) -> None:
        import msgspec

        from benchmarks.peers.raw_lmdb import open_env
        from eventlog import RunRecord

        self.env = open_env(workdir, durable=False, max_dbs=4)
        self.index = self.env.open_db(b"index")
        self.runs = self.env.open_db(b"runs")
        self.encoder = msgspec.msgpack.Encoder(uuid_format="bytes")
        self.decode = msgspec.msgpack.Decoder(RunRecord).decode
        self.clock = datetime(2025, 1, 1, tzinfo=UTC)
        self.per = per_session
        self.done = 0

    def grow(self, run_ids: list[UUID], session_ids: list[UUID], failed: list[UUID]) -> None:
        from eventlog import RunRecord
        from eventlog.model.status import RunStatus

        failed_set = set(failed)
        with self.env.begin(write=True) as txn:
            for k, rid in enumerate(run_ids):
                self.clock += timedelta(microseconds=50)
                inv = _pack((1 << 63) - int(self.clock.timestamp() * 1e6))
                status = RunStatus.FAILED if rid in failed_set else RunStatus.PENDING
                sid = session_ids[(self.done + k) // self.per - self.done // self.per]
                record = RunRecord(
                    rid, sid, status, PROVIDER, MODEL, {}, None, self.clock, self.clock
                )
                txn.put(rid.bytes, self.encoder.encode(record), db=self.runs)
                code = b"f" if status is RunStatus.FAILED else b"p"
                txn.put(b"s" + code + inv + rid.bytes, b"", db=self.index)
        self.done += len(run_ids)

    def query(self) -> Callable[[int], object]:
        env, index, runs, decode = self.env, self.index, self.runs, self.decode

        def call(i: int) -> object:
            out: list[object] = []
            with env.begin() as txn:
                cur = txn.cursor(db=index)
                cur.set_range(b"sf")
                for key in cur.iternext(values=False):
                    if key[:2] != b"sf" or len(out) >= 100:
                        break
                    out.append(decode(txn.get(key[-16:], db=runs)))
            assert len(out) == 100
            return out

        return call


def _run(peer: str, params: Params, workdir: str) -> dict[str, Sample]:
    sizes, per = _sizes(params), _int(params, "per_session")
    top = sizes[-1]
    if peer == "memory":
        top = min(top, _int(params, "memory_max"))
        sizes = [s for s in sizes if s <= top]
    ids = uuids(_int(params, "seed"), top + top // per + 1)
    run_ids, session_ids = ids[:top], ids[top:]
    grower: _Grower
    if peer in ("eventlog", "memory"):
        grower = _EventlogGrower(peer, workdir, per)
    elif peer == "sqlite":
        grower = _SqliteGrower(workdir, per)
    elif peer == "lmdb":
        grower = _LmdbGrower(workdir, per)
    else:
        raise ValueError(f"unknown peer {peer}")
    out: dict[str, Sample] = {}
    done = 0
    every = _int(params, "failed_every")
    reference: _Grower | None = None
    if peer == "eventlog":
        # the control: a store that keeps the smallest size, queried in alternation with the
        # growing one, so the machine's drift over minutes cancels out of "1M vs 10k"
        reference = _EventlogGrower(peer, os.path.join(workdir, "reference"), per)
        n = sizes[0]
        ref_ids = uuids(_int(params, "seed") + 1, n + n // per + 1)
        ref_runs = ref_ids[:n]
        reference.grow(ref_runs, ref_ids[n:], ref_runs[every - 1 :: every])
    for size in sizes:
        start = time.perf_counter()
        new = run_ids[done:size]
        sessions = session_ids[done // per : (size + per - 1) // per]
        failed = [rid for k, rid in enumerate(new, done) if k % every == every - 1]
        grower.grow(new, sessions, failed)
        fill_s = time.perf_counter() - start
        done = size
        rep_p50: list[float] = []
        calls: list[float] = []
        ref_calls: list[float] = []
        for rep in range(_int(params, "reps")):
            warm = _int(params, "warmup_calls") if rep == 0 else 0
            p50, every_call = measure_latency(
                grower.query(), calls=_int(params, "calls"), reps=1, warmup_calls=warm
            )
            rep_p50 += p50
            calls += every_call
            if reference is not None:
                _, ref_every = measure_latency(
                    reference.query(), calls=_int(params, "calls"), reps=1, warmup_calls=warm
                )
                ref_calls += ref_every
        extra: dict[str, float] = {"fill_seconds": round(fill_s, 1)}
        if ref_calls:
            extra["reference_p50"] = percentiles(ref_calls)["p50"]
        out[str(size)] = latency_sample(rep_p50, calls, **extra)
    return out


def _reference(sample: Sample) -> float:
    """The reference store's p50 measured beside ``sample`` (its own p50 if none)."""
    value = sample.extra.get("reference_p50", sample.pct["p50"])
    return float(value) if isinstance(value, int | float) else sample.pct["p50"]


def _label(size: int) -> str:
    if size >= 1_000_000 and size % 1_000_000 == 0:
        return f"{size // 1_000_000}M"
    if size >= 1000 and size % 1000 == 0:
        return f"{size // 1000}k"
    return f"{size:,}"


def _rows(outputs: Mapping[str, PeerOutput], params: Params) -> list[Row]:
    sizes = _sizes(params)
    rows: list[Row] = []
    for size in sizes:
        rows += compare_rows(
            6,
            f"list_runs_filtered(status='failed', limit=100), {_label(size)} runs",
            outputs,
            str(size),
            targets={"sqlite": ("time ≤ 1.0x the sqlite3 store's", ">=", 1.0)},
            labels={"lmdb": "raw py-lmdb index walk + gets (limit)"},
            gap="listing",
        )
    ours = outputs.get("eventlog")
    if ours is None:
        return rows
    lo, hi = ours.variants.get(str(sizes[0])), ours.variants.get(str(sizes[-1]))
    if lo is not None and hi is not None:
        raw = hi.pct["p50"] / lo.pct["p50"]
        ref_lo, ref_hi = _reference(lo), _reference(hi)
        value = (hi.pct["p50"] / ref_hi) / (lo.pct["p50"] / ref_lo)
        big, small = _label(sizes[-1]), _label(sizes[0])
        rows.append(
            Row(
                6,
                f"listing stays flat: {big} runs vs. {small} runs",
                "eventlog (ours, LMDB)",
                f"p50 {fmt_num(hi.pct['p50'])} µs at {big}, {fmt_num(lo.pct['p50'])} µs at "
                f"{small} ({raw:.2f}x); ÷ a {small}-run reference store queried in "
                f"alternation: {hi.pct['p50'] / ref_hi:.2f} at {big}, "
                f"{lo.pct['p50'] / ref_lo:.2f} at {small}",
                check=Check(
                    f"time at {big} ≤ 1.5x time at {small} (drift-corrected)", value, "<=", 1.5
                ),
                gap="listing",
            )
        )
    return rows


WORKLOAD = Workload(
    number=6,
    key="listing",
    title="list_runs_filtered(status=..., limit=100) with 10k, 100k and 1M runs",
    peers=("eventlog", "lmdb", "sqlite", "memory"),
    params=_params,
    run=_run,
    rows=_rows,
    lockstep=False,
    timeout=1200.0,
)

if __name__ == "__main__":
    from benchmarks.runner import main

    main([WORKLOAD.key])
