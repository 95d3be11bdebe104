"""What only the PostgreSQL backend has: migrations, the server's errors, ordering under
concurrency across processes (the slow-transaction case), LISTEN/NOTIFY across processes.

The shared contract runs on PostgreSQL in tests/test_contract.py and test_async_contract.py.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections import defaultdict
from multiprocessing.synchronize import Barrier
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any, ClassVar
from uuid import UUID

import psycopg
import pytest
from pg_support import ADMIN_URL, schema_for, url_for
from psycopg import sql
from test_multiprocess import (
    EVENTS_PER_WRITER,
    WRITERS,
    append_in_batches,
    append_one_by_one,
    parse,
    run_workers,
)

from eventlog import ConfigError, RunStore, StoreError
from eventlog.engine.protocols import ProjectionTx
from eventlog.events import TextDelta
from eventlog.model.records import EventRecord
from eventlog.storage.postgres import schema as pg_schema

pytestmark = pytest.mark.usefixtures("pg_schemas")

WAIT = 30.0  # seconds: the longest any condition below is waited for


def wait_until(predicate: object, what: str, timeout: float = WAIT) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def admin() -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(ADMIN_URL, autocommit=True)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return url_for(tmp_path / "store")


# -- opening, migrations, configuration ------------------------------------------------------


def test_a_new_schema_is_created_and_recorded(url: str, tmp_path: Path) -> None:
    with RunStore.open(url) as store:
        assert store.path is not None
        assert "schema=" in store.path
    with admin() as conn:
        found = pg_schema.applied_version(conn, schema_for(tmp_path / "store"))
    assert found == pg_schema.SCHEMA_VERSION


def test_every_kv_table_is_created_by_a_migration(url: str, tmp_path: Path) -> None:
    from eventlog.storage.kv import TABLES

    RunStore.open(url).close()
    with admin() as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s",
            (schema_for(tmp_path / "store"),),
        ).fetchall()
    assert set(TABLES) <= {name for (name,) in rows}


def test_create_false_refuses_a_missing_schema(url: str) -> None:
    with pytest.raises(StoreError, match="eventlog migrate"):
        RunStore.open(url, create=False)
    with pytest.raises(StoreError, match="eventlog migrate"):
        RunStore.open(url, readonly=True)


def test_an_older_schema_needs_migrate(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    RunStore.open(url).close()  # at the latest migration
    now = pg_schema.SCHEMA_VERSION
    step = pg_schema.Migration(
        now + 1, "an index for the test", ("CREATE INDEX t_idx ON {schema}.runs (v)",)
    )
    monkeypatch.setattr(pg_schema, "MIGRATIONS", (*pg_schema.MIGRATIONS, step))
    with pytest.raises(StoreError, match=f"at migration {now}, this eventlog needs {now + 1}"):
        RunStore.open(url)
    with RunStore.open(url, migrate=True) as store:
        store.health_check()
    with admin() as conn:
        assert pg_schema.applied_version(conn, schema_for(tmp_path / "store")) == now + 1


def test_a_newer_schema_is_refused(url: str, tmp_path: Path) -> None:
    RunStore.open(url).close()
    schema = schema_for(tmp_path / "store")
    with admin() as conn:
        conn.execute(
            sql.SQL("INSERT INTO {}.eventlog_migrations VALUES (99, 'future')").format(
                sql.Identifier(schema)
            )
        )
    with pytest.raises(StoreError, match="upgrade eventlog"):
        RunStore.open(url)


def test_concurrent_migrations_apply_once(tmp_path: Path) -> None:
    url = url_for(tmp_path / "store")
    errors: list[BaseException] = []

    def open_close() -> None:
        try:
            RunStore.open(url).close()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_close) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert errors == []
    with admin() as conn:
        schema = schema_for(tmp_path / "store")
        rows = conn.execute(
            sql.SQL("SELECT version FROM {}.eventlog_migrations").format(sql.Identifier(schema))
        ).fetchall()
    assert rows == [(m.version,) for m in pg_schema.MIGRATIONS]


def test_schemas_are_separate_stores(tmp_path: Path) -> None:
    with RunStore.open(url_for(tmp_path / "a")) as a, RunStore.open(url_for(tmp_path / "b")) as b:
        a.create_session()
        assert len(a.list_sessions()) == 1
        assert b.list_sessions() == []


@pytest.mark.parametrize("schema", ["Upper", "1x", "a-b", "x" * 49, ""])
def test_bad_schema_names_are_refused(schema: str) -> None:
    with pytest.raises(ConfigError, match="schema"):
        RunStore.open(ADMIN_URL, schema=schema)


def test_unreachable_server_is_a_store_error() -> None:
    started = time.monotonic()
    with pytest.raises(StoreError, match="cannot connect to PostgreSQL"):
        RunStore.open("postgresql://postgres@127.0.0.1:1/test", connect_timeout=1)
    assert time.monotonic() - started < WAIT


def test_lmdb_only_options_are_refused_for_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PostgreSQL stores only"):
        RunStore.open(tmp_path / "store", schema="x")


def test_readonly_store_refuses_writes(url: str) -> None:
    RunStore.open(url).close()
    with RunStore.open(url, readonly=True) as store, pytest.raises(StoreError, match="read-only"):
        store.create_session()


def test_server_errors_become_store_errors(url: str, tmp_path: Path) -> None:
    with RunStore.open(url) as store:
        sid = store.ensure_session()
        with admin() as conn:  # the store's tables vanish under it
            conn.execute(
                sql.SQL("DROP TABLE {}").format(
                    sql.Identifier(schema_for(tmp_path / "store"), "runs")
                )
            )
        with pytest.raises(StoreError, match="failed"):
            store.create_run(sid, provider="p", model="m")
        with pytest.raises(StoreError, match="failed"):
            store.get_run(sid)


def test_connections_killed_while_idle_are_replaced(url: str, tmp_path: Path) -> None:
    app = f"eventlog:{schema_for(tmp_path / 'store')}"
    # a server restart or a killed backend breaks the pool's idle connections: the next
    # calls take fresh ones instead of failing (nothing had been sent on the dead ones)
    with RunStore.open(url, pool_size=3) as store:
        sid = store.ensure_session()
        with admin() as conn:
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE state = 'idle' AND application_name = %s",
                (app,),
            ).fetchone()
        assert row is not None
        assert row[0] >= 1
        wait_until(lambda: idle_clients(app) == 0, "the killed backends to exit")
        run = store.create_run(sid, provider="p", model="m")
        assert store.get_run(run.id) == run
        assert [r.id for r in store.list_runs(sid)] == [run.id]


def idle_clients(app: str) -> int:
    with admin() as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle' AND application_name = %s",
            (app,),
        ).fetchone()
    assert row is not None
    return int(row[0])


# -- ordering under concurrency --------------------------------------------------------------


class SlowProjector:
    """Holds its writer's transaction open on the event ``TextDelta("slow")``."""

    name: ClassVar[str] = "slow"
    version: ClassVar[int] = 1
    event_types: ClassVar[frozenset[str]] = frozenset({"TextDelta"})

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def apply(self, tx: ProjectionTx, record: EventRecord) -> None:
        assert isinstance(record.event, TextDelta)
        if record.event.delta == "slow":
            self.entered.set()
            assert self.release.wait(WAIT)


