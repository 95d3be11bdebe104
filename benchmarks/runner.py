"""Runs the workloads, each peer in its own subprocess, and writes the report.

``python -m benchmarks [--quick] [--only KEY,...] [--json] [--out DIR] [--readme]``

``--readme`` refreshes the results sections of ``benchmarks/README.md``: a full run both (the
PostgreSQL rows, workloads 10-14 and 18, have their own), a run of PostgreSQL workloads only
(``--only pg_...``, results in ``results/postgres/``) the PostgreSQL section alone.

Each peer runs in its own worker process, forked from the runner once it has imported every
library. In lockstep (the default) the workers of a workload live side by side and the runner
lets one of them run one repetition at a time, in turn, so that the peers' repetitions are
interleaved on a shared machine; listing and growth run their workers one after the other.
Never two peers work at once (the machine has 2 cores). Each worker gets a fresh data
directory under this run's own directory in ``benchmarks/results/tmp``, deleted afterwards.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import select
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence

import msgspec

from benchmarks.core import Params, PeerOutput, Row, Sample, Workload
from benchmarks.worker import Job, load

__all__ = ["ALL", "Outcome", "main", "run_workload"]

#: every workload, in report order
ALL = (
    "append_durable",
    "append_batch",
    "append_fast",
    "replay",
    "run_state",
    "listing",
    "growth",
    "concurrent",
    "rebuild",
    "langgraph",
    "pg_append_durable",
    "pg_append_batch",
    "pg_concurrent",
    "pg_replay",
    "pg_listing",
    "pg_log_read",
    "agents_session",
    "startup",
    "memory_scale",
    "pydantic_ai_steps",
    "compact",
    "tool_ledger",
    "adk_session",
    "viewer",
    "artifacts",
    "prune",
    "fork",
    "embeddings",
    "agents_branches",
)

#: the first PostgreSQL workload's number (their rows have a README section of their own)
PG_ROWS = (*range(10, 15), 18)  # the PostgreSQL rows: their own README section

#: workers are forked from the runner (which has imported every library once)
_FORK = multiprocessing.get_context("fork")

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")


class Outcome(msgspec.Struct):
    """One workload's parameters, merged peer outputs and every worker's raw output."""

    number: int
    key: str
    title: str
    params: Params
    peers: dict[str, PeerOutput]
    runs: list[PeerOutput]
    seconds: float


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _child(job: Job, control: tuple[int, int] | None, log_path: str) -> None:
    """The forked worker: output to its log file, barrier on the runner's pipes, run."""
    from benchmarks.core import set_control
    from benchmarks.pg import PREFIX_ENV, job_prefix
    from benchmarks.worker import run_job

    os.environ[PREFIX_ENV] = job_prefix(job.workdir)  # the schemas of a PostgreSQL peer
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    if control is not None:
        set_control(*control)
    try:
        run_job(job)
    except BaseException:
        import traceback

        traceback.print_exc()
        raise
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


def _preload() -> None:
    """Import what the peers use once, in the runner, so that each forked worker has it."""
    import lmdb  # noqa: F401

    import benchmarks.agents_branches
    import benchmarks.agents_session
    import benchmarks.langgraph
    import benchmarks.peers.es_app
    import benchmarks.peers.raw_lmdb
    import benchmarks.peers.sqlite_store
    import benchmarks.pydantic_ai_steps
    import benchmarks.stores

    try:  # the PostgreSQL peers' libraries (psycopg, eventsourcing.postgres), where installed
        import eventsourcing.postgres  # noqa: F401

        import benchmarks.peers.pg_raw  # noqa: F401
    except ImportError:
        pass


