"""What every workload shares: the result records, statistics, timing helpers, targets.

A workload module (``benchmarks/append_durable.py``, …) defines a :class:`Workload`: its
parameters (full and quick), the peers it runs — each in its own subprocess, see
:mod:`benchmarks.worker` — and how its rows (figures, ratios, targets) are computed from the
peers' :class:`Sample`\\ s.

Conventions:

- a *throughput* sample (``unit="events/s"``) holds one figure per measured repetition and is
  summarised as median (min-max);
- a *latency* sample (``unit="µs"``, or ``"ms"`` for whole processes) also holds percentiles
  (p50/p90/p99/max) over every call of every measured repetition; its central figure is the p50;
- a ratio is always "how many times faster ours is": ours ÷ peer for throughput, peer ÷ ours
  for latency, so ≥ 1 means ours wins, whatever the unit;
- warm-up repetitions are run and thrown away; ``gc.collect()`` runs before each repetition.
"""

from __future__ import annotations

import gc
import math
import os
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import msgspec

__all__ = [
    "THROUGHPUT",
    "Check",
    "Params",
    "PeerOutput",
    "Row",
    "Sample",
    "Workload",
    "central",
    "compare_rows",
    "fmt_num",
    "int_param",
    "latency_sample",
    "measure_latency",
    "measure_throughput",
    "percentiles",
    "ratio",
    "written_bytes",
]

THROUGHPUT = "events/s"
LATENCY = "µs"
#: the units of latency samples (lower is better): calls in µs, whole processes in ms
LATENCY_UNITS = (LATENCY, "ms")

#: Workload parameters: plain JSON scalars (and lists of ints), passed to the worker as JSON.
Params = dict[str, int | float | str | list[int]]


class Sample(msgspec.Struct, omit_defaults=True):
    """One peer's figures for one variant of a workload."""

    unit: str
    #: one figure per measured repetition (events/s, or a latency rep's p50 in µs)
    reps: list[float]
    #: latency percentiles over every call of every measured repetition (µs)
    pct: dict[str, float] = {}
    #: anything else worth keeping (growth curves, sizes, counts)
    extra: dict[str, float | int | str | list[float]] = {}


class PeerOutput(msgspec.Struct, omit_defaults=True):
    """What one worker subprocess reports."""

    workload: str
    peer: str
    #: variant name -> sample
    variants: dict[str, Sample] = {}
    #: how much the worker's resident memory grew while the peer ran: its peak (VmHWM) minus
    #: what it had when the job started (the interpreter and the imported libraries) (MiB)
    rss_mib: float = 0.0
    #: the resident memory the job started with (MiB)
    rss_start_mib: float = 0.0
    seconds: float = 0.0
    error: str | None = None