def advisory_waiters() -> int:
    with admin() as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_slow_transaction_that_commits_after_a_fast_one_is_never_skipped(url: str) -> None:
    # The high-water-mark bug class: a writer that began first (slow) and one that began later
    # (fast). If positions were handed out before the lock, the fast one could commit position
    # N+2 while N+1 is still open, and a subscriber reading "after N+1" would skip N+1 forever.
    # Here the fast writer waits on the advisory lock, so it gets N+2 and commits after N+1.
    slow_projector = SlowProjector()
    with (
        RunStore.open(url, projectors=[slow_projector]) as slow,
        RunStore.open(url) as fast,
        RunStore.open(url) as watcher,
    ):
        sid = slow.ensure_session()
        run_a = slow.create_run(sid, provider="p", model="m")
        run_b = slow.create_run(sid, provider="p", model="m")
        base = watcher.last_position()
        seen: list[tuple[int, str]] = []
        sub = watcher.subscribe(after_position=base, timeout=WAIT)

        def consume() -> None:
            for record in sub:
                assert isinstance(record.event, TextDelta)
                seen.append((record.position, record.event.delta))
                if len(seen) == 2:
                    return

        consumer = threading.Thread(target=consume)
        consumer.start()
        results: dict[str, EventRecord] = {}
        t_slow = threading.Thread(
            target=lambda: results.update(slow=slow.append_event(run_a.id, TextDelta("slow")))
        )
        t_slow.start()
        assert slow_projector.entered.wait(WAIT)  # the slow transaction is open, lock held
        t_fast = threading.Thread(
            target=lambda: results.update(fast=fast.append_event(run_b.id, TextDelta("fast")))
        )
        t_fast.start()
        wait_until(lambda: advisory_waiters() >= 1, "the fast writer to wait for the lock")
        assert watcher.read_log(after_position=base) == []  # nothing is visible yet
        slow_projector.release.set()
        t_slow.join(WAIT)
        t_fast.join(WAIT)
        consumer.join(WAIT)
        sub.close()
        assert results["slow"].position == base + 1
        assert results["fast"].position == base + 2
        assert seen == [(base + 1, "slow"), (base + 2, "fast")]
        assert watcher.verify() == []


