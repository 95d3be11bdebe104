"""Clean failures of the installed script: PostgreSQL errors, closed pipes, ``--db`` placement.

A wrong PostgreSQL database or port is one line naming the real cause, with no driver or
pool log lines (unless ``-v``); the connect timeout comes from the URL or the environment;
``eventlog ... | head -1`` exits 0 quietly; ``--db`` works before and after the command.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from pg_support import ADMIN_URL, require_server
from test_cli_subprocess import DEADLINE, child_env, eventlog, run

from eventlog import RunStore
from eventlog.events import TextDelta
from eventlog.storage.config import CONNECT_TIMEOUT_ENV, DEFAULT_CONNECT_TIMEOUT, PostgresConfig


def with_database(url: str, database: str) -> str:
    base, _, query = url.partition("?")
    head = base.rsplit("/", 1)[0]
    return f"{head}/{database}" + (f"?{query}" if query else "")


def test_a_missing_database_is_one_line_naming_it() -> None:
    require_server()
    url = with_database(ADMIN_URL, "eventlog_no_such_db")
    result = run("runs", "--db", url)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: cannot connect to PostgreSQL at {PostgresConfig(url=url).display}: "
        'database "eventlog_no_such_db" does not exist'
    ]
    verbose = run("-v", "runs", "--db", url)
    assert 'database "eventlog_no_such_db" does not exist' in verbose.stderr


def test_a_wrong_port_is_one_line_naming_the_cause() -> None:
    url = "postgresql://postgres@127.0.0.1:1/test"  # nothing listens on port 1
    result = run("sessions", "--db", url)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: cannot connect to PostgreSQL at {PostgresConfig(url=url).display}: "
        "connection refused (is the server running on that host and port?)"
    ]
    migrate = run("migrate", "--db", url)
    assert migrate.returncode == 1
    assert len(migrate.stderr.splitlines()) == 1
    assert "connection refused" in migrate.stderr


def test_the_connect_timeout_comes_from_the_url_then_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(CONNECT_TIMEOUT_ENV, raising=False)
    assert PostgresConfig(url="postgresql://h/db").connect_timeout == DEFAULT_CONNECT_TIMEOUT
    assert DEFAULT_CONNECT_TIMEOUT <= 5
    monkeypatch.setenv(CONNECT_TIMEOUT_ENV, "3")
    assert PostgresConfig(url="postgresql://h/db").connect_timeout == 3
    assert PostgresConfig(url="postgresql://h/db?connect_timeout=2").connect_timeout == 2
    given = PostgresConfig(url="postgresql://h/db?connect_timeout=2", connect_timeout=7)
    assert given.connect_timeout == 7


@pytest.fixture(scope="module")
def many_events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store whose `tail -n 5000` is far more than a pipe holds (64 KiB)."""
    db = tmp_path_factory.mktemp("pipe") / "store"
    with RunStore.open(db, durability="fast") as store:
        run_id = store.create_run(store.create_session().id, provider="p", model="m").id
        store.append_events(run_id, [TextDelta("y" * 100)] * 5000)
    return db


@pytest.mark.parametrize(
    "argv",
    [
        ["tail", "-n", "5000"],
        ["tail", "-n", "5000", "--nl"],
        ["export", "--all"],
        ["sessions", "--json"],
    ],
)
def test_a_reader_that_goes_away_ends_the_command_quietly(
    many_events: Path, argv: list[str]
) -> None:
    proc = subprocess.Popen(
        [eventlog(), *argv, "--db", str(many_events)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env(),
    )
    assert proc.stdout is not None
    assert proc.stdout.readline()  # `| head -1`: one line, then the reader is gone
    proc.stdout.close()
    _, err = proc.communicate(timeout=DEADLINE)
    assert err == b""
    assert proc.returncode == 0


def test_db_before_or_after_the_command(many_events: Path, tmp_path: Path) -> None:
    after = run("sessions", "--db", many_events, "--json")
    before = run("--db", many_events, "sessions", "--json")
    assert after.returncode == 0, after.stderr
    assert before.stdout == after.stdout
    assert len(json.loads(before.stdout)) == 1
    # the command's own --db wins over the one before it
    both = run("--db", tmp_path / "missing", "sessions", "--db", many_events, "--json")
    assert both.stdout == after.stdout
    missing = run("--db", tmp_path / "missing", "sessions")
    assert missing.returncode == 1
    assert str(tmp_path / "missing") in missing.stderr
