"""Workload 14: listing on PostgreSQL - a page of 100 runs by status, and of 100 sessions.

``python -m benchmarks.pg_listing [--quick] [--json]``

One store per peer grows through the sizes (ten runs per session, every tenth run failed);
at each size, one call at a time: the page of the 100 newest failed runs
(``list_runs_filtered(status="failed", limit=100)``) and the page of the 100 most recently
updated sessions (``list_sessions(limit=100)``).

- ``eventlog-pg``: the store on PostgreSQL, filled through ``import_jsonl`` (as workload 6);
- ``psycopg`` (the limit): a ``runs`` table with a ``(status, created)`` index and a ``sessions``
  table with an ``(updated)`` index, msgspec-encoded records; one indexed
  ``SELECT v ... ORDER BY ... DESC LIMIT 100`` and a decode of each record.

The ``eventsourcing`` library has no query by status or listing of aggregates (its read side is a
projection into tables the user writes, which is what the limit peer is), so this row has no
eventsourcing peer and no target; the ratio to the limit is the distance from the server.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from benchmarks.core import (
    Params,
    PeerOutput,
    Row,
    Sample,
    latency_sample,
    measure_latency,
)
from benchmarks.data import MODEL, PROVIDER, uuids
from benchmarks.listing import _EventlogGrower, _label
from benchmarks.pg import schema_for
from benchmarks.pg_rows import pg_rows, pg_workload

PEERS = ("eventlog-pg", "psycopg")


def _params(quick: bool) -> Params:
    return {
        "seed": 1414,
        "sizes": [1_000, 2_000] if quick else [2_000, 20_000],
        "failed_every": 10,
        "per_session": 10,
        "calls": 20 if quick else 150,
        "reps": 1 if quick else 3,
        "warmup_calls": 5 if quick else 30,
    }


def _int(params: Params, key: str) -> int:
    value = params[key]
    assert isinstance(value, int)
    return value


def _sizes(params: Params) -> list[int]:
    value = params["sizes"]
    assert isinstance(value, list)
    return value


class _RawGrower:
    """The limit: the records in two indexed tables, one ``SELECT ... LIMIT 100`` a page."""

    def __init__(self, schema: str, per_session: int) -> None:
        import msgspec
        from psycopg import sql

        from benchmarks.pg import connect
        from eventlog import RunRecord, Session

        self.conn = connect()
        self.cur = self.conn.cursor(binary=True)
        s = sql.Identifier(schema)
        for statement in (
            "CREATE SCHEMA IF NOT EXISTS {s}",
            "CREATE TABLE {s}.runs (id uuid PRIMARY KEY, status text NOT NULL, "
            "created_us bigint NOT NULL, v bytea NOT NULL)",
            "CREATE INDEX ON {s}.runs (status, created_us DESC)",
            "CREATE TABLE {s}.sessions (id uuid PRIMARY KEY, updated_us bigint NOT NULL, "
            "v bytea NOT NULL)",
            "CREATE INDEX ON {s}.sessions (updated_us DESC)",
        ):
            self.conn.execute(sql.SQL(statement).format(s=s))
        self.insert_runs = sql.SQL(
            "INSERT INTO {s}.runs SELECT * FROM unnest(%s::uuid[], %s::text[], %s::bigint[], "
            "%b::bytea[])"
        ).format(s=s)
        self.insert_sessions = sql.SQL(
            "INSERT INTO {s}.sessions SELECT * FROM unnest(%s::uuid[], %s::bigint[], %b::bytea[])"
        ).format(s=s)
        self.page_runs = sql.SQL(
            "SELECT v FROM {s}.runs WHERE status = %s ORDER BY created_us DESC LIMIT 100"
        ).format(s=s)
        self.page_sessions = sql.SQL(
            "SELECT v FROM {s}.sessions ORDER BY updated_us DESC LIMIT 100"
        ).format(s=s)
        self.encode = msgspec.msgpack.Encoder(uuid_format="bytes").encode
        self.decode_run = msgspec.msgpack.Decoder(RunRecord).decode
        self.decode_session = msgspec.msgpack.Decoder(Session).decode
        self.clock = datetime(2025, 1, 1, tzinfo=UTC)
        self.per = per_session

    def grow(self, run_ids: list[UUID], session_ids: list[UUID], failed: list[UUID]) -> None:
        from eventlog import RunRecord, Session
        from eventlog.model.status import RunStatus

        failed_set = set(failed)
        runs: tuple[list[Any], ...] = ([], [], [], [])
        sessions: tuple[list[Any], ...] = ([], [], [])
        for j, rid in enumerate(run_ids):
            self.clock += timedelta(microseconds=50)
            now, us = self.clock, int(self.clock.timestamp() * 1e6)
            sid = session_ids[j // self.per]
            if j % self.per == 0:
                session = Session(sid, "bench", MODEL, {}, now, now)
                for col, v in zip(sessions, (sid, us, self.encode(session)), strict=True):
                    col.append(v)
            status = RunStatus.FAILED if rid in failed_set else RunStatus.PENDING
            record = RunRecord(rid, sid, status, PROVIDER, MODEL, {}, None, now, now)
            for col, v in zip(runs, (rid, status.value, us, self.encode(record)), strict=True):
                col.append(v)
        with self.conn.transaction():
            self.cur.execute(self.insert_sessions, sessions)
            self.cur.execute(self.insert_runs, runs)
        self.conn.execute("ANALYZE")

    def runs_query(self) -> Callable[[int], object]:
        cur, query, decode = self.cur, self.page_runs, self.decode_run

        def call(i: int) -> object:
            page = [decode(r[0]) for r in cur.execute(query, ("failed",), prepare=True)]
            assert len(page) == 100
            return page

        return call

    def sessions_query(self) -> Callable[[int], object]:
        cur, query, decode = self.cur, self.page_sessions, self.decode_session

        def call(i: int) -> object:
            page = [decode(r[0]) for r in cur.execute(query, prepare=True)]
            assert len(page) == 100
            return page

        return call


class _StoreGrower(_EventlogGrower):
    """The store on PostgreSQL, filled as workload 6 fills it (``import_jsonl``)."""

    def runs_query(self) -> Callable[[int], object]:
        return self.query()

    def sessions_query(self) -> Callable[[int], object]:
        lister = self.store.list_sessions

        def call(i: int) -> object:
            page = lister(limit=100)
            assert len(page) == 100
            return page

        return call


def _run(peer: str, params: Params, workdir: str) -> dict[str, Sample]:
    sizes, per = _sizes(params), _int(params, "per_session")
    top = sizes[-1]
    ids = uuids(_int(params, "seed"), top + top // per + 1)
    run_ids, session_ids = ids[:top], ids[top:]
    grower: _StoreGrower | _RawGrower
    if peer == "eventlog-pg":
        grower = _StoreGrower(peer, workdir, per)
    elif peer == "psycopg":
        grower = _RawGrower(schema_for(os.path.join(workdir, peer)), per)
    else:
        raise ValueError(f"unknown peer {peer}")
    from benchmarks.peers.pg_raw import trips_per_call  # psycopg: only where it runs

    out: dict[str, Sample] = {}
    done = 0
    every = _int(params, "failed_every")
    for size in sizes:
        new = run_ids[done:size]
        sessions = session_ids[done // per : (size + per - 1) // per]
        failed = [rid for k, rid in enumerate(new, done) if k % every == every - 1]
        grower.grow(new, sessions, failed)
        done = size
        for name, query in (("runs", grower.runs_query()), ("sessions", grower.sessions_query())):
            p50, calls = measure_latency(
                query,
                calls=_int(params, "calls"),
                reps=_int(params, "reps"),
                warmup_calls=_int(params, "warmup_calls"),
            )
            out[f"{name}-{size}"] = latency_sample(p50, calls, **trips_per_call(query))
    return out


def _rows(outputs: Mapping[str, PeerOutput], params: Params) -> list[Row]:
    rows: list[Row] = []
    for size in _sizes(params):
        for name, title in (
            ("runs", "list_runs_filtered(status='failed', limit=100)"),
            ("sessions", "list_sessions(limit=100)"),
        ):
            rows += pg_rows(
                14,
                f"PostgreSQL: {title}, {_label(size)} runs",
                outputs,
                f"{name}-{size}",
                labels={"psycopg": "raw psycopg indexed SELECT + decode (limit)"},
                es_target=False,
            )
    return rows


WORKLOAD = pg_workload(
    14,
    "pg_listing",
    "PostgreSQL: list_runs_filtered and list_sessions pages on 2k and 20k runs",
    _params,
    _run,
    _rows,
    peers=PEERS,
    timeout=400.0,
)

if __name__ == "__main__":
    from benchmarks.runner import main

    main([WORKLOAD.key])
