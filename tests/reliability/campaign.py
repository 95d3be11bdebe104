"""The drivers: the SIGKILL loop and the concurrent chaos run, and ``make torture``'s command line.

``python -m reliability.campaign --kills 1000`` (run from ``tests/``, as ``make torture`` does)
kills a writer that many times in durable mode (and ``--fast-kills`` times in fast mode), then
runs ``--chaos-seconds`` of concurrent chaos, prints the figures and writes them as JSON.

Processes come from a ``forkserver`` that has imported the writer (so a new writer starts in
milliseconds, and none inherits an open LMDB environment: the server never opens a store).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import random
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from multiprocessing.context import ForkServerContext, ForkServerProcess
from multiprocessing.synchronize import Event as EventFlag
from pathlib import Path
from typing import Any, Literal

from eventlog import EventRecord, RunNotFound, RunStore
from reliability.ledger import CheckReport, Model, check_store
from reliability.writer import run_writer

__all__ = ["ChaosResult", "CrashResult", "Figures", "chaos", "crash_campaign", "main"]

Durability = Literal["durable", "fast"]
READY_TIMEOUT = 60.0  # seconds for a writer to open the store
JOIN_TIMEOUT = 60.0  # seconds for a killed process to be reaped
KEEP_SESSIONS = 6  # writer sessions kept in the store; older ones are pruned by the driver


def _context() -> ForkServerContext:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["reliability.writer"])
    return ctx


@dataclass
class Figures:
    """What every campaign reports."""

    kills: int = 0
    acknowledged_events: int = 0
    lost: int = 0
    partial_batches: int = 0
    last_position: int = 0
    violations: list[str] = field(default_factory=list)


@dataclass
class CrashResult(Figures):
    """The figures of one kill loop."""

    durability: str = "durable"
    kills_before_ready: int = 0
    writers_exited_early: int = 0
    acknowledged_ops: dict[str, int] = field(default_factory=dict)
    in_flight_found_complete: int = 0
    in_flight_found_absent: int = 0
    checks: int = 0
    events_checked: int = 0
    seconds: float = 0.0


def _start_writer(
    ctx: ForkServerContext, store: str | Path, ledger: Path, seed: int, durability: Durability
) -> tuple[ForkServerProcess, EventFlag]:
    ready = ctx.Event()
    proc = ctx.Process(
        target=run_writer, args=(str(store), str(ledger), seed, durability, ready), daemon=True
    )
    proc.start()
    return proc, ready


def _kill(proc: ForkServerProcess) -> bool:
    """SIGKILL ``proc`` and reap it; True if the kill is what ended it."""
    assert proc.pid is not None
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGKILL)
    proc.join(JOIN_TIMEOUT)
    return proc.exitcode == -signal.SIGKILL


def _check_and_prune(path: str | Path, model: Model, durability: Durability) -> CheckReport:
    with RunStore.open(path, durability=durability) as store:
        report = check_store(store, model)
        probe_session = None if model.probe_run is None else model.runs[model.probe_run].session
        live = [s for s, deleted in model.sessions.items() if not deleted and s != probe_session]
        for session in live[:-KEEP_SESSIONS]:
            model.prune_session(store, session)
        return report


def _totals(result: CrashResult, model: Model, total: CheckReport, path: str | Path) -> None:
    result.acknowledged_events = model.acked_events
    result.acknowledged_ops = dict(sorted(model.acked_ops.items()))
    result.lost = total.lost
    result.partial_batches = total.partial_batches
    result.in_flight_found_complete = total.resolved_present
    result.in_flight_found_absent = total.resolved_absent
    result.events_checked = total.events_checked
    result.violations = total.violations[:50]
    with RunStore.open(path, readonly=True) as store:
        result.last_position = store.last_position()


def crash_campaign(
    workdir: Path,
    kills: int,
    *,
    durability: Durability = "durable",
    seed: int = 0,
    max_delay: float = 0.25,
    progress: Callable[[int, CrashResult], None] | None = None,
    model: Model | None = None,
    store: str | None = None,
) -> CrashResult:
    """Kill a writer ``kills`` times at random moments; check the store after every kill.

    ``model`` (optional) is the model to fold the ledgers into, for a caller that checks more.
    ``store``: where the store is (default ``workdir/store``; a PostgreSQL URL works too).
    """
    ctx = _context()
    rng = random.Random(seed)
    path: str | Path = workdir / "store" if store is None else store
    ledgers = workdir / "ledgers"
    ledgers.mkdir(parents=True, exist_ok=True)
    result = CrashResult(durability=durability)
    model = Model() if model is None else model
    total = CheckReport()
    started = time.monotonic()
    for i in range(kills):
        ledger = ledgers / f"{i:05d}.jsonl"
        proc, ready = _start_writer(ctx, path, ledger, seed * 1_000_003 + i, durability)
        if rng.random() < 0.1:  # kill while it is starting/opening the store
            result.kills_before_ready += 1
            time.sleep(rng.uniform(0, 0.05))
        else:
            if not ready.wait(READY_TIMEOUT):
                total.violations.append(f"writer {i} did not open the store in {READY_TIMEOUT}s")
            time.sleep(rng.uniform(0, max_delay))  # the experiment: a random moment
        if _kill(proc):
            result.kills += 1
        else:
            result.writers_exited_early += 1
            total.violations.append(f"writer {i} exited by itself with code {proc.exitcode}")
        model.apply_ledger(ledger)
        total.merge(_check_and_prune(path, model, durability))
        result.checks += 1
        if progress is not None and (i + 1) % 50 == 0:
            result.seconds = time.monotonic() - started
            result.acknowledged_events, result.lost = model.acked_events, total.lost
            result.violations = total.violations[:50]
            progress(i + 1, result)
    _totals(result, model, total, path)
    result.seconds = round(time.monotonic() - started, 1)
    return result


# -- chaos: 4 writers killed at random, 2 readers (a log subscription, listings) ------------


def _subscribed(store: RunStore, stop: EventFlag) -> Iterator[EventRecord]:
    """Every event in position order, as it is committed: ``store.subscribe``.

    A subscription that has been idle for 0.2 s ends; it is reopened after the last position
    seen until ``stop`` is set (the writers are all dead by then, so the log is idle).
    """
    after = 0
    while not stop.is_set():
        with store.subscribe(after_position=after, timeout=0.2) as subscription:
            for record in subscription:
                yield record
                after = record.position
                if stop.is_set():
                    return


def tail_reader(path: str, stop: EventFlag, result_path: str) -> None:
    """Subscribe to the log: positions strictly increase, each run's seqs come 1, 2, 3, ..."""
    out: dict[str, Any] = {"records": 0, "violations": []}
    heads: dict[str, int] = {}
    last = 0
    with RunStore.open(path, readonly=True) as store:
        for record in _subscribed(store, stop):
            out["records"] += 1
            run = str(record.run_id)
            if record.position <= last:
                out["violations"].append(f"position {record.position} after {last}")
            if record.seq != heads.get(run, 0) + 1:
                out["violations"].append(f"run {run}: seq {record.seq} after {heads.get(run)}")
            last, heads[run] = record.position, record.seq
    Path(result_path).write_text(json.dumps(out))


