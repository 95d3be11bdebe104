"""The nesting limit from the installed script: refused at import, readable at the limit.

A 1,000-deep line is refused by ``import`` with one line naming the limit (it printed a
RecursionError traceback); a document exactly at ``MAX_NESTING_DEPTH`` goes through every
reader: ``events --nl``, ``tail``, ``replay``, ``verify`` and ``export``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from test_cli_subprocess import run

from eventlog import MAX_NESTING_DEPTH, RunStore
from eventlog.events import RawEvent, RunStarted


def nested(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = [value]
    return value


def store_with(db: Path, data: dict[str, Any]) -> str:
    with RunStore.open(db) as store:
        session = store.create_session()
        run_id = store.create_run(session.id, provider="p", model="m").id
        store.append_event(run_id, RunStarted(session.id, "p", "m"))
        store.append_event(run_id, RawEvent("test.deep", 1, data))
    return str(run_id)


def test_a_1000_deep_line_is_refused_at_import(tmp_path: Path) -> None:
    source = tmp_path / "source"
    run_id = store_with(source, {"v": "shallow"})
    with RunStore.open(source, readonly=True) as store:
        lines = list(store.export_jsonl())
    deep_at = next(i for i, line in enumerate(lines) if '"test.deep"' in line)
    deep = "[" * 1000 + '"bottom"' + "]" * 1000  # (json.dumps itself cannot write it)
    for at, deep_line in (
        (deep_at, lines[deep_at].replace('"shallow"', deep)),
        (1, lines[1].replace('"metadata":{}', f'"metadata":{{"v":{deep}}}')),
    ):
        assert deep_line not in lines
        changed = [*lines[:at], deep_line, *lines[at + 1 :]]
        dump = tmp_path / "deep.jsonl"
        dump.write_text("".join(line + "\n" for line in changed), encoding="utf-8")
        target = tmp_path / "target"
        result = run("import", dump, "--db", target, "--allow-untrailed")
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        assert "RecursionError" not in result.stderr
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert f"more than {MAX_NESTING_DEPTH} levels deep" in result.stderr
        assert "eventlog.MAX_NESTING_DEPTH" in result.stderr
        assert result.stderr.startswith(f"error: line {at + 1}: ")
        assert not target.exists()
    assert run_id in "".join(lines)


def test_a_document_at_the_limit_goes_through_every_reader(tmp_path: Path) -> None:
    db = tmp_path / "store"
    data = {"v": nested(MAX_NESTING_DEPTH - 2)}  # the event 1, data 2, the lists the rest
    run_id = store_with(db, data)
    events = run("events", run_id, "--db", db, "--nl")
    assert events.returncode == 0, events.stderr
    assert [json.loads(x)["payload"] for x in events.stdout.splitlines()][-1] == data
    for argv in (
        ["events", run_id],
        ["tail"],
        ["tail", "--nl"],
        ["replay", run_id],
        ["replay", run_id, "--step", "--json"],
        ["verify"],
        ["export", "--all"],
    ):
        result = run(*argv, "--db", db)
        assert result.returncode == 0, (argv, result.stderr)
        assert "Traceback" not in result.stderr
    exported = run("export", "--all", "--db", db, "-o", tmp_path / "all.jsonl")
    assert exported.returncode == 0
    back = run("import", tmp_path / "all.jsonl", "--db", tmp_path / "back")
    assert back.returncode == 0, back.stderr
    again = run("events", run_id, "--db", tmp_path / "back", "--nl")
    assert again.stdout == events.stdout
