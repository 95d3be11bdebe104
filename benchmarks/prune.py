"""Workload 26: prune terminal runs - the prune rate (runs/s and events/s), LMDB and PostgreSQL.

``python -m benchmarks.prune [--quick] [--json]``

Each repetition first writes (untimed) ``runs`` completed runs of ``events`` seeded events
each, in sessions of 10, next to as many running runs that must stay; then it removes the
completed ones:

- ``eventlog`` / ``eventlog-pg``: ``store.prune()`` - the selection in one snapshot, then
  batches of 100 runs, each one transaction that re-checks every run, deletes it with its
  events, positions and view entries, and records the pruned ranges;
- ``delete_run`` / ``delete_run-pg``: what a user without ``prune`` writes: list the
  completed runs (``list_runs_filtered``) and ``store.delete_run`` each one (one transaction,
  one durable commit each).

Both run durable. The PostgreSQL peers need the server (see the README); without it they
report nothing. No target: the figure is the rate, the ratio how much batching buys.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from benchmarks.core import (
    THROUGHPUT,
    Params,
    PeerOutput,
    Row,
    Sample,
    Workload,
    compare_rows,
    int_param,
    measure_throughput,
)
from benchmarks.data import MODEL, PROVIDER, run_events
from benchmarks.pg import drop_job_schemas

RUNS = "runs/s"


def _params(quick: bool) -> Params:
    return {
        "seed": 2121,
        "runs": 20 if quick else 1000,
        "events": 10 if quick else 50,
        "reps": 1 if quick else 3,
    }


def _run(peer: str, params: Params, workdir: str) -> dict[str, Sample]:
    from benchmarks.pg import skip_reason
    from benchmarks.stores import open_eventlog
    from eventlog.model.events import RunCompleted

    pg = peer.endswith("-pg")
    if pg and skip_reason() is not None:
        return {}
    n_runs, n_events = int_param(params, "runs"), int_param(params, "events")
    store = open_eventlog("eventlog-pg" if pg else "eventlog", workdir, "durable")
    events = [*run_events(int_param(params, "seed"), n_events - 1), RunCompleted("stop", 1)]

    def setup() -> Callable[[], int]:
        sessions = [store.create_session().id for _ in range(max(1, n_runs // 10))]
        for i in range(n_runs):
            sid = sessions[i // 10 % len(sessions)]
            store.create_run(sid, provider=PROVIDER, model=MODEL, events=events)
            store.create_run(sid, provider=PROVIDER, model=MODEL, events=events[:3])
        if peer.startswith("delete_run"):

            def work() -> int:
                done = store.list_runs_filtered(status="completed", limit=n_runs + 1)
                for run in done:
                    store.delete_run(run.id)
                assert len(done) == n_runs
                return n_runs * n_events

            return work

        def prune() -> int:
            report = store.prune()
            assert report.runs == n_runs
            return report.events

        return prune

    reps = measure_throughput(setup, reps=int_param(params, "reps"), warmup=1)
    store.close()
    extra: dict[str, float | int | str | list[float]] = {"runs": n_runs, "events": n_events}
    return {
        "events": Sample(THROUGHPUT, reps, extra=extra),
        "runs": Sample(RUNS, [r / n_events for r in reps], extra=extra),
    }


def _rows(outputs: Mapping[str, PeerOutput], params: Params) -> list[Row]:
    n_runs, n_events = int_param(params, "runs"), int_param(params, "events")
    rows: list[Row] = []
    for ours, theirs, where in (
        ("eventlog", "delete_run", "LMDB"),
        ("eventlog-pg", "delete_run-pg", "PostgreSQL"),
    ):
        pair = {p: outputs[p] for p in (ours, theirs) if p in outputs}
        for variant in ("runs", "events"):
            rows += compare_rows(
                26,
                f"prune {n_runs:,} runs of {n_events} events ({where}, {variant}/s)",
                pair,
                variant,
                labels={
                    "eventlog": "eventlog prune (LMDB)",
                    "delete_run": "delete_run one by one (LMDB)",
                    "eventlog-pg": "eventlog prune (PostgreSQL)",
                    "delete_run-pg": "delete_run one by one (PostgreSQL)",
                },
                ours_peer=ours,
            )
    return rows


WORKLOAD = Workload(
    number=26,
    key="prune",
    title="prune terminal runs (runs/s, events/s)",
    peers=("eventlog", "delete_run", "eventlog-pg", "delete_run-pg"),
    params=_params,
    run=_run,
    rows=_rows,
    lockstep=False,
    cleanup=drop_job_schemas,
)

if __name__ == "__main__":
    from benchmarks.runner import main

    main([WORKLOAD.key])