def list_reader(path: str, stop: EventFlag, result_path: str, seed: int) -> None:
    """List runs by status and page; each listed run's state and events agree."""
    rng = random.Random(seed)
    out: dict[str, Any] = {"listings": 0, "runs_read": 0, "violations": []}
    statuses = [None, "pending", "calling_model", "waiting_for_tools", "completed"]
    with RunStore.open(path, readonly=True) as store:
        while not stop.is_set():
            status = rng.choice(statuses)
            runs = store.list_runs_filtered(status=status, limit=20, offset=rng.randint(0, 10))
            out["listings"] += 1
            store.count_runs(status=status)
            for run in runs:
                if status is not None and run.status != status:
                    out["violations"].append(f"run {run.id} listed as {status}: {run.status}")
                state = store.get_run_state(run.id)
                if state is not None and state.last_seq != state.event_count:
                    out["violations"].append(f"run {run.id}: state {state}")
                try:
                    seqs = [r.seq for r in store.list_events(run.id)]
                except RunNotFound:
                    continue  # deleted since it was listed
                out["runs_read"] += 1
                if seqs != list(range(1, len(seqs) + 1)):
                    out["violations"].append(f"run {run.id}: seqs {seqs}")
    Path(result_path).write_text(json.dumps(out))


@dataclass
class ChaosResult(Figures):
    """The figures of one chaos run."""

    seconds: float = 0.0
    writers: int = 0
    readers: int = 2
    reader_records: int = 0
    reader_listings: int = 0


