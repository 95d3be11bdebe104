"""Workload 7: growth - append rate and bytes on disk per event as the log grows to 10M events.

``python -m benchmarks.growth [--quick] [--json]``

One LMDB store (``durability="fast"``) is filled with runs of 1,000 seeded events, 10 runs
per ``append_many`` call (10,000 events per transaction). At the start and after every 1M
events it samples:

- the single-event append rate: ``append_event`` calls, one event per call, round-robin over
  20 fresh runs (median of the repetitions);
- the fill rate of the last segment (events/s in big batches; run creation not counted);
- bytes on disk (``data.mdb``'s allocated blocks) per event, against the mean size of an
  encoded event (the stored envelope, as the store writes it).

Targets: the append rate at 10M events ≥ 0.8x the rate at the start; bytes on disk per event
≤ 2x its encoded size. At the end it reads LMDB's page statistics of each database to say
where the bytes are.
"""

from __future__ import annotations

import os
import shutil
import statistics
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from benchmarks.core import (
    THROUGHPUT,
    Check,
    Params,
    PeerOutput,
    Row,
    Sample,
    Workload,
    fmt_num,
    written_bytes,
)
from benchmarks.data import MODEL, PROVIDER, run_events, uuids


def _params(quick: bool) -> Params:
    return {
        "seed": 707,
        "total": 20_000 if quick else 10_000_000,
        "step": 5_000 if quick else 1_000_000,
        "run_events": 100 if quick else 1000,
        "runs_per_call": 5 if quick else 10,
        "sample_runs": 5 if quick else 20,
        "sample_appends": 100 if quick else 1000,
        "sample_reps": 2 if quick else 5,
    }


def _int(params: Params, key: str) -> int:
    value = params[key]
    assert isinstance(value, int)
    return value


def _disk_bytes(path: str) -> tuple[int, int]:
    st = os.stat(os.path.join(path, "data.mdb"))
    return st.st_blocks * 512, st.st_size


def _depth(path: str) -> int:
    """The depth of the deepest B-tree an append writes (``events`` or ``log``)."""
    import lmdb

    env = lmdb.open(path, readonly=True, lock=False, max_dbs=32, subdir=True)
    try:
        with env.begin() as txn:
            depth: int = max(
                txn.stat(env.open_db(name, txn=txn, create=False))["depth"]
                for name in (b"log", b"events")
            )
    finally:
        env.close()
    return depth


#: LMDB's per-entry overhead in a leaf page: the node header (8 bytes) and its 2-byte offset
_NODE = 10


def _page_stats(path: str, events: int, encoded: float) -> str:
    """Where the bytes on disk are: LMDB's pages per database, and what fills the pages."""
    import lmdb

    from eventlog.storage.lmdb import LAYOUT

    env = lmdb.open(path, readonly=True, lock=False, max_dbs=32, subdir=True)
    per = max(1, events)
    lines = [
        f"{'database':<16}{'entries':>12}{'leaf pages':>12}{'branch':>9}{'overflow':>9}"
        f"{'B/event':>9}"
    ]
    try:
        psize = env.stat()["psize"]
        total = 0
        with env.begin() as txn:
            for name in sorted({db for db, _ in LAYOUT.values()}):
                st = txn.stat(env.open_db(name.encode(), txn=txn, create=False))
                if not st["entries"]:
                    continue
                pages = st["leaf_pages"] + st["branch_pages"] + st["overflow_pages"]
                total += pages * psize
                lines.append(
                    f"{name:<16}{st['entries']:>12,}{st['leaf_pages']:>12,}"
                    f"{st['branch_pages']:>9,}{st['overflow_pages']:>9,}{pages * psize / per:>9.1f}"
                )
            log_db = env.open_db(b"log", txn=txn, create=False)
            events_db = env.open_db(b"events", txn=txn, create=False)
            leaf = (txn.stat(log_db)["leaf_pages"] + txn.stat(events_db)["leaf_pages"]) * psize
            lines += _log_payload(txn, log_db, events_db, per, encoded, leaf)
        info = env.info()
        used = (info["last_pgno"] + 1) * psize
        lines.append(
            f"all databases' pages: {total / per:.1f} B/event; file pages in use: "
            f"{used / per:.1f} B/event (the rest are free pages LMDB keeps for reuse)"
        )
    finally:
        env.close()
    return "\n".join(lines)


def _log_payload(
    txn: Any, log_db: Any, events_db: Any, events: int, encoded: float, leaf_bytes: int
) -> list[str]:
    """What the leaf pages of ``events`` and ``log`` hold, per event: payload by table, fill."""
    cur = txn.cursor(db=log_db)
    # projections: every entry (a few per run and per tool call)
    proj_n = proj_bytes = 0
    if cur.set_range(b"\x01"):
        for key, value in cur:
            if key[:1] != b"\x01":
                break
            proj_n += 1
            proj_bytes += len(key) + len(value) + _NODE
    # events: every entry (stream number + seq -> envelope)
    ev_n = ev_bytes = 0
    for key, value in txn.cursor(db=events_db):
        ev_n += 1
        ev_bytes += len(key) + len(value) + _NODE
    ev_mean = ev_bytes / max(1, ev_n)
    pos_mean = 1 + 8 + 16 + _NODE  # prefix + position -> stream number + seq
    payload = events * (ev_mean + pos_mean) + proj_bytes
    return [
        f"payload per event (key + value + {_NODE} B of LMDB node): event "
        f"{ev_mean:.0f} B (its encoded envelope: {encoded:.0f} B), position {pos_mean} B, "
        f"views {proj_bytes / events:.0f} B ({proj_n:,} projection entries) = "
        f"{payload / events:.0f} B/event, {payload / events / encoded:.2f}x the encoded size",
        f"the events and log leaf pages hold {leaf_bytes / events:.0f} B/event: they are "
        f"{payload / max(1, leaf_bytes):.0%} full",
    ]


