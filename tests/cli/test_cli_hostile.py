"""Hostile stored text through every command and output mode of the installed script.

The store (``hostile_data.fill``) holds terminal escapes (ESC[2J, an OSC title, an OSC 8
hyperlink), NUL, DEL, a C1 CSI, U+202E and CR in every text field. Table and plain output
must show them as visible escapes, never raw, on stdout and stderr; ``--json``/``--nl`` must
parse back to the exact stored strings. The commands come from the typer app itself: a new
command fails :func:`test_every_command_is_in_the_sweep` until it is given invocations here.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hostile_data import FORBIDDEN, HOSTILE, HostileStore, fill
from pg_support import url_for
from test_cli_subprocess import child_env, eventlog

from eventlog import RunStore
from eventlog.cli import app

# per command: (arguments after the command, output mode: "text" or "json" or "nl")
# {run}, {session}, {file}, {new}, {db} are filled in per backend
SWEEP: dict[str, list[tuple[list[str], str]]] = {
    "runs": [
        ([], "text"),
        (["--json"], "json"),
        (["--nl"], "nl"),
        (["--unresolved"], "text"),
        (["--unresolved", "--json"], "json"),
    ],
    # an argument cannot hold NUL: the rest of the hostile text, quoted back by the error
    "show": [
        (["{run}"], "text"),
        (["{run}", "--json"], "json"),
        ([HOSTILE.replace("\x00", "")], "text"),
    ],
    "events": [
        (["{run}"], "text"),
        (["{run}", "--no-payload"], "text"),
        (["{run}", "--json"], "json"),
        (["{run}", "--nl"], "nl"),
    ],
    "replay": [
        (["{run}"], "text"),
        (["{run}", "--step"], "text"),
        (["{run}", "--diff"], "text"),
        (["{run}", "--json"], "json"),
        (["{run}", "--step", "--nl"], "nl"),
        # what-if: the output composes step labels from stored text (checked as text)
        (["{run}", "--drop", "1"], "text"),
        (["{run}", "--what-if", "2={whatif}", "--json"], "text"),
    ],
    "event": [(["{run}", "1"], "text"), (["{run}", "1", "--json"], "json")],
    "grep": [
        (["h<"], "text"),
        (["h<", "--json"], "json"),
        (["h<", "--nl"], "nl"),
    ],
    "diff": [(["{run}", "{run}"], "text"), (["{run}", "{run}", "--json"], "json")],
    "streams": [([], "text"), (["--json"], "json"), (["--nl"], "nl")],
    "tail": [([], "text"), (["{run}"], "text"), (["--json"], "json"), (["--nl"], "nl")],
    "sessions": [([], "text"), (["--json"], "json"), (["--nl"], "nl")],
    "messages": [
        (["{session}"], "text"),
        (["{session}", "--json"], "json"),
        (["{session}", "--nl"], "nl"),
    ],
    "export": [(["--all"], "nl"), (["{run}"], "nl"), (["--all", "-o", "{file}"], "text")],
    "import": [(["{file}", "--db", "{new}"], "text"), (["{bad}", "--db", "{new}"], "text")],
    "verify": [([], "text"), (["--json"], "json")],
    "rebuild": [([], "text")],
    "stats": [([], "text"), (["--json"], "json")],
    "artifacts": [
        (["{session}"], "text"),
        (["{session}", "--json"], "json"),
        (["{session}", "--latest", "--nl"], "nl"),
    ],
    "artifact": [(["{artifact}", "-o", "{artifact_file}"], "text")],
    "embeddings": [([], "text"), (["--json"], "json")],
    "consumers": [([], "text"), (["--json"], "json")],
    "prune": [
        (["--dry-run"], "text"),
        (["--dry-run", "--json"], "json"),
        (["--dry-run", "--older-than", HOSTILE.replace("\x00", "")], "text"),
    ],
    "migrate": [([], "text")],
    "copy": [(["--from", "{db}", "--to", "{copy}"], "text")],
    "compact": [([], "text"), (["--json"], "json")],
    "demo": [(["--db", "{demo}", "--runs", "4"], "text")],
    # OTLP JSON: span names compose stored text ("chat {model}"); a receiver that is down
    "otel export": [(["{run}", "--include-content", "--file", "-"], "nl")],
    "otel follow": [
        (["--endpoint", "http://127.0.0.1:9", "--retries", "0", "--idle", "0"], "text")
    ],
    # a server runs until interrupted: the sweep checks its help; the pages it serves are
    # swept for hostile text by tests/ui/test_viewer_http.py (the same hostile store)
    "ui": [(["--help"], "text")],
    "fork": [(["{run}", "--at-seq", "1"], "text"), (["{run}", "--at-seq", "1", "--json"], "json")],
    "lineage": [(["{run}"], "text"), (["{run}", "--json"], "json")],
}
#: commands whose output holds no stored text (counts, ids, sizes)
SHOWS_NO_TEXT = {"verify", "stats", "consumers", "compact", "prune", "lineage", "embeddings"}
NO_DB = {"copy"}  # commands without --db
WRITES_STORE = {"import", "demo"}  # their --db is in their invocation
# JSON labels built from stored text (e.g. "ToolCallStarted(tool:...)", "chat {model}")
COMPOSES = {"diff", "otel export"}


def command_names() -> set[str]:
    names = set()
    for info in app.registered_commands:
        assert info.callback is not None
        names.add(info.name or info.callback.__name__.replace("_", "-"))
    for group in app.registered_groups:  # eventlog otel export, ...
        assert group.typer_instance is not None
        for sub in group.typer_instance.registered_commands:
            assert sub.callback is not None
            names.add(f"{group.name} {sub.name or sub.callback.__name__.replace('_', '-')}")
    return names


def test_every_command_is_in_the_sweep() -> None:
    assert command_names() == set(SWEEP), "give every command its invocations in SWEEP"


def strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from strings_in(v)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


@pytest.fixture(params=["lmdb", "postgres"])
def hostile(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[dict[str, str], HostileStore]:
    def location(name: str) -> str:
        if request.param == "postgres":
            request.getfixturevalue("pg_schemas")
            return url_for(tmp_path / name)
        return str(tmp_path / name)

    db = location("store")
    with RunStore.open(db) as store:
        made = fill(store)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"kind": "session", "id": HOSTILE}) + "\n", encoding="utf-8")
    whatif = tmp_path / "what-if.json"
    whatif.write_text(json.dumps({"type": "TextDelta", "payload": {"delta": HOSTILE}}))
    places = {
        "db": db,
        "run": str(made.run_id),
        "artifact": str(made.artifact_id),
        "artifact_file": str(tmp_path / "artifact.bin"),
        "session": str(made.session_id),
        "file": str(tmp_path / "export.jsonl"),
        "bad": str(bad),
        "whatif": str(whatif),
        "new": location("imported"),
        "copy": location("copied"),
        "demo": location("demo"),
    }
    return places, made


def test_hostile_text_never_reaches_the_terminal_raw(
    hostile: tuple[dict[str, str], HostileStore],
) -> None:
    places, made = hostile
    seen_escaped = set()
    for command, invocations in SWEEP.items():
        for args, mode in invocations:
            argv = [*command.split(), *(a.format(**places) for a in args)]
            if command not in NO_DB | WRITES_STORE:
                argv += ["--db", places["db"]]
            result = subprocess.run(
                [eventlog(), *argv],
                capture_output=True,
                timeout=120,
                check=False,
                env=child_env(),
            )
            out = result.stdout.decode("utf-8")
            err = result.stderr.decode("utf-8")
            where = f"`eventlog {' '.join(argv)}`"
            assert not FORBIDDEN.findall(out), f"{where} printed raw control characters"
            assert not FORBIDDEN.findall(err), f"{where} printed raw control characters on stderr"
            assert "Traceback" not in err, f"{where}: {err}"
            if mode == "text":
                if "\\x1b[2J" in out + err:
                    seen_escaped.add(command)
                continue
            assert result.returncode == 0, f"{where}: {err}"
            lines = [out] if mode == "json" else out.splitlines()
            docs = [json.loads(x) for x in lines]
            found = {s for s in strings_in(docs) if HOSTILE in s}
            # exact: each hostile string is one that was stored, unchanged (diff's step
            # labels compose stored text: each holds a stored string unchanged)
            if command in COMPOSES:
                changed = {s for s in found if not any(m in s for m in made.strings)}
            else:
                changed = found - made.strings
            assert not changed, f"{where} changed stored text: {changed}"
            if command not in SHOWS_NO_TEXT:
                assert found, f"{where} showed none of the stored text"
    # the text is shown (escaped), not dropped
    assert {"runs", "show", "events", "replay", "tail", "sessions", "messages"} <= seen_escaped


def test_the_exported_file_is_exact_and_terminal_safe(tmp_path: Path) -> None:
    db = tmp_path / "store"
    with RunStore.open(db) as store:
        made = fill(store)
        expected = list(store.export_jsonl())
    text = "".join(line + "\n" for line in expected)
    assert not FORBIDDEN.findall(text)
    found = {s for line in expected for s in strings_in(json.loads(line)) if HOSTILE in s}
    assert found == made.strings