def chaos(
    workdir: Path,
    seconds: float,
    *,
    writers: int = 4,
    durability: Durability = "durable",
    seed: int = 0,
    kill_every: tuple[float, float] = (0.05, 0.5),
    min_events: int = 0,
    max_seconds: float = 120.0,
) -> ChaosResult:
    """Writers appending concurrently, killed at random, while two readers read; then check.

    It runs ``seconds``, and longer (up to ``max_seconds``) until at least ``min_events``
    appends were acknowledged: a loaded machine gets the same amount of work checked.
    """
    ctx = _context()
    rng = random.Random(seed)
    path, ledgers = workdir / "store", workdir / "ledgers"
    ledgers.mkdir(parents=True, exist_ok=True)
    RunStore.open(path, durability=durability).close()  # readers open it read-only
    result = ChaosResult(seconds=seconds, writers=writers)
    model, total = Model(), CheckReport()
    count = 0

    def start() -> tuple[ForkServerProcess, Path, EventFlag]:
        nonlocal count
        ledger = ledgers / f"{count:05d}.jsonl"
        # keep the ready flag referenced: the child unpickles it after start() returns
        proc, ready = _start_writer(ctx, path, ledger, seed * 1_000_003 + count, durability)
        count += 1
        return proc, ledger, ready

    stop = ctx.Event()
    results = [workdir / "tail.json", workdir / "list.json"]
    readers = [
        ctx.Process(target=tail_reader, args=(str(path), stop, str(results[0])), daemon=True),
        ctx.Process(target=list_reader, args=(str(path), stop, str(results[1]), seed), daemon=True),
    ]
    for reader in readers:
        reader.start()
    running = [start() for _ in range(writers)]
    started = time.monotonic()
    deadline, cap = started + seconds, started + max(seconds, max_seconds)

    def more() -> bool:
        now = time.monotonic()
        return now < deadline or (model.acked_events < min_events and now < cap)

    while more():
        time.sleep(rng.uniform(*kill_every))  # the experiment: a random moment
        victim = running.pop(rng.randrange(len(running)))
        if _kill(victim[0]):
            result.kills += 1
        else:
            total.violations.append(f"writer exited by itself with code {victim[0].exitcode}")
        model.apply_ledger(victim[1])
        running.append(start())
    for proc, ledger, _ in running:  # the last writers are killed too
        result.kills += _kill(proc)
        model.apply_ledger(ledger)
    stop.set()
    for reader, out in zip(readers, results, strict=True):
        reader.join(JOIN_TIMEOUT)
        if reader.exitcode != 0:
            total.violations.append(f"reader {reader.name} exited with {reader.exitcode}")
            continue
        figures = json.loads(out.read_text())
        total.violations.extend(figures["violations"])
        result.reader_records += figures.get("records", 0)
        result.reader_listings += figures.get("listings", 0)
    with RunStore.open(path, durability=durability) as store:
        total.merge(check_store(store, model))
        result.last_position = store.last_position()
    result.acknowledged_events = model.acked_events
    result.lost = total.lost
    result.partial_batches = total.partial_batches
    result.violations = total.violations[:50]
    return result


# -- make torture --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """The command line of ``make torture``; exit code 1 when any invariant broke."""
    parser = argparse.ArgumentParser(prog="python -m reliability.campaign")
    parser.add_argument("--kills", type=int, default=1000, help="kills in durable mode")
    parser.add_argument("--fast-kills", type=int, default=200, help="kills in fast mode")
    parser.add_argument("--chaos-seconds", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument(
        "--store",
        help="run the crash loops against this store instead: a PostgreSQL URL ending in "
        "?schema=NAME (the loops use the new schemas NAME_durable and NAME_fast)",
    )
    args = parser.parse_args(argv)

    def show(done: int, r: CrashResult) -> None:
        print(
            f"  {r.durability}: {done} kills, {r.acknowledged_events} events acknowledged, "
            f"lost {r.lost}, {len(r.violations)} violations, {r.seconds:.0f}s",
            flush=True,
        )

    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="eventlog-torture-") as tmp:
        modes: list[tuple[Durability, int]] = [("durable", args.kills), ("fast", args.fast_kills)]
        for mode, kills in modes:
            if kills:
                print(f"crash campaign, {mode} mode, {kills} kills", flush=True)
                work = Path(tmp) / mode
                store = None if args.store is None else f"{args.store}_{mode}"
                figures[mode] = asdict(
                    crash_campaign(
                        work, kills, durability=mode, seed=args.seed, progress=show, store=store
                    )
                )
        if args.chaos_seconds:
            print(f"chaos: 4 writers, 2 readers, {args.chaos_seconds:.0f}s", flush=True)
            started = time.monotonic()
            res = chaos(Path(tmp) / "chaos", args.chaos_seconds, seed=args.seed)
            figures["chaos"] = asdict(res) | {"wall_seconds": round(time.monotonic() - started)}
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    bad = any(f["violations"] or f["lost"] for f in figures.values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