def _run(peer: str, params: Params, workdir: str) -> dict[str, Sample]:
    from eventlog import AppendRequest, RunStore
    from eventlog.storage.codec import encode_event

    if peer != "eventlog":
        raise ValueError(f"growth measures the store only, not {peer}")
    seed = _int(params, "seed")
    total, step = _int(params, "total"), _int(params, "step")
    run_len, per_call = _int(params, "run_events"), _int(params, "runs_per_call")
    templates = [run_events(seed + i, run_len) for i in range(8)]
    now = datetime.now(UTC)
    sizes = [len(encode_event(e, 5_000_000, now, None)) for t in templates for e in t]
    encoded = statistics.fmean(sizes)
    path = os.path.join(workdir, "store")
    store = RunStore.open(path, durability="fast")
    # the control: a store that stays small, sampled in alternation with the big one, so that
    # the machine's drift (a shared host) cancels out of "rate at 10M / rate at the start"
    reference = RunStore.open(os.path.join(workdir, "reference"), durability="fast")
    sid = store.create_session().id
    ref_sid = reference.create_session().id
    sample_events = run_events(seed - 1, _int(params, "sample_appends"))
    counter = iter(uuids(seed, total // run_len + 10_000))
    logged = 0

    written = {"big": 0.0, "ref": 0.0}

    def one_rep(target: RunStore, runs: list[UUID], which: str) -> float:
        before = written_bytes()
        start = time.perf_counter()
        for i, ev in enumerate(sample_events):
            target.append_event(runs[i % len(runs)], ev)
        rate = len(sample_events) / (time.perf_counter() - start)
        written[which] = (written_bytes() - before) / len(sample_events)
        return rate

    class FillReference:
        """The fill's control: the same batches into a store that stays small, interleaved.

        Every ``every``-th fill batch is followed by the same batch into a fresh store (one per
        1M segment), so the big store's fill rate and the control's are measured over the same
        minutes of a shared machine.
        """

        every = 10

        def __init__(self) -> None:
            self.path = os.path.join(workdir, "fill-reference")
            shutil.rmtree(self.path, ignore_errors=True)
            self.store = RunStore.open(self.path, durability="fast")
            self.sid = self.store.create_session().id
            self.events = 0
            self.seconds = 0.0
            self.batches = 0

        def maybe(self, k: int) -> None:
            self.batches += 1
            if self.batches % self.every:
                return
            reqs = [
                AppendRequest(
                    self.store.create_run(self.sid, provider=PROVIDER, model=MODEL).id,
                    templates[(k + j) % 8],
                )
                for j in range(per_call)
            ]
            start = time.perf_counter()
            self.store.append_many(reqs)
            self.seconds += time.perf_counter() - start
            self.events += per_call * run_len

        def rate(self) -> float:
            self.store.close()
            shutil.rmtree(self.path, ignore_errors=True)
            return self.events / self.seconds if self.seconds else 0.0

    def sample() -> tuple[list[float], list[float]]:
        """Single-event append rates: (big store, reference), repetitions alternating."""
        nonlocal logged
        n = _int(params, "sample_runs")
        runs = [
            store.create_run(sid, provider=PROVIDER, model=MODEL, run_id=next(counter)).id
            for _ in range(n)
        ]
        ref_runs = [
            reference.create_run(ref_sid, provider=PROVIDER, model=MODEL).id for _ in range(n)
        ]
        big: list[float] = []
        ref: list[float] = []
        for rep in range(_int(params, "sample_reps") + 1):
            rate, ref_rate = one_rep(store, runs, "big"), one_rep(reference, ref_runs, "ref")
            logged += len(sample_events)
            if rep:  # the first repetition is the warm-up
                big.append(rate)
                ref.append(ref_rate)
        return big, ref

    curve: dict[str, list[float]] = {
        "events": [],
        "single_rate": [],
        "reference_rate": [],
        "relative_rate": [],
        "fill_rate": [],
        "fill_reference_rate": [],
        "written_per_append": [],
        "reference_written_per_append": [],
        "disk_bytes": [],
        "file_bytes": [],
        "bytes_per_event": [],
    }
    samples: dict[str, Sample] = {}
    filled = 0
    fill_time = 0.0
    segment_start = 0
    fill_ref: FillReference | None = None
    while True:
        big, ref = sample()
        disk, size = _disk_bytes(path)
        curve["events"].append(float(filled))
        curve["single_rate"].append(statistics.median(big))
        curve["reference_rate"].append(statistics.median(ref))
        rel = [b / r for b, r in zip(big, ref, strict=True)]
        curve["relative_rate"].append(statistics.median(rel))
        curve["fill_rate"].append((filled - segment_start) / fill_time if fill_time else 0.0)
        curve["fill_reference_rate"].append(0.0 if fill_ref is None else fill_ref.rate())
        curve["written_per_append"].append(written["big"])
        curve["reference_written_per_append"].append(written["ref"])
        curve["disk_bytes"].append(float(disk))
        curve["file_bytes"].append(float(size))
        curve["bytes_per_event"].append(disk / max(1, logged))
        samples[f"single@{filled}"] = Sample(THROUGHPUT, big, extra={"reference": ref})
        if filled >= total:
            break
        segment_start, fill_time = filled, 0.0
        fill_ref = FillReference()
        target = min(total, filled + step)
        while filled < target:
            new_runs = [
                store.create_run(sid, provider=PROVIDER, model=MODEL, run_id=next(counter)).id
                for _ in range(per_call)
            ]
            reqs = [
                AppendRequest(r, templates[(filled // run_len + k) % 8])
                for k, r in enumerate(new_runs)
            ]
            start = time.perf_counter()
            store.append_many(reqs)
            fill_time += time.perf_counter() - start
            fill_ref.maybe(filled // run_len)
            filled += per_call * run_len
            logged += per_call * run_len
    store.close()
    reference.close()
    breakdown = _page_stats(path, logged, encoded)
    depth = _depth(path), _depth(os.path.join(workdir, "reference"))
    first_fill = curve["fill_rate"][1] if len(curve["fill_rate"]) > 1 else 0.0
    samples["curve"] = Sample(
        THROUGHPUT,
        [first_fill, curve["fill_rate"][-1]],
        extra={
            **curve,
            "encoded_bytes": encoded,
            "breakdown": breakdown,
            "log_depth": float(depth[0]),
            "reference_log_depth": float(depth[1]),
        },
    )
    return samples


def _rows(outputs: Mapping[str, PeerOutput], params: Params) -> list[Row]:
    ours = outputs.get("eventlog")
    label = "eventlog (ours, LMDB)"
    if ours is None or "curve" not in ours.variants:
        return [Row(7, "growth", label, "error")]
    extra = ours.variants["curve"].extra
    events = extra["events"]
    single = extra["single_rate"]
    relative = extra["relative_rate"]
    fill = extra["fill_rate"]
    per_event = extra["bytes_per_event"]
    encoded = extra["encoded_bytes"]
    assert isinstance(events, list)
    assert isinstance(single, list)
    assert isinstance(relative, list)
    assert isinstance(fill, list)
    fill_ref = extra["fill_reference_rate"]
    assert isinstance(fill_ref, list)
    fill_rel = [f / r if r else 0.0 for f, r in zip(fill, fill_ref, strict=True)]
    assert isinstance(per_event, list)
    assert isinstance(encoded, float)
    end = f"{events[-1] / 1e6:g}M" if events[-1] >= 1e6 else f"{events[-1]:,.0f}"
    return [
        Row(
            7,
            f"growth to {end} events: single-event append rate",
            label,
            f"{fmt_num(single[-1])} events/s at {end}, {fmt_num(single[0])} at the start "
            f"({single[-1] / single[0]:.2f}x); ÷ a small reference store: "
            f"{relative[-1]:.2f} at {end}, {relative[0]:.2f} at the start",
            check=Check(
                f"rate at {end} ≥ 0.8x the rate at the start (drift-corrected)",
                relative[-1] / relative[0],
                ">=",
                0.8,
            ),
            gap="growth_rate",
            rss_mib=ours.rss_mib,
        ),
        Row(
            7,
            f"growth to {end} events: fill rate (append_many, 10k events/txn)",
            label,
            f"{fmt_num(fill[-1])} events/s in the last segment, {fmt_num(fill[1])} in the first "
            f"({fill[-1] / fill[1]:.2f}x); ÷ the same batch into an empty store: "
            f"{fill_rel[-1]:.2f} last, {fill_rel[1]:.2f} first",
            check=Check(
                "last segment ≥ 0.8x the first (drift-corrected; our rule for batches)",
                fill_rel[-1] / fill_rel[1],
                ">=",
                0.8,
            ),
            gap="growth_rate",
        ),
        Row(
            7,
            f"growth to {end} events: bytes on disk per event",
            label,
            f"{per_event[-1]:.0f} B/event on disk; an encoded event is {encoded:.0f} B",
            check=Check("≤ 2x the encoded size", per_event[-1] / encoded, "<=", 2.0),
            gap="growth_bytes",
        ),
    ]


WORKLOAD = Workload(
    number=7,
    key="growth",
    title="growth: append rate and bytes on disk per event up to 10M events",
    peers=("eventlog",),
    params=_params,
    run=_run,
    rows=_rows,
    lockstep=False,
    timeout=900.0,
)

if __name__ == "__main__":
    from benchmarks.runner import main

    main([WORKLOAD.key])