def subscribe_and_record(url: str, after: int, total: int, out: str, ready: MpEvent) -> None:
    """Subscribe after ``after`` and write ``position run seq delta`` lines to ``out``."""
    with RunStore.open(url, readonly=True) as store, open(out, "w") as f:
        sub = store.subscribe(after_position=after, timeout=WAIT)
        ready.set()
        n = 0
        for record in sub:
            assert isinstance(record.event, TextDelta)
            f.write(f"{record.position} {record.run_id} {record.seq} {record.event.delta}\n")
            n += 1
            if n == total:
                return
        raise SystemExit(f"subscription ended after {n} of {total} events")


def start_subscriber(
    ctx: multiprocessing.context.SpawnContext, url: str, after: int, total: int, out: Path
) -> multiprocessing.context.SpawnProcess:
    ready = ctx.Event()
    proc = ctx.Process(target=subscribe_and_record, args=(url, after, total, str(out), ready))
    proc.start()
    assert ready.wait(WAIT)
    return proc


def read_subscriber(out: Path) -> list[tuple[int, UUID, int, str]]:
    rows = []
    for line in out.read_text().splitlines():
        position, run, seq, delta = line.split(" ")
        rows.append((int(position), UUID(run), int(seq), delta))
    return rows


def test_four_processes_append_to_one_run_and_a_fifth_sees_every_event(
    url: str, tmp_path: Path
) -> None:
    ctx = multiprocessing.get_context("spawn")
    total = WRITERS * EVENTS_PER_WRITER
    with RunStore.open(url) as store:
        run = store.create_run(store.ensure_session(), provider="p", model="m")
        base = store.last_position()
        out = tmp_path / "seen.txt"
        subscriber = start_subscriber(ctx, url, base, total, out)
        barrier: Barrier = ctx.Barrier(WRITERS)
        writers = [
            ctx.Process(
                target=append_one_by_one,
                args=(url, str(run.id), w, EVENTS_PER_WRITER, "durable", barrier),
            )
            for w in range(WRITERS)
        ]
        run_workers(writers)
        subscriber.join(WAIT)
        assert subscriber.exitcode == 0
        records = store.list_events(run.id)
        assert [r.seq for r in records] == list(range(1, total + 1))
        by_writer: dict[int, list[int]] = defaultdict(list)
        for r in records:
            writer, counter = parse(r.event)
            by_writer[writer].append(counter)
        assert by_writer == {w: list(range(EVENTS_PER_WRITER)) for w in range(WRITERS)}
        seen = read_subscriber(out)
        # exactly once, in position order, dense, and the same events as the log
        assert [p for p, _, _, _ in seen] == list(range(base + 1, base + total + 1))
        assert [(run_id, seq) for _, run_id, seq, _ in seen] == [(run.id, r.seq) for r in records]
        assert store.verify() == []


