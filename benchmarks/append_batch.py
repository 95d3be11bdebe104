"""Workload 2: durable append of batches of 100 events.

``python -m benchmarks.append_batch [--quick] [--json]``

Two variants, one durable transaction per batch: 100 events of one run (``append_events``),
and 100 events spread over 100 runs, one each (``append_many``). Targets: (one run) ≥ 0.7x raw
py-lmdb doing the same 100 puts in one durable transaction; (100 runs) ≥ 1.5x the sqlite3
store doing the same in one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping

from benchmarks.appending import batch_append
from benchmarks.core import Params, PeerOutput, Row, Sample, Workload, compare_rows


def _params(quick: bool) -> Params:
    return {"seed": 202, "batch": 100, "batches": 2 if quick else 20, "reps": 2 if quick else 6}


def _run(peer: str, params: Params, workdir: str) -> dict[str, Sample]:
    return batch_append(peer, params, workdir)


def _rows(outputs: Mapping[str, PeerOutput], params: Params) -> list[Row]:
    return [
        *compare_rows(
            2,
            "durable batch: 100 events of 1 run",
            outputs,
            "one_run",
            targets={"lmdb": ("≥ 0.7x raw LMDB, the same 100 puts per txn", ">=", 0.7)},
            gap="append_batch",
        ),
        *compare_rows(
            2,
            "durable batch: 100 runs x 1 event",
            outputs,
            "spread",
            targets={"sqlite": ("≥ 1.5x the sqlite3 store", ">=", 1.5)},
            gap="append_batch_spread",
        ),
    ]


WORKLOAD = Workload(
    number=2,
    key="append_batch",
    title="durable append of batches of 100 events",
    peers=("eventlog", "lmdb", "lmdb-ops", "sqlite", "eventsourcing", "memory"),
    params=_params,
    run=_run,
    rows=_rows,
)

if __name__ == "__main__":
    from benchmarks.runner import main

    main([WORKLOAD.key])
