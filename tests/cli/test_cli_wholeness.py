"""Exports that prove they are whole, imports that refuse what is not (the installed script).

A Ctrl-C during ``export -o`` leaves no file (or the previous one) and says so; a cut export
is refused and leaves no store behind; ``export | import -`` round-trips through a real pipe,
on LMDB and on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pg_support import url_for
from test_cli_subprocess import DEADLINE, SIGINT_DEFAULT, child_env, eventlog, run

from eventlog import RunStore
from eventlog.events import ModelStarted, RunStarted, TextDelta


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Wait for ``condition`` (checked every 2 ms) up to :data:`DEADLINE` seconds."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.002)


def small_store(location: str) -> None:
    with RunStore.open(location) as store:
        session = store.create_session(title="whole", metadata={"k": [1, {"x": None}]})
        for i in range(3):
            run = store.create_run(session.id, provider="p", model=f"m{i}")
            store.append_events(
                run.id, [RunStarted(session.id, "p", f"m{i}"), ModelStarted("p", f"m{i}", 1)]
            )
            store.append_events(run.id, [TextDelta(f"chunk {n} of run {i}") for n in range(20)])


@pytest.fixture(scope="module")
def big_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An LMDB store whose export takes long enough to be interrupted (50,000 events)."""
    db = tmp_path_factory.mktemp("big") / "store"
    with RunStore.open(db, durability="fast") as store:
        session = store.create_session(title="big")
        for _ in range(10):
            run = store.create_run(session.id, provider="p", model="m")
            for _ in range(5):
                store.append_events(run.id, [TextDelta("x" * 200)] * 1000)
    return db


@pytest.fixture(params=["lmdb", "postgres"])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], str]:
    def location(name: str) -> str:
        if request.param == "postgres":
            request.getfixturevalue("pg_schemas")
            return url_for(tmp_path / name)
        return str(tmp_path / name)

    return location


def exported(db: str) -> list[str]:
    with RunStore.open(db, readonly=True) as store:
        return list(store.export_jsonl())


def test_sigint_during_export_leaves_the_previous_file(big_store: Path, tmp_path: Path) -> None:
    target = tmp_path / "backup.jsonl"
    target.write_text("the previous backup\n", encoding="utf-8")
    command = [eventlog(), "export", "--all", "--db", str(big_store), "-o", str(target)]
    proc = subprocess.Popen(
        [sys.executable, "-c", SIGINT_DEFAULT, *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env(),
    )

    def partial_grew() -> bool:
        found = [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]
        return bool(found) and found[0].stat().st_size > 0

    wait_until(partial_grew, "the export to write its first lines")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 130, err
    assert err.decode().startswith("error: export interrupted after ")
    assert f"nothing was written to {target}" in err.decode()
    assert target.read_text(encoding="utf-8") == "the previous backup\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup.jsonl"]  # no temporary file