def test_four_processes_append_to_many_runs_in_batches(url: str, tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    total = WRITERS * EVENTS_PER_WRITER
    batch = 10
    with RunStore.open(url) as store:
        sid = store.ensure_session()
        runs = [store.create_run(sid, provider="p", model="m").id for _ in range(WRITERS)]
        base = store.last_position()
        out = tmp_path / "seen.txt"
        subscriber = start_subscriber(ctx, url, base, total, out)
        barrier: Barrier = ctx.Barrier(WRITERS)
        writers = [
            ctx.Process(
                target=append_in_batches,
                args=(url, str(runs[w]), w, EVENTS_PER_WRITER, batch, "durable", barrier),
            )
            for w in range(WRITERS)
        ]
        run_workers(writers)
        subscriber.join(WAIT)
        assert subscriber.exitcode == 0
        for w, run_id in enumerate(runs):
            records = store.list_events(run_id)
            assert [parse(r.event) for r in records] == [(w, i) for i in range(EVENTS_PER_WRITER)]
        seen = read_subscriber(out)
        assert [p for p, _, _, _ in seen] == list(range(base + 1, base + total + 1))
        log = store.read_log(after_position=base)
        assert [(r.run_id, r.seq) for r in log] == [(run, seq) for _, run, seq, _ in seen]
        assert store.verify() == []


def test_group_commit_across_store_objects_keeps_positions_dense(url: str) -> None:
    # 3 store objects (3 pools, 3 committers) x 4 threads: every pair of writers contends on
    # the server's lock, and the writer-token cache must never serve another writer's stale
    # state (a wrong head would duplicate a seq or a position)
    stores = [RunStore.open(url) for _ in range(3)]
    try:
        sid = stores[0].ensure_session()
        run = stores[0].create_run(sid, provider="p", model="m")
        base = stores[0].last_position()

        def write(store: RunStore, w: int) -> None:
            for i in range(50):
                store.append_event(run.id, TextDelta(f"{w}:{i}"))

        threads = [threading.Thread(target=write, args=(stores[w % 3], w)) for w in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(WAIT * 4)
        records = stores[1].list_events(run.id)
        assert [r.seq for r in records] == list(range(1, 601))
        assert sorted(r.position for r in records) == list(range(base + 1, base + 601))
        state = stores[2].get_run_state(run.id)
        assert state is not None
        assert state.event_count == 600
        assert stores[2].verify() == []
    finally:
        for s in stores:
            s.close()


# -- the backend's client-side state: buffered writes, cached answers ------------------------


@pytest.mark.parametrize("table", ["events", "projections"])
def test_buffered_writes_and_cached_answers_match_the_server(url: str, table: str) -> None:
    # Random puts, deletes and reads against a model, in many transactions of two backends
    # (the second one's commits must invalidate the first one's cache), some rolled back:
    # every get / last_key / scan answer must be the model's. ("events" is not cached;
    # "projections" is: its gets also learn the empty gaps around missing keys.)
    import bisect as _bisect
    import random

    from eventlog.storage.kv import KVTxn
    from eventlog.storage.opening import open_backend

    rng = random.Random(7)
    a = open_backend(url).backend
    b = open_backend(url).backend
    model: dict[bytes, bytes] = {}

    def key() -> bytes:
        return bytes([rng.randrange(6)]) * 8 + rng.randrange(8).to_bytes(8, "big")

    class Abort(Exception):
        pass

    try:
        for _ in range(120):
            backend = a if rng.random() < 0.8 else b
            abort = rng.random() < 0.15
            mine = dict(model)

            def work(txn: KVTxn, mine: dict[bytes, bytes] = mine, abort: bool = abort) -> None:
                for _ in range(rng.randrange(1, 12)):
                    op = rng.random()
                    k = key()
                    if op < 0.4:
                        v = rng.randbytes(rng.randrange(1, 20))
                        txn.put(table, k, v)
                        mine[k] = v
                    elif op < 0.55:
                        txn.discard(table, k)
                        mine.pop(k, None)
                    elif op < 0.75:
                        below = None if rng.random() < 0.2 else k[:8] + b"\xff" * 8
                        keys = sorted(mine)
                        i = len(keys) if below is None else _bisect.bisect_left(keys, below)
                        assert txn.last_key(table, below) == (keys[i - 1] if i else None)
                    elif op < 0.9:
                        assert txn.get(table, k) == mine.get(k)
                    else:
                        start = k[:8]
                        got = list(txn.scan(table, start, start + b"\xff" * 8))
                        want = sorted((x, y) for x, y in mine.items() if x[:8] == start)
                        assert got == want
                if abort:
                    raise Abort

            try:
                backend.write(work)
            except Abort:
                continue
            model = mine
        assert dict(a.read(lambda txn: list(txn.scan(table, b"")))) == model
    finally:
        a.close()
        b.close()
