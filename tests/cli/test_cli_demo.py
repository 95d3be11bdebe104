"""The installed ``eventlog`` script: ``eventlog demo`` (the README's main job)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from eventlog import RunStatus, RunStore


def _eventlog() -> str:
    script = Path(sys.executable).parent / "eventlog"
    found = str(script) if script.exists() else shutil.which("eventlog")
    if found is None:
        pytest.fail("the eventlog console script is not installed (pip install -e .)")
    return found


def test_demo_writes_runs_and_prints_them(tmp_path: Path) -> None:
    db = tmp_path / "data"
    out = subprocess.run(
        [_eventlog(), "demo", "--db", str(db), "--runs", "5", "--seed", "7"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "5 demo runs written" in out.stdout
    for word in ("completed", "failed", "cancelled", "waiting_for_tools", "Folded state"):
        assert word in out.stdout
    assert "\x1b[" not in out.stdout  # piped output has no color codes
    with RunStore.open(db) as store:
        run_ids = {r.id for r in store.list_runs_filtered()}
        assert len(run_ids) == 5
        assert store.count_runs() == 5
        assert store.verify() == []
        sessions = store.list_sessions()
        assert len(sessions) == 3
        assert all(store.list_messages(s.id) for s in sessions)
        statuses = set()
        for rid in run_ids:
            state = store.get_run_state(rid)
            assert state is not None
            statuses.add(state.status)
            assert [r.seq for r in store.list_events(rid)] == list(range(1, state.last_seq + 1))
        assert {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED} <= statuses


def test_demo_on_a_bad_path_is_a_clean_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = subprocess.run(
        [_eventlog(), "demo", "--db", str(blocker)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 1
    assert out.stderr.startswith("error: ")
    assert "Traceback" not in out.stderr
