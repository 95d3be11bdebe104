"""``copy_store`` / ``eventlog copy`` between LMDB and PostgreSQL, and the CLI on PostgreSQL
(the installed script: migrate, copy, listings, ``tail --follow`` across processes).
"""

from __future__ import annotations

import time
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from pg_support import url_for
from test_cli_subprocess import DEADLINE, Tail, Writer, append_elsewhere, run, tail_procs

from eventlog import RunStore, StoreError
from eventlog.events import TextDelta
from eventlog.storage.postgres import schema as pg_schema
from eventlog.testing import sample_events
from eventlog.tools.copy_store import copy_store

pytestmark = pytest.mark.usefixtures("pg_schemas")
__all__ = ["tail_procs"]  # a fixture of test_cli_subprocess, used below


KEY = uuid4()


def fill(location: str | Path) -> tuple[UUID, UUID]:
    """A store with two runs (every event type) and a consumer."""
    with RunStore.open(location) as store:
        sid = store.create_session(title="copy me", metadata={"k": [1, 2]}).id
        runs = []
        for _ in range(2):
            run = store.create_run(sid, provider="openai", model="gpt-4o", metadata={"x": 1})
            store.append_events(run.id, sample_events(sid))
            runs.append(run.id)
        with store.subscribe(name="indexer", ack="manual", timeout=0.1) as sub:
            first = next(iter(sub))
            sub.ack(first.position)
    return runs[0], runs[1]


def export(location: str | Path) -> list[str]:
    with RunStore.open(location, readonly=True) as store:
        return list(store.export_jsonl())


def test_lmdb_to_postgres_and_back_is_exact(tmp_path: Path) -> None:
    src = tmp_path / "src"
    pg = url_for(tmp_path / "pg")
    back = tmp_path / "back"
    a, b = fill(src)
    with RunStore.open(src) as store:
        keyed = store.append_event(b, TextDelta("keyed"), event_id=KEY)
    seen: list[tuple[int, int]] = []
    there = copy_store(src, pg, progress=lambda done, total: seen.append((done, total)))
    home = copy_store(pg, back)
    assert there.checksum == home.checksum
    assert there.rows == home.rows
    assert there.rows["events"] == 2 * len(sample_events(uuid4())) + 1
    assert seen[-1][0] == seen[-1][1] == there.total_rows
    assert export(src) == export(pg) == export(back)
    for location in (pg, back):
        with RunStore.open(location) as store:
            assert store.verify() == []
            # the idempotency key came along: the same event id is not written twice
            again = store.append_event(b, TextDelta("keyed"), event_id=KEY)
            assert (again.seq, again.position) == (keyed.seq, keyed.position)
            # the consumer resumes where it acknowledged
            assert [c.position for c in store.consumers() if c.name == "indexer"] == [1]
            # and the copy is a working store: positions continue densely
            nxt = store.append_event(a, TextDelta("after the copy"))
            assert nxt.position == keyed.position + 1


def test_copy_into_a_store_with_data_is_refused(tmp_path: Path) -> None:
    src, pg = tmp_path / "src", url_for(tmp_path / "pg")
    fill(src)
    copy_store(src, pg)
    before = export(pg)
    with pytest.raises(StoreError, match="already holds data"):
        copy_store(src, pg)
    assert export(pg) == before


def test_copy_into_a_freshly_opened_empty_store_works(tmp_path: Path) -> None:
    src, pg = tmp_path / "src", url_for(tmp_path / "pg")
    fill(src)
    RunStore.open(pg).close()  # created and stamped, no data yet
    copy_store(src, pg)
    assert export(pg) == export(src)


def test_an_interrupted_copy_is_refused_on_open(tmp_path: Path) -> None:
    src, pg = tmp_path / "src", url_for(tmp_path / "pg")
    fill(src)

    def stop(done: int, total: int) -> None:
        raise KeyboardInterrupt  # the user pressed Ctrl-C after the first batch

    with pytest.raises(KeyboardInterrupt):
        copy_store(src, pg, batch_bytes=4096, progress=stop)
    with pytest.raises(StoreError, match="incomplete copy"):
        RunStore.open(pg)


def test_copy_from_a_missing_store_names_it(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no eventlog store"):
        copy_store(tmp_path / "nothing", tmp_path / "dst")
    with pytest.raises(StoreError, match="no eventlog store"):
        copy_store(url_for(tmp_path / "nothing"), tmp_path / "dst2")


# -- the installed script on PostgreSQL ------------------------------------------------------


def test_cli_migrate_copy_and_list_on_postgres(tmp_path: Path) -> None:
    pg = url_for(tmp_path / "pg")
    status = run("migrate", "--db", pg, "--status")
    assert status.returncode == 0, status.stderr
    latest = pg_schema.SCHEMA_VERSION
    assert f"at migration 0 of {latest}" in status.stdout
    first = run("migrate", "--db", pg)
    assert first.returncode == 0, first.stderr
    assert "applied migration(s) 1" in first.stdout  # 1, 2, ...
    again = run("migrate", "--db", pg)
    assert "up to date" in again.stdout

    src = tmp_path / "src"
    assert run("demo", "--db", src).returncode == 0
    copied = run("copy", "--from", src, "--to", pg)
    assert copied.returncode == 0, copied.stderr
    assert "match" in copied.stdout
    assert "Traceback" not in copied.stderr
    listed_pg = run("runs", "--db", pg, "--json")
    listed_lmdb = run("runs", "--db", src, "--json")
    assert listed_pg.returncode == 0, listed_pg.stderr
    assert listed_pg.stdout == listed_lmdb.stdout
    verify = run("verify", "--db", pg)
    assert (verify.returncode, verify.stdout.strip()) == (0, "ok: the log and every view agree")
    refused = run("copy", "--from", src, "--to", pg)
    assert refused.returncode == 1
    assert "already holds data" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_cli_errors_on_postgres_are_clean(tmp_path: Path) -> None:
    down = run("runs", "--db", "postgresql://postgres@127.0.0.1:1/test?connect_timeout=1")
    assert down.returncode == 1
    assert "error: cannot connect to PostgreSQL" in down.stderr
    assert "Traceback" not in down.stderr
    missing = run("runs", "--db", url_for(tmp_path / "never"))
    assert missing.returncode == 1
    assert "eventlog migrate" in missing.stderr
    bad = run("runs", "--db", "postgresql://postgres@127.0.0.1/test?schema=Bad-Name")
    assert bad.returncode == 1
    assert "schema" in bad.stderr


def test_tail_follow_on_postgres_sees_another_process(
    tmp_path: Path, tail_procs: list[Tail | Writer]
) -> None:
    pg = url_for(tmp_path / "pg")
    with RunStore.open(pg) as store:
        run_id = store.create_run(store.ensure_session(), provider="p", model="m").id
        store.append_event(run_id, TextDelta("before"))
    tail = Tail("--nl", "-n", "1", "--db", pg)
    tail_procs.append(tail)
    deadline = time.monotonic() + DEADLINE
    assert tail.line(deadline)["payload"]["delta"] == "before"  # now following (LISTEN)
    assert [seq for seq, _ in append_elsewhere(pg, run_id, ["one", "two"])] == [2, 3]
    got = [tail.line(deadline) for _ in range(2)]
    assert [(e["seq"], e["payload"]["delta"]) for e in got] == [(2, "one"), (3, "two")]
    rest, _ = tail.interrupt()
    assert rest == ""
