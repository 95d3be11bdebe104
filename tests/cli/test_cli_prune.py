"""``eventlog prune`` through the installed script: dry run, the real prune, bad policies."""

from __future__ import annotations

import json
from pathlib import Path

from test_cli_subprocess import run

from eventlog import RunStore
from eventlog.events import RunFailed, TextDelta


def test_prune_dry_run_then_prune_and_refusals(tmp_path: Path) -> None:
    db = tmp_path / "store"
    terminal, running = set(), set()
    with RunStore.open(db) as store:
        session = store.ensure_session()
        for i in range(4):
            run_ = store.create_run(session, provider="p", model="m")
            store.append_event(run_.id, TextDelta("x\x1b[2J"))
            if i % 2:
                store.append_event(run_.id, RunFailed("boom"))
                terminal.add(run_.id)
            else:
                running.add(run_.id)
    dry = run("prune", "--db", db, "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    would = json.loads(dry.stdout)
    assert would["dry_run"] is True
    assert {str(r) for r in terminal} == set(would["run_ids"])
    for args, message in (
        (["--older-than", "soon"], "--older-than 'soon' is not valid"),
        (["--status", "calling_model"], "is not terminal"),
    ):
        bad = run("prune", "--db", db, *args)
        assert bad.returncode == 1
        assert message in bad.stderr
        assert "Traceback" not in bad.stderr
    done = run("prune", "--db", db, "--older-than", "2999-01-01", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report["run_ids"]) == set(would["run_ids"])
    assert (report["events"], report["bytes"]) == (would["events"], would["bytes"])
    with RunStore.open(db, readonly=True) as store:
        assert {r.id for r in store.list_runs_filtered()} == running
        assert store.verify() == []
