"""Workload 3: fast (non-durable) append, one event per call.

``python -m benchmarks.append_fast [--quick] [--json]``

``durability="fast"``: LMDB's ``MDB_NOSYNC`` for the store and the raw peers, sqlite3 with
``synchronous=NORMAL`` (and ``OFF``). Targets: ≥ 2x the sqlite3 store at ``synchronous=OFF``
(it replaces the earlier ≥ 5x at ``NORMAL`` and ``OFF``), ≥ 0.5x raw py-lmdb replaying every
operation the store makes for the same appends (what the store's Python costs on top of its
LMDB work), and ≥ 0.4x raw py-lmdb doing one put per non-durable transaction (kept).
"""

from __future__ import annotations

from collections.abc import Mapping

from benchmarks.appending import single_append
from benchmarks.core import Params, PeerOutput, Row, Sample, Workload, compare_rows


def _params(quick: bool) -> Params:
    return {"seed": 303, "events": 200 if quick else 4000, "reps": 2 if quick else 8}


def _run(peer: str, params: Params, workdir: str) -> dict[str, Sample]:
    return single_append(peer, params, workdir, durable=False)


def _rows(outputs: Mapping[str, PeerOutput], params: Params) -> list[Row]:
    return compare_rows(
        3,
        "fast append, 1 event/call",
        outputs,
        "single",
        targets={
            "lmdb": ("≥ 0.4x raw LMDB, 1 put per non-durable txn", ">=", 0.4),
            "lmdb-ops": ("≥ 0.5x raw LMDB doing the store's ops", ">=", 0.5),
            "sqlite-off": ("≥ 2x the sqlite3 store (synchronous=OFF)", ">=", 2.0),
        },
        labels={"sqlite": "sqlite3 store, sync=NORMAL"},
        gap="append_fast",
    )


WORKLOAD = Workload(
    number=3,
    key="append_fast",
    title="fast (non-durable) append, 1 event/call",
    peers=("eventlog", "lmdb", "lmdb-ops", "sqlite", "sqlite-off", "memory"),
    params=_params,
    run=_run,
    rows=_rows,
)

if __name__ == "__main__":
    from benchmarks.runner import main

    main([WORKLOAD.key])
