"""Workload 1: durable append, one event per call, one writer.

``python -m benchmarks.append_durable [--quick] [--json]``

Each repetition appends the same seeded events, one call (and one fsynced transaction) per
event, to a fresh run. Target: ≥ 0.9x raw py-lmdb doing one put per durable transaction.
The ``eventlog`` peer also measures a new stream's first event against an existing stream's
append (:mod:`benchmarks.new_streams`).
"""

from __future__ import annotations

from collections.abc import Mapping

from benchmarks.appending import single_append
from benchmarks.core import Params, PeerOutput, Row, Sample, Workload, compare_rows
from benchmarks.new_streams import new_stream_append, new_stream_rows


def _params(quick: bool) -> Params:
    return {"seed": 101, "events": 30 if quick else 200, "reps": 2 if quick else 8}


def _run(peer: str, params: Params, workdir: str) -> dict[str, Sample]:
    out = single_append(peer, params, workdir, durable=True)
    if peer == "eventlog":
        out.update(new_stream_append(params, workdir))
    return out


def _rows(outputs: Mapping[str, PeerOutput], params: Params) -> list[Row]:
    return [
        *compare_rows(
            1,
            "durable append, 1 event/call",
            outputs,
            "single",
            targets={"lmdb": ("≥ 0.9x raw LMDB, 1 put per durable txn", ">=", 0.9)},
            gap="append_durable",
        ),
        *new_stream_rows(1, outputs),
    ]


WORKLOAD = Workload(
    number=1,
    key="append_durable",
    title="durable append, 1 event/call, one writer",
    peers=("eventlog", "lmdb", "lmdb-ops", "sqlite", "eventsourcing", "memory"),
    params=_params,
    run=_run,
    rows=_rows,
)

if __name__ == "__main__":
    from benchmarks.runner import main

    main([WORKLOAD.key])