def test_sigint_during_export_to_stdout_says_it_is_incomplete(big_store: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", SIGINT_DEFAULT, eventlog(), "export", "--all", "--db", big_store],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env(),
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert json.loads(first)["kind"] == "session"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 130
    assert "INCOMPLETE" in err.decode()
    assert '"kind":"trailer"' not in out.decode()


def test_an_export_ends_with_its_trailer(place: Callable[[str], str], tmp_path: Path) -> None:
    db = place("store")
    small_store(db)
    out = tmp_path / "all.jsonl"
    result = run("export", "--all", "--db", db, "-o", out)
    assert result.returncode == 0, result.stderr
    data = out.read_bytes()
    body, _, last = data.rstrip(b"\n").rpartition(b"\n")
    trailer = json.loads(last)
    assert trailer["kind"] == "trailer"
    assert trailer["counts"] == {"session": 1, "run": 3, "stream": 0, "event": 66}
    assert trailer["sha256"] == hashlib.sha256(body + b"\n").hexdigest()
    assert "(1 sessions, 3 runs, 0 streams, 66 events; trailer sha256" in result.stderr


def test_export_piped_into_import_stdin(place: Callable[[str], str]) -> None:
    source, target = place("source"), place("target")
    small_store(source)
    export = subprocess.Popen(
        [eventlog(), "export", "--all", "--db", source], stdout=subprocess.PIPE, env=child_env()
    )
    imported = subprocess.run(
        [eventlog(), "import", "-", "--db", target],
        stdin=export.stdout,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=child_env(),
    )
    assert export.stdout is not None
    export.stdout.close()
    assert export.wait(timeout=DEADLINE) == 0
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.startswith("imported 1 sessions, 3 runs, 66 events into ")
    assert exported(target) == exported(source)


def cut_files(source: str, tmp_path: Path) -> dict[str, tuple[Path, str]]:
    whole = "".join(line + "\n" for line in exported(source))
    lines = whole.splitlines(keepends=True)
    cuts = {
        "mid-line": (whole[: len(whole) // 2], "no trailer"),
        "lines lost": (whole[: len(whole) - len(lines[-1])], "no trailer"),
        "a line removed": ("".join(lines[:5] + lines[6:]), "counts mismatch"),
        "a line changed": (whole.replace("chunk 3 ", "chunk 9 ", 1), "digest mismatch"),
        "two joined": (whole + whole, "comes after the trailer"),
    }
    out = {}
    for name, (text, message) in cuts.items():
        path = tmp_path / f"{name.replace(' ', '-')}.jsonl"
        path.write_text(text, encoding="utf-8")
        out[name] = (path, message)
    return out


def test_a_cut_export_is_refused_and_leaves_no_store(
    place: Callable[[str], str], tmp_path: Path
) -> None:
    source = place("source")
    small_store(source)
    for n, (name, (path, message)) in enumerate(cut_files(source, tmp_path).items()):
        target = place(f"target-{n}")
        result = run("import", path, "--db", target)
        assert result.returncode == 1, name
        assert result.stderr.startswith("error: not a whole export: "), result.stderr
        assert message in result.stderr, (name, result.stderr)
        assert "nothing was imported" in result.stderr
        if not target.startswith("postgresql"):
            assert not Path(target).exists(), name
    if source.startswith("postgresql"):
        return
    empty = tmp_path / "empty"  # an existing empty directory stays, and stays empty
    empty.mkdir()
    assert run("import", tmp_path / "mid-line.jsonl", "--db", empty).returncode == 1
    assert list(empty.iterdir()) == []


def test_a_failed_write_removes_the_store_it_created(
    place: Callable[[str], str], tmp_path: Path
) -> None:
    """A whole file that fails while it is written (ids that clash) leaves no store."""
    source = place("source")
    small_store(source)
    lines = exported(source)
    dump = tmp_path / "twice.jsonl"
    # the same session twice, with a matching trailer: valid lines, refused by the store
    body = [lines[0], *lines[:-1]]

    digest = hashlib.sha256("".join(line + "\n" for line in body).encode()).hexdigest()
    trailer = json.loads(lines[-1])
    trailer["counts"]["session"] += 1
    trailer["sha256"] = digest
    dump.write_text("".join(line + "\n" for line in [*body, json.dumps(trailer)]), "utf-8")
    empty = tmp_path / "empty"
    empty.mkdir()
    for target in (place("new-target"), str(empty)):
        result = run("import", dump, "--db", target)
        assert result.returncode == 1
        assert "already exists" in result.stderr, result.stderr
        if target.startswith("postgresql"):
            assert "no eventlog store" in run("runs", "--db", target).stderr
        elif target == str(empty):
            assert list(empty.iterdir()) == []
        else:
            assert not Path(target).exists()


def test_an_old_export_without_trailer_needs_the_flag(tmp_path: Path) -> None:
    source = str(tmp_path / "source")
    small_store(source)
    old = tmp_path / "old.jsonl"
    old.write_text("".join(line + "\n" for line in exported(source)[:-1]), encoding="utf-8")
    refused = run("import", old, "--db", tmp_path / "a")
    assert refused.returncode == 1
    assert "--allow-untrailed" in refused.stderr
    allowed = run("import", old, "--db", tmp_path / "b", "--allow-untrailed")
    assert allowed.returncode == 0, allowed.stderr
    assert exported(str(tmp_path / "b")) == exported(source)
    assert os.listdir(tmp_path / "b")
