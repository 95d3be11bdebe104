"""The rows of the PostgreSQL workloads (10-14, 18): ours vs. eventsourcing and the limit.

Every PostgreSQL row divides by ``eventlog-pg`` (the store on PostgreSQL). The issue's target
is at least the ``eventsourcing`` library's throughput on every row; the ratio to raw psycopg
is reported as the distance from the server's own limit. Where a peer's sample counted its
queries and round trips per call, the figure says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

from benchmarks.core import Params, PeerOutput, Row, Sample, Workload, compare_rows, fmt_num
from benchmarks.pg import drop_job_schemas, skip_reason

__all__ = ["ES_TARGET", "LIMIT_NOTE", "PG_PEERS", "pg_rows", "pg_workload"]

#: the peers of the PostgreSQL rows (workload 14 has no eventsourcing peer)
PG_PEERS = ("eventlog-pg", "eventsourcing-pg", "psycopg")


def _es_target(ratio: float) -> tuple[str, Literal[">=", "<="], float]:
    """The target "at least ``ratio`` times eventsourcing's throughput"."""
    return (f"≥ {ratio:g}x eventsourcing (PostgreSQL), same server", ">=", ratio)


ES_TARGET = _es_target(1.0)
LIMIT_NOTE = "the distance from the server's limit (no target)"


def pg_rows(
    number: int,
    title: str,
    outputs: Mapping[str, PeerOutput],
    variant: str,
    *,
    labels: Mapping[str, str] | None = None,
    es_target: bool = True,
    es_ratio: float = 1.0,
) -> list[Row]:
    """Ours (``eventlog-pg``), then eventsourcing (with the target: ``es_ratio``) and the limit."""
    rows = compare_rows(
        number,
        title,
        outputs,
        variant,
        targets={"eventsourcing-pg": _es_target(es_ratio)} if es_target else None,
        labels=labels,
        ours_peer="eventlog-pg",
    )
    peers = ["eventlog-pg", *(p for p in outputs if p != "eventlog-pg")]
    shown = [p for p in peers if p == "eventlog-pg" or variant in outputs[p].variants]
    for row, peer in zip(rows, shown, strict=False):
        if peer == "psycopg":
            row.note = LIMIT_NOTE
        out = outputs.get(peer)
        sample = None if out is None else out.variants.get(variant)
        if sample is None:
            continue
        trips, queries = sample.extra.get("trips_per_call"), sample.extra.get("queries_per_call")
        if isinstance(trips, int | float) and isinstance(queries, int | float):
            row.figure += f"; {fmt_num(trips)} round trips, {fmt_num(queries)} queries per call"
            row.extra["trips_per_call"] = float(trips)
            row.extra["queries_per_call"] = float(queries)
        group = sample.extra.get("appends_per_txn")
        if isinstance(group, int | float):
            row.figure += f", {fmt_num(group)} appends per transaction"
            row.extra["appends_per_txn"] = float(group)
    return rows


def pg_workload(
    number: int,
    key: str,
    title: str,
    params: Callable[[bool], Params],
    run: Callable[[str, Params, str], dict[str, Sample]],
    rows: Callable[[Mapping[str, PeerOutput], Params], list[Row]],
    *,
    peers: tuple[str, ...] = PG_PEERS,
    timeout: float = 300.0,
) -> Workload:
    """A PostgreSQL workload: skipped without a server, its schemas dropped after each worker."""
    return Workload(
        number=number,
        key=key,
        title=title,
        peers=peers,
        params=params,
        run=run,
        rows=rows,
        skip=skip_reason,
        cleanup=drop_job_schemas,
        timeout=timeout,
    )