class _Worker:
    """A forked worker process; in lockstep, with the two pipes of its barrier."""

    def __init__(self, job: Job, lockstep: bool) -> None:
        self.job = job
        self.log_path = job.result + ".log"
        control: tuple[int, int] | None = None
        self.go = self.ready = -1
        child_fds: tuple[int, ...] = ()
        if lockstep:
            go_r, self.go = os.pipe()
            self.ready, ready_w = os.pipe()
            control = (go_r, ready_w)
            child_fds = control
        self.started = time.perf_counter()
        self.proc = _FORK.Process(target=_child, args=(job, control, self.log_path))
        self.proc.start()
        for fd in child_fds:
            os.close(fd)

    def wait_ready(self, timeout: float) -> bool:
        """True when the worker waits at its barrier; False when it exited (or timed out)."""
        ready, _, _ = select.select([self.ready], [], [], max(0.0, timeout))
        if not ready:
            self.proc.kill()
            return False
        return os.read(self.ready, 1) == b"r"

    def go_on(self) -> None:
        """Let the worker run its next repetition."""
        os.write(self.go, b"g")

    def finish(self, deadline: float) -> PeerOutput:
        """Wait for the worker to exit; its output (or what went wrong)."""
        job = self.job
        try:
            self.proc.join(timeout=max(1.0, deadline - time.perf_counter()))
            if self.proc.exitcode is None:
                self.proc.kill()
                self.proc.join()
                return self._failed(f"timed out after {time.perf_counter() - self.started:.0f} s")
        finally:
            for fd in (self.go, self.ready):
                if fd >= 0:
                    os.close(fd)
        code = self.proc.exitcode
        if code != 0 or not os.path.exists(job.result):
            return self._failed(f"exit {code}")
        with open(job.result, "rb") as f:
            return msgspec.json.decode(f.read(), type=PeerOutput)

    def _failed(self, why: str) -> PeerOutput:
        try:
            with open(self.log_path, "rb") as f:
                tail = f.read()[-2000:].decode(errors="replace")
        except OSError:
            tail = ""
        took = time.perf_counter() - self.started
        return PeerOutput(
            self.job.workload, self.job.peer, seconds=took, error=f"{why}: {tail or '(no output)'}"
        )


def _lockstep(workers: list[_Worker], timeout: float) -> None:
    """Run the workers' repetitions one at a time, in turn, until every worker is done."""
    deadline = time.perf_counter() + timeout
    active = [w for w in workers if w.wait_ready(deadline - time.perf_counter())]
    while active:
        still = []
        for w in active:
            w.go_on()
            if w.wait_ready(deadline - time.perf_counter()):
                still.append(w)
        active = still


def _merge(outs: Sequence[PeerOutput]) -> PeerOutput:
    first = outs[0]
    merged = PeerOutput(
        first.workload,
        first.peer,
        rss_mib=max(o.rss_mib for o in outs),
        seconds=sum(o.seconds for o in outs),
        error=next((o.error for o in outs if o.error), None),
    )
    names = [v for v in first.variants if all(v in o.variants for o in outs)]
    for name in names:
        samples = [o.variants[name] for o in outs]
        pct: dict[str, float] = {}
        for k in samples[0].pct:
            pct[k] = statistics.median(s.pct[k] for s in samples)
        merged.variants[name] = Sample(
            samples[0].unit,
            [r for s in samples for r in s.reps],
            pct,
            samples[0].extra,
        )
    return merged


def _job(workload: Workload, peer: str, params: Params, tmp: str, r: int) -> Job:
    workdir = os.path.join(tmp, f"{workload.key}-{peer}-{r}")
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    result = os.path.join(tmp, f"{workload.key}-{peer}-{r}.json")
    return Job(workload.key, peer, params, workdir, result)


