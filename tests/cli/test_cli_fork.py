"""`eventlog fork`, `eventlog lineage` and what `show` says of forks (installed script)."""

from __future__ import annotations

import json
from pathlib import Path

from test_cli_subprocess import run

from eventlog import RunStore
from eventlog.events import TextDelta


def test_fork_lineage_and_show(tmp_path: Path) -> None:
    db = tmp_path / "store"
    with RunStore.open(db) as store:
        parent = store.create_run(
            store.ensure_session(),
            provider="p",
            model="m",
            events=[TextDelta("a"), TextDelta("b"), TextDelta("c")],
        )
    made = run("fork", str(parent.id)[:8], "--at-seq", "2", "--json", "--db", db)
    assert made.returncode == 0, made.stderr
    fork = json.loads(made.stdout)
    assert (fork["parent_run_id"], fork["fork_seq"]) == (str(parent.id), 2)
    with RunStore.open(db) as store:
        grand = str(store.fork_run(fork["id"], 1).id)

    bad = run("fork", str(parent.id), "--at-seq", "4", "--db", db)
    assert bad.returncode == 1
    assert "its events are 1..3" in bad.stderr
    assert "Traceback" not in bad.stderr

    links = run("lineage", grand, "--json", "--db", db)
    assert links.returncode == 0, links.stderr
    assert [(r["parent_id"], r["fork_seq"]) for r in json.loads(links.stdout)] == [
        (fork["id"], 1),
        (str(parent.id), 2),
    ]
    shown = run("show", fork["id"], "--db", db)
    assert f"forked from {parent.id} at seq 2" in shown.stdout
    assert grand in shown.stdout  # its own fork
    doc = json.loads(run("show", str(parent.id), "--json", "--db", db).stdout)
    assert [f["id"] for f in doc["forks"]] == [fork["id"]]

    with RunStore.open(db) as store:
        events = [e.event for e in store.list_events(fork["id"])]
        assert [e.delta for e in events if isinstance(e, TextDelta)] == ["a", "b"]
