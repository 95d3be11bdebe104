"""``eventlog runs --unresolved``, ``show``'s unresolved flag and ``replay --what-if``.

Through the installed script, on LMDB (the API is checked on every backend by the contract).
Hostile what-if files (not JSON, too deep, unknown keys and types, bad payloads) are
refused with an error naming the file, and nothing is written.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from test_cli_subprocess import child_env, eventlog

from eventlog import RunStore
from eventlog.errors import EventFileError
from eventlog.events import (
    ModelStarted,
    RunCompleted,
    TextDelta,
    ToolCall,
    ToolCallCompleted,
    ToolExecutionStarted,
)
from eventlog.tools.what_if import MAX_EVENT_FILE_BYTES, events_from_json


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [eventlog(), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=child_env(),
    )


@pytest.fixture
def db(tmp_path: Path) -> tuple[str, str, str]:
    path = str(tmp_path / "store")
    with RunStore.open(path) as store:
        sid = store.ensure_session()
        crashed = store.create_run(sid, provider="p", model="m")
        store.append_events(
            crashed.id,
            [
                ModelStarted("p", "m", 1),
                ToolCallCompleted(ToolCall("c1", "send_mail", {"to": "ops"})),
                ToolExecutionStarted("c1", "send_mail"),
            ],
        )
        done = store.create_run(sid, provider="p", model="m")
        store.append_events(
            done.id, [ModelStarted("p", "m", 1), TextDelta("hi"), RunCompleted("stop", 1)]
        )
    return path, str(crashed.id), str(done.id)


def test_runs_unresolved_and_show_flag_them(db: tuple[str, str, str]) -> None:
    path, crashed, _ = db
    listed = run_cli("runs", "--unresolved", "--json", "--db", path)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["id"], r["unresolved_tool_calls"]) for r in rows] == [(crashed, 1)]
    shown = run_cli("show", crashed[:8], "--db", path)
    assert "UNRESOLVED  1 tool call(s)" in shown.stdout
    assert 'send_mail({"to": "ops"})  [c1] started seq 3' in shown.stdout


def test_replay_what_if_shows_state_and_diff(db: tuple[str, str, str], tmp_path: Path) -> None:
    path, _, done = db
    failed = tmp_path / "failed.json"
    failed.write_text(json.dumps({"type": "RunFailed", "payload": {"error": "quota"}}))
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps([{"type": "TextDelta", "payload": {"delta": "!"}}]))
    args = ["replay", done, "--what-if", f"3={failed}", "--insert-after", f"2={extra}"]
    result = run_cli(*args, "--db", path)
    assert result.returncode == 0, result.stderr
    assert '"completed" -> "failed"' in result.stdout
    assert "- RunCompleted(stop)" in result.stdout
    doc = json.loads(run_cli(*args, "--drop", "1", "--json", "--db", path).stdout)
    assert (doc["state"]["status"], doc["real"]["status"]) == ("failed", "completed")
    assert (doc["to_seq"], doc["state"]["last_seq"], doc["state"]["iteration"]) == (3, 3, 0)
    with RunStore.open(path, readonly=True) as store:
        assert store.get_run_state(done).status == "completed"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"[[[[", "not valid JSON"),
        (b"[" * 200 + b"]" * 200, "nested"),
        (b'"RunFailed"', "not a JSON object"),
        (b"[]", "the list is empty"),
        (b'{"type": "Nope", "payload": {}}', "unknown event type 'Nope'"),
        (b'{"type": "RunFailed", "payload": {"error": 3}}', "payload of RunFailed"),
        (b'{"type": "RunFailed", "evil": 1}', "unknown key 'evil'"),
        (b'{"type": "TextDelta", "payload": []}', '"payload" must be a JSON object'),
        (b" " * (MAX_EVENT_FILE_BYTES + 1), "bytes is over"),
    ],
)
def test_hostile_what_if_files_are_refused(content: bytes, says: str) -> None:
    with pytest.raises(EventFileError, match=re.escape(says)) as caught:
        events_from_json(content, "bad.json")
    assert str(caught.value).startswith("bad.json")


def test_what_if_errors_are_clean(db: tuple[str, str, str], tmp_path: Path) -> None:
    path, _, done = db
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"type": "RunFailed", "payload": {"error": 3}, "\\u001b[2J": 1}')
    result = run_cli("replay", done, "--what-if", f"3={bad}", "--db", path)
    assert result.returncode == 1
    assert f"{bad} item" not in result.stderr
    assert "unknown key" in result.stderr
    assert "Traceback" not in result.stderr
    assert "\x1b" not in result.stderr
    out_of_range = run_cli("replay", done, "--drop", "9", "--db", path)
    assert "seq 9 is out of range for drop" in out_of_range.stderr
