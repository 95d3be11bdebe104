"""Workload 11: durable batches of 100 events on PostgreSQL.

``python -m benchmarks.pg_append_batch [--quick] [--json]``

One durable transaction per batch: 100 events of one run (``append_events``; eventsourcing:
one ``app.save`` of the aggregate's 100 new events; raw psycopg: one multi-row ``INSERT``),
and 100 events spread over 100 runs, one each (``append_many``; ``app.save`` of 100
aggregates). Target: at least eventsourcing's throughput for one run, 1.2x for 100 runs; the
ratio to raw psycopg is the distance from the server's limit.
"""

from __future__ import annotations

from collections.abc import Mapping

from benchmarks.appending import batch_append
from benchmarks.core import Params, PeerOutput, Row, Sample
from benchmarks.pg_rows import pg_rows, pg_workload


def _params(quick: bool) -> Params:
    return {"seed": 1111, "batch": 100, "batches": 2 if quick else 20, "reps": 1 if quick else 8}


def _run(peer: str, params: Params, workdir: str) -> dict[str, Sample]:
    return batch_append(peer, params, workdir)


def _rows(outputs: Mapping[str, PeerOutput], params: Params) -> list[Row]:
    return [
        *pg_rows(11, "PostgreSQL: durable batch, 100 events of 1 run", outputs, "one_run"),
        *pg_rows(
            11, "PostgreSQL: durable batch, 100 runs x 1 event", outputs, "spread", es_ratio=1.2
        ),
    ]


WORKLOAD = pg_workload(
    11,
    "pg_append_batch",
    "PostgreSQL: durable append of batches of 100 events",
    _params,
    _run,
    _rows,
)

if __name__ == "__main__":
    from benchmarks.runner import main

    main([WORKLOAD.key])