def _done(workload: Workload, out: PeerOutput, r: int, rounds: int, tmp: str) -> None:
    workdir = os.path.join(tmp, f"{workload.key}-{out.peer}-{r}")
    if workload.cleanup is not None:
        workload.cleanup(workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    status = "FAILED" if out.error else "ok"
    _log(
        f"  {workload.key:<15} {out.peer:<14} round {r + 1}/{rounds}  "
        f"{out.seconds:6.1f} s  {status}"
    )
    if out.error:
        _log("    " + out.error.strip().replace("\n", "\n    "))


def run_workload(workload: Workload, *, quick: bool, tmp: str) -> Outcome:
    """Run every peer of ``workload`` (each round, each peer: one subprocess)."""
    params = workload.params(quick)
    rounds = workload.rounds(quick)
    runs: list[PeerOutput] = []
    start = time.perf_counter()
    peers = list(workload.peers)
    for r in range(rounds):
        order = peers[r % len(peers) :] + peers[: r % len(peers)]
        t0 = time.perf_counter()
        if workload.lockstep:
            workers = [_Worker(_job(workload, peer, params, tmp, r), True) for peer in order]
            _lockstep(workers, workload.timeout)
            outs = [w.finish(t0 + workload.timeout) for w in workers]
            for out in outs:
                _done(workload, out, r, rounds, tmp)
        else:
            outs = []
            for peer in order:
                worker = _Worker(_job(workload, peer, params, tmp, r), False)
                outs.append(worker.finish(time.perf_counter() + workload.timeout))
                _done(workload, outs[-1], r, rounds, tmp)
        runs.extend(outs)
    merged: dict[str, PeerOutput] = {}
    for peer in peers:
        outs = [o for o in runs if o.peer == peer]
        merged[peer] = _merge(outs)
    return Outcome(
        workload.number,
        workload.key,
        workload.title,
        params,
        merged,
        runs,
        time.perf_counter() - start,
    )


def main(only: Sequence[str] | None = None, argv: Sequence[str] | None = None) -> None:
    """The command line of ``python -m benchmarks`` (and of each workload module)."""
    from benchmarks import report

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="The eventlog benchmark suite: the store against the limit and its peers.",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    parser.add_argument("--only", help="comma-separated workload keys: " + ", ".join(ALL))
    parser.add_argument("--json", action="store_true", help="print the JSON results to stdout")
    parser.add_argument("--out", help="results directory (default: benchmarks/results[/quick])")
    parser.add_argument(
        "--readme", action="store_true", help="update the table in benchmarks/README.md"
    )
    parser.add_argument("--no-chart", action="store_true", help="skip the PNG chart")
    parser.add_argument(
        "--no-gap", action="store_true", help="skip profiling the gaps of missed targets"
    )
    args = parser.parse_args(argv)
    keys = list(only) if only else (args.only.split(",") if args.only else list(ALL))
    unknown = [k for k in keys if k not in ALL]
    if unknown:
        parser.error(f"unknown workload(s) {unknown}; choose from {', '.join(ALL)}")
    partial = keys != list(ALL)
    pg_only = all(k.startswith("pg_") for k in keys)  # the PostgreSQL rows: their own results
    out_dir = args.out or os.path.join(
        RESULTS,
        "quick" if args.quick else ("postgres" if pg_only else ("partial" if partial else "")),
    )
    os.makedirs(out_dir, exist_ok=True)
    # a directory of this run's own: another run (a `make test` beside a `make bench`) must
    # never delete the data of this one
    os.makedirs(os.path.join(RESULTS, "tmp"), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f"run-{os.getpid()}-", dir=os.path.join(RESULTS, "tmp"))
    _preload()
    started = time.time()
    outcomes: list[Outcome] = []
    rows: list[Row] = []
    gaps: dict[str, str] = {}
    skipped: dict[str, str] = {}
    try:
        for i, key in enumerate(keys, 1):
            workload = load(key)
            _log(f"[{i}/{len(keys)}] {workload.number}. {workload.title}")
            reason = None if workload.skip is None else workload.skip()
            if reason is not None:
                _log(f"  skipped: {reason}")
                skipped[key] = reason
                continue
            outcome = run_workload(workload, quick=args.quick, tmp=tmp)
            outcomes.append(outcome)
            rows.extend(workload.rows(outcome.peers, outcome.params))
        if not args.no_gap and not args.quick:
            from benchmarks.gap import profile_missed

            gaps = profile_missed(rows, outcomes, tmp, _log)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    doc = report.build(outcomes, rows, gaps, quick=args.quick, started=started, argv=sys.argv)
    doc["skipped"] = skipped
    paths = report.write(doc, rows, out_dir, chart=not args.no_chart)
    if args.readme and not args.quick:
        readme = os.path.join(HERE, "README.md")
        pg_rows = [r for r in rows if r.number in PG_ROWS]
        if not partial:
            main_rows = [r for r in rows if r.number not in PG_ROWS]
            report.update_readme(readme, doc, main_rows, out_dir)
            report.update_readme(
                readme, doc, pg_rows, out_dir, section=report.PG_README, chart=False
            )
        elif pg_only:
            report.update_readme(readme, doc, pg_rows, out_dir, section=report.PG_README)
    if args.json:
        sys.stdout.write(msgspec.json.encode(doc).decode() + "\n")
    else:
        print(report.text_table(rows))
        print(report.meta_line(doc))
    _log("results: " + ", ".join(paths))
    failed = [o for oc in outcomes for o in oc.runs if o.error]
    if failed:
        _log(
            f"{len(failed)} worker(s) failed: "
            + ", ".join(f"{o.workload}/{o.peer}" for o in failed)
        )
        sys.exit(1)
