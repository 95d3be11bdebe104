"""Workload 22: what the tool-effect ledger costs an append (events/s, with and without it).

``python -m benchmarks.tool_ledger [--quick] [--json]``

``runs`` seeded agent runs (their tool calls: started, argument delta, completed, executed
with success or failure) are appended one event per call, on LMDB in fast mode:

- ``eventlog``: the store as shipped (the ``tool_ledger`` projector runs in every append
  that carries a tool event);
- ``no_ledger``: the same store with the ledger taken out of its built-in projectors (this
  benchmark's worker only), so the ratio is the ledger's share of an append.

Target: ≥ 0.9x the store without the ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

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
from benchmarks.data import run_events, uuids


def _params(quick: bool) -> Params:
    return {
        "seed": 2121,
        "runs": 4 if quick else 40,
        "events": 100 if quick else 500,
        "reps": 1 if quick else 7,
    }


def _without_ledger() -> None:
    """Take the ledger out of the built-ins this worker's stores get."""
    import eventlog.store.core as core
    from eventlog.engine.protocols import Projector
    from eventlog.store.builtins import with_builtins

    def builtins_but_ledger(projectors: Sequence[Projector]) -> list[Projector]:
        return [p for p in with_builtins(projectors) if p.name != "tool_ledger"]

    setattr(core, "with_builtins", builtins_but_ledger)  # noqa: B010  # the module's global


def _run(peer: str, params: Params, workdir: str) -> dict[str, Sample]:
    from benchmarks.stores import create_runs, open_eventlog

    if peer == "no_ledger":
        _without_ledger()
    elif peer != "eventlog":
        raise ValueError(f"unknown peer {peer}")
    n, per_run = int_param(params, "runs"), int_param(params, "events")
    seed = int_param(params, "seed")
    templates = [run_events(seed + i, per_run) for i in range(4)]
    store = open_eventlog("eventlog", workdir, "fast")
    names = {p.name for p in store.projector_status()}
    assert ("tool_ledger" in names) == (peer == "eventlog")
    rep = 0

    def setup() -> Callable[[], int]:
        nonlocal rep
        rep += 1
        ids = uuids(seed * 1000 + rep, n + 1)
        create_runs(store, ids[:n], ids[n:], n)

        def work() -> int:
            for i, rid in enumerate(ids[:n]):
                for event in templates[i % 4]:
                    store.append_event(rid, event)
            return n * per_run

        return work

    reps = measure_throughput(setup, reps=int_param(params, "reps"), warmup=1)
    store.close()
    return {"append": Sample(THROUGHPUT, reps, extra={"events": n * per_run})}


def _rows(outputs: Mapping[str, PeerOutput], params: Params) -> list[Row]:
    total = int_param(params, "runs") * int_param(params, "events")
    return compare_rows(
        22,
        f"append {total:,} agent-run events one by one, with the tool ledger",
        outputs,
        "append",
        targets={"no_ledger": ("≥ 0.9x the store without the ledger", ">=", 0.9)},
        labels={"no_ledger": "the same store without the tool ledger"},
    )


WORKLOAD = Workload(
    number=22,
    key="tool_ledger",
    title="the tool-effect ledger's cost per append",
    peers=("eventlog", "no_ledger"),
    params=_params,
    run=_run,
    rows=_rows,
)

if __name__ == "__main__":
    from benchmarks.runner import main

    main([WORKLOAD.key])