def int_param(params: Params, key: str) -> int:
    """``params[key]``, which must be an int."""
    value = params[key]
    assert isinstance(value, int), f"parameter {key} must be an int, got {value!r}"
    return value


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/max of ``values`` (nearest-rank on the sorted list)."""
    if not values:
        return {}
    s = sorted(values)
    n = len(s)

    def rank(q: float) -> float:
        return s[min(n - 1, max(0, math.ceil(q * n) - 1))]

    return {"p50": rank(0.50), "p90": rank(0.90), "p99": rank(0.99), "max": s[-1]}


def central(sample: Sample) -> float:
    """The figure a ratio uses: the median rep (throughput) or the p50 of every call."""
    if sample.unit in LATENCY_UNITS and "p50" in sample.pct:
        return sample.pct["p50"]
    return statistics.median(sample.reps)


def ratio(ours: Sample, peer: Sample) -> float:
    """How many times faster ours is than ``peer`` (≥ 1: ours wins)."""
    a, b = central(ours), central(peer)
    if ours.unit in LATENCY_UNITS:
        return b / a if a > 0 else float("inf")
    return a / b if b > 0 else float("inf")


_CONTROL: tuple[int, int] | None = None


def set_control(go: int, ready: int) -> None:
    """Make :func:`barrier` wait on the runner (called in a lockstep worker)."""
    global _CONTROL
    _CONTROL = (go, ready)


def barrier() -> None:
    """Wait for the runner's go before a timed repetition (lockstep mode; else a no-op).

    In lockstep the runner keeps every peer's worker alive and lets one of them run one
    repetition at a time, in turn: on a shared machine whose disk and CPUs change speed from
    one second to the next, the peers' repetitions are then interleaved and each ratio compares
    figures measured seconds apart, while each peer still has its own process.
    """
    if _CONTROL is None:
        return
    go, ready = _CONTROL
    os.write(ready, b"r")
    if not os.read(go, 1):
        raise SystemExit("the runner went away")


def _prepare() -> None:
    gc.collect()
    barrier()


def measure_throughput(
    setup: Callable[[], Callable[[], int]], *, reps: int, warmup: int = 1
) -> list[float]:
    """Run ``setup()`` (untimed) then its returned callable (timed), ``warmup + reps`` times.

    The callable returns how many events it handled; the figure is events per second. The
    warm-up repetitions are thrown away.
    """
    out: list[float] = []
    for i in range(warmup + reps):
        work = setup()
        _prepare()
        start = time.perf_counter()
        n = work()
        elapsed = time.perf_counter() - start
        if i >= warmup:
            out.append(n / elapsed)
    return out


def measure_latency(
    call: Callable[[int], object], *, calls: int, reps: int, warmup_calls: int
) -> tuple[list[float], list[float]]:
    """Time ``call(i)`` one call at a time; returns (per-rep p50s, every call in µs).

    ``warmup_calls`` calls are made first and not recorded.
    """
    for i in range(warmup_calls):
        call(i)
    every: list[float] = []
    rep_p50: list[float] = []
    clock = time.perf_counter_ns
    k = 0
    for _ in range(reps):
        _prepare()
        rep: list[float] = []
        for _ in range(calls):
            t0 = clock()
            call(k)
            rep.append((clock() - t0) / 1000.0)
            k += 1
        every.extend(rep)
        rep_p50.append(percentiles(rep)["p50"])
    return rep_p50, every


def latency_sample(rep_p50: list[float], every: list[float], **extra: float | int | str) -> Sample:
    """A latency :class:`Sample` from :func:`measure_latency`'s result."""
    return Sample(LATENCY, rep_p50, percentiles(every), dict(extra))


