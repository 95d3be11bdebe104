r"""Where the time of one durable append on PostgreSQL goes (the gap to raw psycopg).

``python -m benchmarks.pg_gap [--calls N] [--rounds R] [--json] [--spread | --listing]``

In one process, on one server, in alternating rounds of ``--calls`` appends each:

- ``store``: ``append_event`` on the store (``durability="durable"``), a fresh run per round;
- ``store SQL``: the store's own statements for the same appends, recorded from the store
  (the queries, their parameters and where the pipeline starts) and replayed with nothing but
  psycopg into a second store schema: the store minus this is the engine's Python;
- ``store SQL, no notify``: the same without ``pg_notify``;
- ``2 trips, 1 INSERT``: ``BEGIN; lock; SELECT token`` then a pipeline of one ``INSERT`` and
  ``COMMIT``: the store's protocol with the limit's single row;
- ``limit``: one autocommit ``INSERT`` per event (the limit of workload 10).

For each: the median and mean time of one call, and the client CPU per call
(``time.process_time``): wall minus CPU is the time spent waiting for the server.

``--spread`` times one durable batch of 100 runs x 1 event (workload 11's second row):
``append_many``, its recorded statements replayed with psycopg (the store minus this is the
engine's Python), eventsourcing's ``app.save`` of 100 aggregates with one new event each, and
the limit's one multi-row ``INSERT``; ``--calls`` / 10 batches per round.

``--listing`` does the same for one page of ``list_runs_filtered(status="failed", limit=100)``
on a store of ``--runs`` runs (workload 14's data): the store; its recorded statements replayed
one by one (what it sends: a round trip each); the same reads with the point ``SELECT``\ s of
each table batched into one ``WHERE k = ANY(...)`` (what a batched read in the backend could
send); and the limit's one indexed ``SELECT``.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import struct
import time
from collections.abc import Callable
from functools import partial
from typing import Any

__all__ = ["main"]

_pack = struct.Struct(">Q").pack

#: one recorded transaction: (query text, params, sent in the pipeline)
Recorded = list[tuple[bytes, Any, bool]]


def _record(store: Any, rid: Any, events: list[Any]) -> list[Recorded]:
    """Append ``events``; every statement the store sent, one list per transaction."""
    return _recording([partial(store.append_event, rid, ev) for ev in events])


def _recording(calls: list[Callable[[], object]]) -> list[Recorded]:
    """Make ``calls``; every statement the store sent, one list per write transaction."""
    import psycopg

    txns: list[Recorded] = []
    execute = psycopg.Cursor.execute

    def spy(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        text = query.as_bytes(self) if hasattr(query, "as_bytes") else query
        if isinstance(text, str):
            text = text.encode()
        if text.startswith(b"BEGIN;"):
            txns.append([])
        txns[-1].append((text, params, self._conn._pipeline is not None))
        return execute(self, query, params, **kwargs)

    psycopg.Cursor.execute = spy  # type: ignore[method-assign]
    try:
        for call in calls:
            call()
    finally:
        psycopg.Cursor.execute = execute  # type: ignore[method-assign]
    return txns


def _retarget(txns: list[Recorded], old: str, new: str, notify: bool) -> list[Recorded]:
    a, b = f'"{old}"'.encode(), f'"{new}"'.encode()
    out = []
    for txn in txns:
        stmts = []
        for text, params, piped in txn:
            if not notify:  # the commit's simple query without its pg_notify
                text = re.sub(rb"SELECT pg_notify\([^)]*\); ", b"", text)
            stmts.append((text.replace(a, b), params, piped))
        out.append(stmts)
    return out


def _replayer(conn: Any, txns: list[Recorded]) -> Callable[[int], None]:
    cur = conn.cursor(binary=True)
    text_cur = conn.cursor()  # the three statements of BEGIN go as one simple query

    def call(i: int) -> None:  # as the store sends them: a round trip each
        for text, params, _ in txns[i]:
            if params:
                cur.execute(text, params)
                if cur.description is not None:
                    cur.fetchall()
            else:  # BEGIN + lock + token + position, or the commit: one simple query
                text_cur.execute(text, prepare=False)

    return call


def _timed(
    variants: dict[str, Callable[[int, int], Callable[[int], object]]], calls: int, rounds: int
) -> dict[str, dict[str, float]]:
    """Each variant ``calls`` times per round, in alternation; p50, mean, client CPU per call.

    A variant is made anew for each round: ``make(round, a number unique to the round and the
    variant)`` returns the call.
    """
    wall: dict[str, list[float]] = {v: [] for v in variants}
    cpu: dict[str, float] = dict.fromkeys(variants, 0.0)
    for r in range(rounds):
        for k, (name, make) in enumerate(variants.items()):
            call = make(r, r * 10 + k)
            c0 = time.process_time()
            for i in range(calls):
                t0 = time.perf_counter()
                call(i)
                wall[name].append((time.perf_counter() - t0) * 1e6)
            cpu[name] += time.process_time() - c0
    return {
        name: {
            "p50_us": round(statistics.median(w), 1),
            "mean_us": round(statistics.fmean(w), 1),
            "client_cpu_us": round(cpu[name] / len(w) * 1e6, 1),
        }
        for name, w in wall.items()
    }


def _listing(runs: int, calls: int, rounds: int) -> dict[str, dict[str, float]]:
    """The listing page's variants (see the module's docstring)."""
    import tempfile

    import psycopg
    from psycopg import sql

    from benchmarks.data import uuids
    from benchmarks.pg import connect, drop_job_schemas
    from benchmarks.pg_listing import _RawGrower, _StoreGrower

    workdir = tempfile.mkdtemp(prefix="eb_gap_")
    raw_schema = f"eb_gap_{int(time.time() * 1000) % 10**9}_list"
    try:
        ids = uuids(77, runs + runs // 10 + 1)
        run_ids, session_ids = ids[:runs], ids[runs:]
        store = _StoreGrower("eventlog-pg", workdir, 10)
        raw = _RawGrower(raw_schema, 10)
        for grower in (store, raw):
            grower.grow(run_ids, session_ids, run_ids[9::10])
        page = store.runs_query()
        page(0)
        recorded: list[tuple[bytes, Any]] = []
        execute = psycopg.Cursor.execute

        def spy(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
            text = query.as_bytes(self) if hasattr(query, "as_bytes") else query
            recorded.append((text if isinstance(text, bytes) else text.encode(), params))
            return execute(self, query, params, **kwargs)

        psycopg.Cursor.execute = spy  # type: ignore[method-assign]
        try:
            page(0)
        finally:
            psycopg.Cursor.execute = execute  # type: ignore[method-assign]
        conn = connect()
        cur = conn.cursor(binary=True)
        point = re.compile(rb"SELECT v FROM (\S+) WHERE k = %b$")
        batched: dict[bytes, list[bytes]] = {}
        others: list[tuple[bytes, Any]] = []
        for text, params in recorded:
            m = point.match(text)
            if m is None:
                others.append((text, params))
            else:
                batched.setdefault(m.group(1), []).append(params[0])
        many = [
            (b"SELECT k, v FROM " + table + b" WHERE k = ANY(%b)", (keys,))
            for table, keys in batched.items()
        ]
        begin, scan, end = others[0], others[1:-1], others[-1]

        def replay(i: int) -> None:
            for text, params in recorded:
                cur.execute(text, params)
                if cur.description is not None:
                    cur.fetchall()

        def batch(i: int) -> None:
            for text, params in [begin, *scan, *many, end]:
                cur.execute(text, params)
                if cur.description is not None:
                    cur.fetchall()

        limit = raw.runs_query()
        out = _timed(
            {
                "store": lambda r, k: page,
                f"store SQL ({len(recorded)} statements)": lambda r, k: replay,
                f"batched reads ({len(others) + len(many)} statements)": lambda r, k: batch,
                "limit: 1 indexed SELECT": lambda r, k: limit,
            },
            calls,
            rounds,
        )
        conn.close()
        store.store.close()
        raw.conn.close()
        return out
    finally:
        drop_job_schemas(workdir)
        with connect() as c:
            c.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(raw_schema))
            )


def _spread(calls: int, rounds: int) -> dict[str, dict[str, float]]:
    """One durable batch of 100 runs x 1 event (workload 11's miss), by each peer."""
    from psycopg import sql

    from benchmarks.data import MODEL, PROVIDER, run_events, to_plain
    from benchmarks.peers.es_app import EsRun, open_pg_app
    from benchmarks.peers.pg_raw import RawPg
    from benchmarks.pg import URL, connect, create_schema, store_url
    from eventlog import AppendRequest, RunStore

    stamp = f"{int(time.time() * 1000) % 10**9}"
    schemas = [f"eb_gap_{stamp}_{s}" for s in ("store", "ops", "es", "raw")]
    store = RunStore.open(store_url(schemas[0]), durability="durable")
    RunStore.open(store_url(schemas[1])).close()  # an empty store: the replay's target
    create_schema(schemas[2])
    app = open_pg_app(URL, schemas[2])
    raw = RawPg(URL, schemas[3])
    ops = connect()
    try:
        sid = store.create_session().id
        events = run_events(2121, 100 * calls)

        def runs() -> list[Any]:
            return [store.create_run(sid, provider=PROVIDER, model=MODEL).id for _ in range(100)]

        def batch(rids: list[Any], i: int) -> list[AppendRequest]:
            return [AppendRequest(r, [events[i * 100 + k]]) for k, r in enumerate(rids)]

        recorded: list[Recorded] = []
        for _ in range(rounds):
            rids = runs()
            recorded += _recording(
                [partial(store.append_many, batch(rids, i)) for i in range(calls)]
            )
        txns = _retarget(recorded, schemas[0], schemas[1], True)

        def store_round(r: int, k: int) -> Callable[[int], object]:
            rids = runs()
            return lambda i: store.append_many(batch(rids, i))

        def es_round(r: int, k: int) -> Callable[[int], object]:
            aggregates = [EsRun(PROVIDER, MODEL) for _ in range(100)]
            app.save(*aggregates)

            def call(i: int) -> None:
                for a, ev in zip(aggregates, events[i * 100 : (i + 1) * 100], strict=True):
                    a.append_event(type(ev).__name__, to_plain(ev))
                app.save(*aggregates)

            return call

        def limit(r: int, k: int) -> Callable[[int], object]:
            keys = [b"\x01" * 16 + _pack(k * 1_000_000 + j) for j in range(100 * calls)]
            return lambda i: raw.insert_many(keys[i * 100 : (i + 1) * 100], [b"x" * 120] * 100)

        return _timed(
            {
                "store: append_many": store_round,
                "store SQL (2 round trips)": lambda r, k: _replayer(
                    ops, txns[r * calls : (r + 1) * calls]
                ),
                "eventsourcing: save 100 aggregates": es_round,
                "limit: 1 multi-row INSERT": limit,
            },
            calls,
            rounds,
        )
    finally:
        store.close()
        app.close()
        raw.close()
        ops.close()
        with connect() as conn:
            for s in schemas:
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(s)))


