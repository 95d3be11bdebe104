"""The quick crash campaign (``make torture`` runs the long one): SIGKILL a writer, reopen, check.

See ``tests/reliability/`` for the writer, its side ledger and the checks, and
``tests/RELIABILITY.md`` for the figures of the long runs.
"""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import pytest
from pg_support import url_for

from eventlog import RunStore
from reliability.campaign import chaos, crash_campaign
from reliability.ledger import Model, check_store

QUICK_KILLS = 60  # CI runs >= 50 kills
FAST_KILLS = 20
PG_KILLS = 20


def test_sigkill_loses_no_acknowledged_append_in_durable_mode(tmp_path: Path) -> None:
    result = crash_campaign(tmp_path, QUICK_KILLS, durability="durable", seed=11, max_delay=0.15)
    assert result.violations == []
    assert (result.kills, result.writers_exited_early) == (QUICK_KILLS, 0)
    assert result.lost == 0
    assert result.partial_batches == 0
    # the writers did every kind of operation, and a lot of it
    assert result.acknowledged_events > 1000
    assert set(result.acknowledged_ops) == {"session", "create", "append", "status", "delete"}
    # kills landed mid-operation: some in-flight appends had committed, some had not
    assert result.in_flight_found_complete + result.in_flight_found_absent > QUICK_KILLS // 2


def test_sigkill_loses_nothing_in_fast_mode_either(tmp_path: Path) -> None:
    # MDB_NOSYNC skips the fsync, but a commit is in the kernel's page cache once it returns:
    # killing the process (not the machine) must lose nothing.
    result = crash_campaign(tmp_path, FAST_KILLS, durability="fast", seed=12, max_delay=0.08)
    assert result.violations == []
    assert result.kills == FAST_KILLS
    assert result.lost == 0
    assert result.acknowledged_events > 500


@pytest.mark.usefixtures("pg_schemas")
def test_sigkill_loses_no_acknowledged_append_on_postgres(tmp_path: Path) -> None:
    # the same writer and checks against the server: a kill mid-commit (the connection drops,
    # the server rolls back or has committed) loses nothing acknowledged, leaves no half batch
    result = crash_campaign(
        tmp_path,
        PG_KILLS,
        durability="durable",
        seed=15,
        max_delay=0.15,
        store=url_for(tmp_path / "store"),
    )
    assert result.violations == []
    assert (result.kills, result.writers_exited_early) == (PG_KILLS, 0)
    assert result.lost == 0
    assert result.partial_batches == 0
    assert result.acknowledged_events > 200
    assert result.in_flight_found_complete + result.in_flight_found_absent > PG_KILLS // 2


def test_chaos_four_writers_killed_at_random_two_readers(tmp_path: Path) -> None:
    # 6 s, or longer until 1,000 appends were acknowledged (on a loaded machine)
    result = chaos(tmp_path, 6.0, writers=4, seed=13, min_events=1000)
    assert result.violations == []
    assert result.lost == 0
    assert result.kills >= 8
    assert result.acknowledged_events >= 1000
    assert result.reader_records > 0
    assert result.reader_listings > 0


def test_the_checks_see_a_lost_event(tmp_path: Path) -> None:
    """The checker is not blind: remove one acknowledged event behind its back."""
    model = Model()
    result = crash_campaign(tmp_path, 3, durability="durable", seed=14, model=model)
    assert result.violations == []
    run, rm = next((r, m) for r, m in model.runs.items() if m.events and not m.deleted)
    seq = max(rm.events)
    with RunStore.open(tmp_path / "store") as store:
        report = check_store(store, model)
        assert report.lost == 0, report.violations
        store.core.backend.write(
            lambda txn: txn.delete("events", store.core.engine.index.event_key(txn, UUID(run), seq))
        )
        report = check_store(store, model)
    assert report.lost == 1
    assert any(f"run {run} seq {seq}" in v for v in report.violations)
    assert any(v.startswith("verify:") for v in report.violations)