def written_bytes() -> int:
    """Bytes this process has handed to write()/pwrite() so far (``/proc/self/io``: wchar).

    LMDB writes a commit's dirty pages with ``pwrite``, so the difference over some appends
    is the number of pages their commits wrote, times the page size.
    """
    try:
        with open("/proc/self/io") as f:
            for line in f:
                if line.startswith("wchar:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def fmt_num(x: float) -> str:
    """A figure with a sensible number of digits (12,345 / 123 / 12.3 / 1.23)."""
    if x != x:  # NaN
        return "n/a"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def describe(sample: Sample) -> str:
    """``12,345 (12,000-13,000)`` or ``p50 12.3 µs (p90 15.0, p99 30.1)``."""
    if sample.unit in LATENCY_UNITS and sample.pct:
        p = sample.pct
        return (
            f"p50 {fmt_num(p['p50'])} {sample.unit} (p90 {fmt_num(p['p90'])}, "
            f"p99 {fmt_num(p['p99'])})"
        )
    med = statistics.median(sample.reps)
    text = f"{fmt_num(med)} ({fmt_num(min(sample.reps))}-{fmt_num(max(sample.reps))}) {sample.unit}"
    if sample.pct:  # a throughput figure that also timed each call
        text += f", p99 {fmt_num(sample.pct['p99'] / 1000)} ms/call"
    return text


@dataclass(frozen=True)
class Check:
    """A target from the issue: ``value`` (a ratio) must be ``op`` ``threshold``."""

    text: str
    value: float
    op: Literal[">=", "<="]
    threshold: float

    @property
    def met(self) -> bool:
        """Whether the measured value meets the target."""
        if self.op == ">=":
            return self.value >= self.threshold
        return self.value <= self.threshold


@dataclass
class Row:
    """One line of the report: a peer's figure in one workload variant, and the ratio."""

    number: int
    workload: str
    peer: str
    figure: str
    #: ours ÷ peer (how many times faster ours is); None on ours' own line
    ratio: float | None = None
    check: Check | None = None
    note: str = ""
    rss_mib: float | None = None
    #: the gap key for :mod:`benchmarks.gap` (which operation to profile when missed)
    gap: str | None = None
    extra: dict[str, float] = field(default_factory=dict)


#: peer name -> what the report calls it
PEER_LABELS = {
    "eventlog": "eventlog (ours, LMDB)",
    "lmdb": "raw py-lmdb (limit)",
    "lmdb-ops": "raw py-lmdb, the store's ops",
    "sqlite": "sqlite3 store",
    "sqlite-off": "sqlite3 store, sync=OFF",
    "eventsourcing": "eventsourcing (SQLite)",
    "memory": "eventlog in memory",
    "eventlog-async": "eventlog, asyncio tasks (ours)",
    "eventlog-pg": "eventlog (ours, PostgreSQL)",
    "eventsourcing-pg": "eventsourcing (PostgreSQL)",
    "psycopg": "raw psycopg (the server's limit)",
}


def compare_rows(
    number: int,
    title: str,
    outputs: Mapping[str, PeerOutput],
    variant: str,
    *,
    targets: Mapping[str, tuple[str, Literal[">=", "<="], float]] | None = None,
    labels: Mapping[str, str] | None = None,
    gap: str | None = None,
    ours_peer: str = "eventlog",
) -> list[Row]:
    """Ours' row then one row per peer with the ratio, and the target where the issue sets one.

    ``targets`` maps a peer to ``(text, op, threshold)`` on the ratio (ours ÷ peer speed);
    ``ours_peer`` is the peer the ratios divide (the store on LMDB unless told otherwise).
    """
    targets = targets or {}
    names = {**PEER_LABELS, **(labels or {})}
    rows: list[Row] = []
    ours_out = outputs.get(ours_peer)
    ours = None if ours_out is None else ours_out.variants.get(variant)
    rows.append(
        Row(
            number,
            title,
            names[ours_peer],
            "error" if ours is None else describe(ours),
            rss_mib=None if ours_out is None else ours_out.rss_mib,
        )
    )
    for peer, out in outputs.items():
        if peer == ours_peer:
            continue
        sample = out.variants.get(variant)
        if sample is None:
            continue
        r = None if ours is None else ratio(ours, sample)
        check = None
        if peer in targets and r is not None:
            text, op, threshold = targets[peer]
            check = Check(text, r, op, threshold)
        rows.append(
            Row(
                number,
                title,
                names.get(peer, peer),
                describe(sample),
                ratio=r,
                check=check,
                rss_mib=out.rss_mib,
                gap=gap if check is not None else None,
            )
        )
    return rows


@dataclass(frozen=True)
class Workload:
    """A workload: its number and name, parameters, peers, and how to turn results into rows."""

    number: int
    key: str
    title: str
    peers: tuple[str, ...]
    params: Callable[[bool], Params]
    run: Callable[[str, Params, str], dict[str, Sample]]
    rows: Callable[[Mapping[str, PeerOutput], Params], list[Row]]
    #: how many subprocess rounds per peer (peers interleave round by round)
    rounds: Callable[[bool], int] = lambda quick: 1
    #: run the peers' workers side by side, one repetition at a time in turn (see ``barrier``);
    #: False for workloads whose data would not fit twice (one worker after the other)
    lockstep: bool = True
    #: seconds a worker may take before it is stopped
    timeout: float = 900.0
    #: why the workload cannot run here (None: it can); a skipped workload has no rows
    skip: Callable[[], str | None] | None = None
    #: called with a worker's data directory once the worker has exited (server-side cleanup)
    cleanup: Callable[[str], object] | None = None


def workdir_for(base: str, name: str) -> str:
    """A fresh directory under ``base`` for one worker's data."""
    path = os.path.join(base, name)
    os.makedirs(path, exist_ok=False)
    return path
