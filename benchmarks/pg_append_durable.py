"""Workload 10: durable single append on PostgreSQL, one event per call, one writer.

``python -m benchmarks.pg_append_durable [--quick] [--json]``

Each repetition appends the same seeded events, one call (and one durable commit:
``synchronous_commit=on``) per event, to a fresh run; the three peers share one server and run
in lockstep. Target: at least the ``eventsourcing`` library's PostgreSQL persistence; the ratio
to raw psycopg (one ``INSERT`` per transaction) says how far the row is from the server's own
insert limit.
"""

from __future__ import annotations

from collections.abc import Mapping

from benchmarks.appending import single_append
from benchmarks.core import Params, PeerOutput, Row, Sample
from benchmarks.pg_rows import pg_rows, pg_workload


def _params(quick: bool) -> Params:
    return {"seed": 1010, "events": 20 if quick else 200, "reps": 1 if quick else 10}


def _run(peer: str, params: Params, workdir: str) -> dict[str, Sample]:
    return single_append(peer, params, workdir, durable=True)


def _rows(outputs: Mapping[str, PeerOutput], params: Params) -> list[Row]:
    return pg_rows(10, "PostgreSQL: durable append, 1 event/call", outputs, "single")


WORKLOAD = pg_workload(
    10,
    "pg_append_durable",
    "PostgreSQL: durable append, 1 event/call, one writer",
    _params,
    _run,
    _rows,
)

if __name__ == "__main__":
    from benchmarks.runner import main

    main([WORKLOAD.key])
