"""The story commands through the installed ``eventlog`` script, on LMDB and on PostgreSQL.

show, events (80 columns, folded deltas, --raw, times), event, replay --diff, grep, diff,
streams, the time and run filters, and the notes that explain an empty result.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from pg_support import require_server, url_for
from test_cli_subprocess import child_env, eventlog

from eventlog import RunStore
from eventlog.events import (
    Failure,
    ModelStarted,
    RunCompleted,
    RunFailed,
    RunStarted,
    Success,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolCallCompleted,
    ToolExecutionFinished,
    ToolExecutionStarted,
    UsageRecorded,
)

S = UUID("5e55c000-0000-4000-8000-000000000001")
A = UUID("aaaa0001-0000-4000-8000-000000000001")  # fails: the tool times out
B = UUID("bbbb0002-0000-4000-8000-000000000002")  # completes: the tool works
T0 = datetime(2025, 3, 1, 14, 13, 43, 125000, tzinfo=UTC)
THREAD = "thread-42"


def at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def fill(location: str) -> None:
    with RunStore.open(location, create=True) as store:
        store.create_session(title="debug me", session_id=S)
        store.create_run(
            S, provider="openai", model="gpt-4o", metadata={"user": "ada", "tries": 3}, run_id=A
        )
        store.create_run(S, provider="anthropic", model="claude", run_id=B)
        for run, fails in ((A, True), (B, False)):
            result = Failure("tool timed out after 30s") if fails else Success({"hits": 7})
            store.append_events(
                run,
                [
                    RunStarted(S, "openai", "gpt-4o", timestamp=at(0)),
                    ModelStarted("openai", "gpt-4o", 1, timestamp=at(5)),
                    TextDelta("Let me ", timestamp=at(250)),
                    TextDelta("search ", timestamp=at(260)),
                    TextDelta("for that.", timestamp=at(270)),
                    ToolCallCompleted(
                        ToolCall("call_1", "web_search", {"q": "lmdb durability"}),
                        timestamp=at(400),
                    ),
                    UsageRecorded(TokenUsage(800, 40, 840), timestamp=at(410)),
                    ToolExecutionStarted("call_1", "web_search", timestamp=at(420)),
                    ToolExecutionFinished(
                        "call_1", "web_search", result, 30000, timestamp=at(30420)
                    ),
                    RunFailed("tool web_search failed: timed out", timestamp=at(30500))
                    if fails
                    else RunCompleted("stop", 1, timestamp=at(30500)),
                ],
            )
        thread = store.ensure_stream(
            _thread_id(), kind="langgraph.thread", metadata={"thread_id": THREAD}
        )
        store.append_to_stream(thread.id, [TextDelta("checkpoint one")])


def _thread_id() -> UUID:
    from eventlog.model.records import stream_id_for

    return stream_id_for("langgraph.thread", THREAD)


@pytest.fixture(params=["lmdb", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "lmdb":
        location = str(tmp_path / "store")
    else:
        require_server()
        request.getfixturevalue("pg_schemas")
        location = url_for(tmp_path / "pg")
    fill(location)
    return location


def run(*args: str, columns: int | None = None) -> subprocess.CompletedProcess[str]:
    env = child_env()
    env.pop("COLUMNS", None)
    if columns is not None:
        env["COLUMNS"] = str(columns)
    done = subprocess.run(
        [eventlog(), *args], capture_output=True, text=True, timeout=120, check=False, env=env
    )
    assert "Traceback" not in done.stderr
    assert "\x1b" not in done.stdout
    return done


def ok(*args: str, columns: int | None = None) -> str:
    done = run(*args, columns=columns)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout


def noted(*args: str) -> str:
    """An empty result: exit 0, nothing on stdout but a table header, a note on stderr."""
    done = run(*args)
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("note: ")
    return done.stderr


def refused(code: int, *args: str) -> str:
    done = run(*args)
    assert done.returncode == code, (done.stdout, done.stderr)
    assert done.stdout == ""
    assert done.stderr.startswith("error: ")
    return done.stderr


def test_show_summary_then_tree(db: str) -> None:
    lines = ok("show", "aaaa0", "--db", db).splitlines()
    assert "  status      failed" in lines
    assert "  started     2025-03-01 14:13:43.125 UTC" in lines
    assert "  ended       2025-03-01 14:14:13.625 UTC" in lines
    assert "  duration    30.50s" in lines
    assert "  iterations  1, model calls 1" in lines
    assert "  tokens      840 (input 800, output 40)" in lines
    assert "  tool calls  1, 1 failed (web_search); tool time 30.50s" not in lines
    assert "  tool calls  1, 1 failed (web_search); tool time 30.00s" in lines
    assert "  error       tool web_search failed: timed out" in lines
    tree = lines[lines.index("tool-call tree") :]
    assert tree[1:] == [
        "  iteration 1",
        "    model openai/gpt-4o  seq 2, 405ms, 840 tokens",
        '      text "Let me search for that."',
        '      tool web_search(q="lmdb durability")  failure in 30.00s  [call_1]',
        "        error  tool timed out after 30s",
    ]
    doc = json.loads(ok("show", "aaaa0", "--db", db, "--json"))
    assert doc["summary"]["duration_ms"] == 30500
    assert doc["summary"]["failed_tools"] == ["web_search"]
    call = doc["tree"][0]["model_calls"][0]["tool_calls"][0]
    assert (call["outcome"], call["duration_ms"], call["arguments"]) == (
        "failure",
        30000,
        {"q": "lmdb durability"},
    )


def test_events_at_80_columns_folds_deltas_with_ms_and_delta_t(db: str) -> None:
    out = ok("events", "aaaa0", "--db", db, columns=80)
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines), out
    assert lines[1].split() == ["seq", "time", "(UTC)", "+Δ", "type", "summary"]
    assert lines[2].split()[:3] == ["1", "14:13:43.125", "RunStarted"]
    # three text deltas are one row, with the text joined; the time since the row before
    folded = next(line for line in lines if "TextDelta" in line)
    assert folded.split()[:4] == ["3-5", "14:13:43.375", "+245ms", "TextDelta"]
    assert "x3" in folded
    assert folded.endswith('"Let me search for that."')
    # +Δ runs from the last delta of the folded row to the next row
    assert lines[lines.index(folded) + 1].split()[:4] == [
        "6",
        "14:13:43.525",
        "+130ms",
        "ToolCallCompleted",
    ]
    # type names are never broken across lines, the failure shows with its duration
    types = [line.split()[3] for line in lines[3:] if line[:8].strip()]
    assert "ToolExecutionFinished" in types
    finished = lines.index(next(line for line in lines if "ToolExecutionFinished" in line))
    assert "+30.00s" in lines[finished]
    assert 'web_search FAILED in 30000ms: "tool timed out after 30s"' in lines[finished + 1]
    raw = ok("events", "aaaa0", "--db", db, "--raw", columns=80)
    assert sum("TextDelta" in line for line in raw.splitlines()) == 3


def test_events_wide_shows_whole_summaries(db: str) -> None:
    out = ok("events", "aaaa0", "--db", db, columns=200)
    last = out.splitlines()[-1]
    assert last.endswith('RunFailed              error="tool web_search failed: timed out"')
    assert " pos " in out.splitlines()[1]


def test_event_prints_one_event_in_full(db: str) -> None:
    out = ok("event", "aaaa0", "9", "--db", db).splitlines()
    assert out[0] == f"ToolExecutionFinished  seq 9 of run {A}"
    assert "  time         2025-03-01 14:14:13.545 UTC" in out
    assert '    "duration_ms": 30000,' in out
    assert '      "error": "tool timed out after 30s"' in out
    doc = json.loads(ok("event", "aaaa0", "9", "--db", db, "--json"))
    assert doc["payload"]["result"] == {"kind": "Failure", "error": "tool timed out after 30s"}
    assert "seqs are 1-10" in refused(1, "event", "aaaa0", "11", "--db", db)


def test_replay_diff_names_old_and_new(db: str) -> None:
    steps = json.loads(ok("replay", "aaaa0", "--db", db, "--diff", "--json"))
    by_seq = {s["seq"]: s["changes"] for s in steps}
    assert by_seq[4] == [{"field": "assistant_text", "old": "Let me ", "new": "Let me search "}]
    assert by_seq[6] == [
        {
            "field": "pending_tool_calls.call_1",
            "old": None,
            "new": {
                "tool_name": "web_search",
                "phase": "requested",
                "arguments": {"q": "lmdb durability"},
            },
        }
    ]
    state = json.loads(ok("replay", "aaaa0", "--db", db, "--to-seq", "8", "--json"))
    assert state["pending_tool_calls"][0]["phase"] == "running"
    assert state["assistant_text"] == "Let me search for that."


def test_grep_searches_payload_values(db: str) -> None:
    hits = json.loads(ok("grep", "timed out", "--db", db, "--json"))
    assert [(h["run_id"], h["seq"], h["field"]) for h in hits] == [
        (str(A), 9, "result.error"),
        (str(A), 10, "error"),
    ]
    typed = json.loads(
        ok("grep", "TIMED", "-i", "--type", "RunFailed", "--run", "aaaa0", "--db", db, "--json")
    )
    assert [h["seq"] for h in typed] == [10]
    in_session = json.loads(
        ok("grep", "checkpoint|durability", "--session", "5e55c", "--db", db, "--json")
    )
    assert {h["run_id"] for h in in_session} == {str(A), str(B)}  # not the thread
    assert json.loads(ok("grep", "checkpoint", "--db", db, "--json"))[0]["run_id"] == str(
        _thread_id()
    )
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert "no event" in noted("grep", "timed out", "--since", later, "--db", db)
    assert len(json.loads(ok("grep", "timed out", "--since", "1h", "--db", db, "--json"))) == 2
    assert "pattern 'a(b' is not valid" in refused(2, "grep", "a(b", "--db", db)


def test_time_and_run_filters(db: str) -> None:
    def ids(*args: str) -> list[str]:
        return [r["id"] for r in json.loads(ok("runs", "--db", db, "--json", *args))]

    assert ids("--since", "1h") == [str(B), str(A)]
    assert "no runs match --until 2020-01-01" in noted("runs", "--db", db, "--until", "2020-01-01")
    assert ids("--provider", "anthropic") == [str(B)]
    assert ids("--model", "gpt-4o") == [str(A)]
    assert ids("--metadata", "user=ada", "--metadata", "tries=3") == [str(A)]
    assert "no runs match --metadata user=bob" in noted(
        "runs", "--db", db, "--metadata", "user=bob"
    )
    err = refused(2, "runs", "--db", db, "--since", "yesterday")
    assert "--since 'yesterday' is not valid" in err
    assert "--metadata 'user' is not valid" in refused(2, "runs", "--db", db, "--metadata", "user")
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert len(json.loads(ok("events", "aaaa0", "--db", db, "--json", "--since", since))) == 10
    assert "stored in that time range" in noted(
        "events", "aaaa0", "--db", db, "--until", "2020-01-01"
    )
    assert json.loads(ok("tail", "--db", db, "--json", "--since", "1h", "-n", "3"))[-1]["seq"] == 1


def test_streams_of_other_kinds(db: str) -> None:
    listed = json.loads(ok("streams", "--db", db, "--json"))
    assert [(s["kind"], s["events"], s["metadata"]) for s in listed] == [
        ("langgraph.thread", 1, {"thread_id": THREAD})
    ]
    assert json.loads(ok("streams", "--kind", "langgraph.thread", "--db", db, "--json")) == listed
    assert "no stream of kind 'agents.session'" in noted(
        "streams", "--kind", "agents.session", "--db", db
    )
    for name in (THREAD, str(_thread_id()), _thread_id().hex[:8]):
        events = json.loads(ok("events", name, "--db", db, "--json"))
        assert [e["payload"]["delta"] for e in events] == ["checkpoint one"]
    assert "checkpoint one" in ok("tail", THREAD, "--db", db)
    assert "langgraph.thread 1" in ok("stats", "--db", db)
    assert json.loads(ok("stats", "--db", db, "--json"))["streams_by_kind"] == {
        "langgraph.thread": 1
    }
    assert "no run, session or stream nope" in refused(1, "events", "nope", "--db", db)


def test_diff_aligns_two_runs(db: str) -> None:
    out = ok("diff", "aaaa0", "bbbb0", "--db", db).splitlines()
    assert "diverge at A seq 9 / B seq 9" in out
    assert any(
        line.split()[:4] == ["-", "ToolExecutionFinished(web_search,", "failure)", "A"]
        for line in out
    )
    assert any(
        line.split()[:4] == ["+", "ToolExecutionFinished(web_search,", "success)", "B"]
        for line in out
    )
    doc = json.loads(ok("diff", "aaaa0", "bbbb0", "--db", db, "--json"))
    assert doc["same_steps"] is False
    assert [h["op"] for h in doc["hunks"]] == ["equal", "replace"]
    same = json.loads(ok("diff", "aaaa0", "aaaa0", "--db", db, "--json"))
    assert (same["same_steps"], same["diverges_at"]) == (True, None)


def test_empty_results_say_why(db: str) -> None:
    assert "did you mean 'ToolExecutionFinished'" in noted(
        "events", "aaaa0", "--db", db, "--type", "toolexecutionfinished"
    )
    assert "no event type 'Nope'" in noted("events", "aaaa0", "--db", db, "--type", "Nope")
    assert "has no RunCompleted event" in noted(
        "events", "aaaa0", "--db", db, "--type", "RunCompleted"
    )
    assert "--after-seq 10 --to-seq 5 is an empty range" in noted(
        "events", "aaaa0", "--db", db, "--after-seq", "10", "--to-seq", "5"
    )
    assert "the last seq of run" in noted("events", "aaaa0", "--db", db, "--after-seq", "10")


def test_export_a_stream_of_any_kind_and_import_it(db: str, tmp_path: Path) -> None:
    """`export` takes a thread by name and a session by prefix; the file imports whole."""
    lines = ok("export", THREAD, "5e55c", "--db", db).splitlines()
    docs = [json.loads(line) for line in lines]
    kinds = [d["kind"] for d in docs]
    assert kinds == ["session", "stream", "event", "trailer"]
    assert docs[1]["stream_kind"] == "langgraph.thread"
    assert docs[2]["run_id"] == str(_thread_id())
    assert docs[-1]["counts"] == {"session": 1, "run": 0, "stream": 1, "event": 1}
    target = tmp_path / "copy.jsonl"
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    new = str(tmp_path / "imported")
    ok("import", str(target), "--db", new)
    with RunStore.open(new, readonly=True) as store:
        events = [e.event for e in store.read_stream(_thread_id())]
        assert [e.delta for e in events if isinstance(e, TextDelta)] == ["checkpoint one"]
        session = store.get_session(S)
        assert session is not None
        assert session.title == "debug me"
        assert store.count_runs() == 0
    assert "no run, session or stream" in refused(1, "export", "no-such-thread", "--db", db)