def main(argv: list[str] | None = None) -> None:
    """Measure, print the table (or ``--json``)."""
    from psycopg import sql

    from benchmarks.data import MODEL, PROVIDER, run_events
    from benchmarks.peers.pg_raw import RawPg
    from benchmarks.pg import URL, connect, skip_reason, store_url
    from eventlog import RunStore

    parser = argparse.ArgumentParser(prog="python -m benchmarks.pg_gap")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--listing", action="store_true", help="one listing page instead")
    parser.add_argument("--spread", action="store_true", help="a batch of 100 runs x 1 event")
    parser.add_argument("--runs", type=int, default=20_000, help="runs in the listing's store")
    args = parser.parse_args(argv)
    reason = skip_reason()
    if reason is not None:
        print(f"skipped: {reason}")
        return
    if args.spread:
        what = "one batch, 100 runs x 1 event"
        _print(_spread(max(1, args.calls // 10), args.rounds), args.json, what)
        return
    if args.listing:
        _print(_listing(args.runs, max(1, args.calls // 4), args.rounds), args.json, "one page")
        return
    stamp = f"{int(time.time() * 1000) % 10**9}"
    schemas = [f"eb_gap_{stamp}_{s}" for s in ("store", "ops", "ops2", "raw")]
    store = RunStore.open(store_url(schemas[0]), durability="durable")
    for schema in schemas[1:3]:  # two empty stores: the replays' targets
        RunStore.open(store_url(schema)).close()
    try:
        sid = store.create_session().id
        n, rounds = args.calls, args.rounds
        events = run_events(2020, n * (rounds + 1))
        rid = store.create_run(sid, provider=PROVIDER, model=MODEL).id
        recorded = _record(store, rid, events[: n * rounds])
        ops = connect()
        lock = sql.SQL("SELECT pg_advisory_xact_lock(1)").as_bytes(ops)
        raw = RawPg(URL, schemas[3])
        two_begin = b"BEGIN; " + lock
        key = b"\x01" * 16
        variants: dict[str, Callable[[int, int], Callable[[int], object]]] = {}

        def store_round(r: int, k: int) -> Callable[[int], None]:
            run = store.create_run(sid, provider=PROVIDER, model=MODEL).id

            def call(i: int) -> None:
                store.append_event(run, events[i % len(events)])

            return call

        def ops_round(target: str, notify: bool) -> Callable[[int, int], Callable[[int], None]]:
            txns = _retarget(recorded, schemas[0], target, notify)

            def make(r: int, k: int) -> Callable[[int], None]:
                return _replayer(ops, txns[r * n : (r + 1) * n])

            return make

        def two_trips(r: int, k: int) -> Callable[[int], None]:
            cur, text_cur = ops.cursor(binary=True), ops.cursor()
            insert = raw._one

            def call(i: int) -> None:
                text_cur.execute(two_begin, prepare=False)
                with ops.pipeline():
                    cur.execute(insert, (key + _pack(k * 1_000_000 + i), b"x" * 120))
                    cur.execute(b"COMMIT")

            return call

        def limit(r: int, k: int) -> Callable[[int], None]:
            return lambda i: raw.insert(key + _pack(k * 1_000_000 + 500_000 + i), b"x" * 120)

        variants["store"] = store_round
        variants["store SQL"] = ops_round(schemas[1], True)
        variants["store SQL, no notify"] = ops_round(schemas[2], False)
        variants["2 trips, 1 INSERT"] = two_trips
        variants["limit: 1 INSERT"] = limit
        out = _timed(variants, n, rounds)
        ops.close()
        raw.close()
    finally:
        store.close()
        with connect() as conn:
            for s in schemas:
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(s)))
    _print(out, args.json, "one durable append")


def _print(out: dict[str, dict[str, float]], as_json: bool, what: str) -> None:
    if as_json:
        print(json.dumps(out, indent=1))
        return
    width = max(len(what), *(len(name) for name in out)) + 1
    print(f"{what:<{width}} {'p50 µs':>9} {'mean µs':>9} {'client CPU µs':>14}")
    for name, row in out.items():
        print(
            f"{name:<{width}} {row['p50_us']:>9.1f} {row['mean_us']:>9.1f} "
            f"{row['client_cpu_us']:>14.1f}"
        )


if __name__ == "__main__":
    main()
