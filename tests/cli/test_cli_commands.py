"""Every ``eventlog`` command through typer's CliRunner, in every output mode.

The store is built through the library with fixed ids (so prefixes are known), and every JSON
output is compared with what the library itself returns for the same question. Tables are
checked for their content (short ids, statuses, types) and for the absence of ANSI codes.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
import pytest
import structlog
from typer.core import TyperGroup
from typer.main import get_command
from typer.testing import CliRunner, Result

from eventlog import (
    AssistantMessage,
    EventRecord,
    JsonPart,
    RawEvent,
    RunState,
    RunStatus,
    RunStore,
    SystemMessage,
    ToolMessage,
    UserMessage,
)
from eventlog.cli import app
from eventlog.engine.projectors import reader
from eventlog.events import (
    AssistantMessageCommitted,
    ContextBuilt,
    Failure,
    ModelStarted,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunStarted,
    RunStatusChanged,
    Success,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolCallCompleted,
    ToolCallDelta,
    ToolCallStarted,
    ToolExecutionFinished,
    ToolExecutionStarted,
    ToolMessageCommitted,
    UsageRecorded,
)
from eventlog.model.debug_state import DebugState, replay
from eventlog.storage.kv import KVTxn
from eventlog.store.builtins import BUILTIN_PROJECTORS
from eventlog.tools.story import run_summary, tool_tree

# -- the store: fixed ids, every kind of event ---------------------------------------------

S1 = UUID("5e55a000-0000-4000-8000-000000000001")
S2 = UUID("5e55b000-0000-4000-8000-000000000002")
R_OK = UUID("aaaa1111-0000-4000-8000-000000000001")  # completed, tool call, raw event
R_FAIL = UUID("aaaa2222-0000-4000-8000-000000000002")  # failed tool, failed run
R_CANCEL = UUID("bbbb3333-0000-4000-8000-000000000003")  # cancelled
R_LIVE = UUID("cccc4444-0000-4000-8000-000000000004")  # still calling the model
R_PENDING = UUID("dddd5555-0000-4000-8000-000000000005")  # no events
ALL_RUNS = (R_OK, R_FAIL, R_CANCEL, R_LIVE, R_PENDING)
EVENT_ID = UUID("eeee0000-0000-4000-8000-00000000000e")
FUTURE = RawEvent(
    "FutureEvent", 3, {"answer": 42, "nested": {"list": [1, "two", None]}, "note": "from v3"}
)
COMMANDS = {
    "fork",
    "lineage",
    "copy",
    "migrate",
    "runs",
    "show",
    "events",
    "replay",
    "tail",
    "sessions",
    "messages",
    "export",
    "import",
    "verify",
    "rebuild",
    "stats",
    "demo",
    "consumers",
    "event",
    "grep",
    "diff",
    "streams",
    "otel",
    "compact",
    "artifacts",
    "artifact",
    "embeddings",
    "ui",
    "prune",
}
#: command groups and their commands (each documented and tested like a command)
GROUPS = {"otel": {"export", "follow"}}
ANSI = "\x1b"


def build_store(db: Path) -> None:
    """Two sessions with transcripts; runs completed, failed, cancelled, running, pending."""
    with RunStore.open(db) as store:
        store.create_session(
            title="Refactor billing", model="gpt-4o", metadata={"team": "payments"}, session_id=S1
        )
        store.create_session(title="Research LMDB", model="claude-sonnet-4", session_id=S2)
        store.create_run(
            S1,
            provider="openai",
            model="gpt-4o",
            metadata={"user": "ada"},
            client_request_id="req-1",
            run_id=R_OK,
        )
        store.create_run(S1, provider="anthropic", model="claude-sonnet-4", run_id=R_FAIL)
        store.create_run(S2, provider="openai", model="gpt-4o-mini", run_id=R_CANCEL)
        store.create_run(S2, provider="openai", model="gpt-4o", run_id=R_LIVE)
        store.create_run(S1, provider="openai", model="gpt-4o", run_id=R_PENDING)

        store.append_message(S1, SystemMessage("You are a careful coding agent."))
        store.append_message(S1, UserMessage("How does LMDB store data?"))
        store.append_events(
            R_OK,
            [
                RunStarted(S1, "openai", "gpt-4o"),
                RunStatusChanged(RunStatus.BUILDING_CONTEXT),
                ContextBuilt(2),
                ModelStarted("openai", "gpt-4o", 1),
                TextDelta("Let me "),
                TextDelta("search."),
            ],
        )
        store.append_events(
            R_FAIL,
            [RunStarted(S1, "anthropic", "claude-sonnet-4"), ModelStarted("anthropic", "c", 1)],
        )
        store.append_events(
            R_OK,
            [
                ToolCallStarted("call_1", "web_search"),
                ToolCallDelta("call_1", '{"q": '),
                ToolCallDelta("call_1", '"lmdb"}'),
                ToolCallCompleted(ToolCall("call_1", "web_search", {"q": "lmdb"})),
                UsageRecorded(TokenUsage(100, 20, 120)),
            ],
        )
        store.append_message(
            S1, AssistantMessage("", tool_calls=[ToolCall("call_1", "web_search", {"q": "lmdb"})])
        )
        store.append_event(R_OK, RunStatusChanged(RunStatus.WAITING_FOR_TOOLS), event_id=EVENT_ID)
        store.append_events(
            R_OK,
            [
                ToolExecutionStarted("call_1", "web_search"),
                ToolExecutionFinished("call_1", "web_search", Success({"hits": 7}), 42),
                ToolMessageCommitted(UUID(int=1)),
            ],
        )
        store.append_message(S1, ToolMessage("call_1", "web_search", [JsonPart({"hits": 7})]))
        store.append_event(R_OK, FUTURE)
        store.append_events(
            R_FAIL,
            [
                ToolExecutionStarted("call_9", "run_tests"),
                ToolExecutionFinished("call_9", "run_tests", Failure("timed out after 30s"), 900),
                UsageRecorded(TokenUsage(50, 5, 55)),
                RunFailed("tool run_tests failed: timed out after 30s"),
            ],
        )
        store.append_events(
            R_CANCEL,
            [RunStarted(S2, "openai", "gpt-4o-mini"), ModelStarted("openai", "m", 1)],
        )
        store.append_event(R_CANCEL, RunCancelled())
        store.append_events(
            R_OK,
            [
                ModelStarted("openai", "gpt-4o", 2),
                TextDelta("LMDB is a B+tree."),
                UsageRecorded(TokenUsage(200, 30, 230)),
                AssistantMessageCommitted(UUID(int=2)),
                RunCompleted("stop", 2),
            ],
        )
        store.append_message(S1, AssistantMessage("LMDB is a B+tree."))
        store.append_events(
            R_LIVE,
            [RunStarted(S2, "openai", "gpt-4o"), ModelStarted("openai", "gpt-4o", 1)],
        )
        store.append_message(S2, UserMessage("Compare LMDB and SQLite."))
        store.append_event(R_LIVE, TextDelta("Comparing"))


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store that the tests only read."""
    path = tmp_path_factory.mktemp("cli") / "store"
    build_store(path)
    return path


@pytest.fixture
def fresh_db(tmp_path: Path) -> Path:
    """A store of this test's own (for commands that write, or tampering)."""
    path = tmp_path / "store"
    build_store(path)
    return path


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI (re)configures logging for each invocation: put everything back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    config = structlog.get_config()
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.configure(**config)


# -- helpers ---------------------------------------------------------------------------------


def cli(*args: str | Path, env: Mapping[str, str | None] | None = None) -> Result:
    """Invoke the app; never an uncaught exception, never an ANSI code, on either stream."""
    result = CliRunner().invoke(
        app, [str(a) for a in args], env={"EVENTLOG_DB": None, **(env or {})}
    )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        assert result.exc_info is not None
        trace = "".join(traceback.format_exception(*result.exc_info))
        pytest.fail(f"eventlog {' '.join(map(str, args))} raised:\n{trace}")
    assert ANSI not in result.stdout
    assert ANSI not in result.stderr
    return result


def ok(*args: str | Path, env: Mapping[str, str | None] | None = None) -> Result:
    """Invoke and expect exit code 0 and nothing on stderr."""
    result = cli(*args, env=env)
    assert result.exit_code == 0, result.stderr
    return result


def fails(code: int, *args: str | Path) -> Result:
    """Invoke and expect exit ``code``, a message on stderr, no traceback, nothing on stdout."""
    result = cli(*args)
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert result.stderr.strip()
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    return result


def js(result: Result) -> Any:
    return json.loads(result.stdout)


def nl(result: Result) -> list[Any]:
    assert result.stdout.endswith("\n") or result.stdout == ""
    return [json.loads(line) for line in result.stdout.splitlines()]


def builtins(obj: Any) -> Any:
    return msgspec.to_builtins(obj)


def table_rows(text: str) -> list[list[str]]:
    """The body rows of a rich table (continuation lines of folded cells left out)."""
    rows = []
    for line in text.splitlines():
        if line.startswith("│"):
            cells = [c.strip() for c in line.strip("│").split("│")]
            if cells[0]:
                rows.append(cells)
    return rows


def table_header(text: str) -> list[str]:
    for line in text.splitlines():
        if line.startswith("┃"):
            return [c.strip() for c in line.strip("┃").split("┃")]
    raise AssertionError(f"no table header in:\n{text}")


def event_json(record: EventRecord, *, payload: bool = True) -> dict[str, Any]:
    """An event line as the issue names it: the library's field names."""
    out: dict[str, Any] = {
        "run_id": str(record.run_id),
        "seq": record.seq,
        "position": record.position,
        "type": record.type,
        "recorded_at": builtins(record.recorded_at),
        "event_id": None if record.event_id is None else str(record.event_id),
    }
    if payload:
        event = record.event
        out["payload"] = event.data if isinstance(event, RawEvent) else builtins(event)
    return out


def run_json(store: RunStore, run_id: UUID) -> dict[str, Any]:
    record, state = store.get_run(run_id), store.get_run_state(run_id)
    assert record is not None
    assert state is not None
    row: dict[str, Any] = builtins(record)
    row["event_count"] = state.event_count
    row["total_tokens"] = state.total_usage.total_tokens
    return row


def read(db: Path) -> RunStore:
    return RunStore.open(db, readonly=True)


def export_text(db: Path) -> str:
    result = ok("export", "--all", "--db", db)
    return result.stdout


# -- runs ------------------------------------------------------------------------------------


def test_runs_json_is_the_status_index_newest_first(db: Path) -> None:
    with read(db) as store:
        expected = [run_json(store, r.id) for r in store.list_runs_filtered(limit=20)]
    assert [row["id"] for row in expected] == [str(r) for r in reversed(ALL_RUNS)]
    assert js(ok("runs", "--db", db, "--json")) == expected
    assert nl(ok("runs", "--db", db, "--nl")) == expected
    by_id = {row["id"]: row for row in expected}
    assert by_id[str(R_OK)]["status"] == "completed"
    assert by_id[str(R_OK)]["total_tokens"] == 350
    assert by_id[str(R_FAIL)]["status"] == "failed"
    assert by_id[str(R_CANCEL)]["status"] == "cancelled"
    assert by_id[str(R_PENDING)]["event_count"] == 0
    assert set(by_id[str(R_OK)]) >= {"id", "session_id", "status", "provider", "model"}


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (["--status", "failed"], {"status": "failed"}),
        (["--status", "completed"], {"status": "completed"}),
        (["--status", "persisting"], {"status": "persisting"}),
        (["--session", "5e55b"], {"session_id": S2}),
        (["--session", str(S1)], {"session_id": S1}),
        (["--session", "5e55a000-00"], {"session_id": S1}),
        (["--status", "pending", "--session", "5e55a"], {"status": "pending", "session_id": S1}),
        (["--limit", "2"], {"limit": 2}),
        (["--limit", "2", "--offset", "1"], {"limit": 2, "offset": 1}),
        (["--offset", "4"], {"offset": 4}),
        (["--offset", "9"], {"offset": 9}),
        (["--limit", "0"], {"limit": 0}),
    ],
)
def test_runs_filters(db: Path, args: list[str], kwargs: dict[str, Any]) -> None:
    with read(db) as store:
        kwargs.setdefault("limit", 20)
        expected = [run_json(store, r.id) for r in store.list_runs_filtered(**kwargs)]
    assert js(ok("runs", "--db", db, "--json", *args)) == expected
    assert nl(ok("runs", "--db", db, "--nl", *args)) == expected


def test_runs_filters_pick_the_right_runs(db: Path) -> None:
    assert [r["id"] for r in js(ok("runs", "--db", db, "--json", "--status", "failed"))] == [
        str(R_FAIL)
    ]
    in_s2 = js(ok("runs", "--db", db, "--json", "--session", "5e55b"))
    assert [r["id"] for r in in_s2] == [str(R_LIVE), str(R_CANCEL)]
    page = js(ok("runs", "--db", db, "--json", "--limit", "2", "--offset", "1"))
    assert [r["id"] for r in page] == [str(R_LIVE), str(R_CANCEL)]
    assert js(ok("runs", "--db", db, "--json", "--limit", "0")) == []
    assert ok("runs", "--db", db, "--nl", "--limit", "0").stdout == ""


def test_runs_table(db: Path) -> None:
    out = ok("runs", "--db", db).stdout
    assert table_header(out)[:6] == [
        "run",
        "session",
        "status",
        "provider/model",
        "events",
        "tokens",
    ]
    rows = table_rows(out)
    assert [r[0] for r in rows] == [str(r)[:8] for r in reversed(ALL_RUNS)]
    by_id = {r[0]: r for r in rows}
    assert by_id[str(R_OK)[:8]][1:6] == ["5e55a000", "completed", "openai/gpt-4o", "21", "350"]
    assert by_id[str(R_FAIL)[:8]][2] == "failed"
    assert by_id[str(R_CANCEL)[:8]][2] == "cancelled"
    assert by_id[str(R_LIVE)[:8]][2] == "calling_model"
    assert by_id[str(R_PENDING)[:8]][2:5] == ["pending", "openai/gpt-4o", "0"]
    failed = table_rows(ok("runs", "--db", db, "--status", "failed").stdout)
    assert [r[0] for r in failed] == [str(R_FAIL)[:8]]


# -- show ------------------------------------------------------------------------------------


@pytest.mark.parametrize("run", [R_OK, R_FAIL, R_CANCEL, R_LIVE, R_PENDING])
def test_show_json_is_the_record_and_its_state(db: Path, run: UUID) -> None:
    with read(db) as store:
        expected = {
            "run": builtins(store.get_run(run)),
            "state": builtins(store.get_run_state(run)),
            "summary": builtins(run_summary(store, run)),
            "tree": builtins(tool_tree(store, run)),
            "forks": [],  # the run's forks (none here)
            "unresolved_tool_calls": [],  # calls started with no result (none here)
        }
    assert js(ok("show", str(run)[:6], "--db", db, "--json")) == expected
    assert js(ok("show", str(run), "--db", db, "--json")) == expected


def test_show_json_of_the_failed_run(db: Path) -> None:
    shown = js(ok("show", "aaaa2", "--db", db, "--json"))
    assert shown["run"]["id"] == str(R_FAIL)
    assert shown["run"]["status"] == "failed"
    assert shown["state"]["status"] == "failed"
    assert shown["state"]["last_error"] == "tool run_tests failed: timed out after 30s"
    assert shown["state"]["total_usage"] == {
        "input_tokens": 50,
        "output_tokens": 5,
        "total_tokens": 55,
    }


def test_show_table(db: Path) -> None:
    out = ok("show", "aaaa1", "--db", db).stdout
    lines = out.splitlines()
    assert lines[0].startswith(f"run {R_OK}  (openai/gpt-4o, session {S1})")
    assert any(line.split() == ["status", "completed", "(stop)"] for line in lines)
    assert any(line.split() == ["events", "21"] for line in lines)
    assert "  iterations  2, model calls 2" in lines
    assert "  tokens      350 (input 300, output 50)" in lines
    assert any(line.startswith("  tool calls  1; tool time 42ms") for line in lines)
    tree = lines[lines.index("tool-call tree") :]
    assert tree[1:4] == [
        "  iteration 1",
        tree[2],
        '      text "Let me search."',
    ]
    assert tree[2].startswith("    model openai/gpt-4o  seq 4, ")
    assert tree[2].endswith(", 120 tokens")
    assert tree[4] == '      tool web_search(q="lmdb")  success in 42ms  [call_1]'
    assert tree[5] == "        output hits=7"
    failed = ok("show", "aaaa2", "--db", db).stdout.splitlines()
    assert "  tool calls  1, 1 failed (run_tests); tool time 900ms" in failed
    assert "  error       tool run_tests failed: timed out after 30s" in failed
    assert "      tool run_tests()  failure in 900ms  [call_9]" in failed
    assert "        error  timed out after 30s" in failed


# -- events ----------------------------------------------------------------------------------


def test_events_json_and_nl(db: Path) -> None:
    with read(db) as store:
        expected = [event_json(r) for r in store.list_events(R_OK)]
    assert len(expected) == 21
    assert js(ok("events", "aaaa1", "--db", db, "--json")) == expected
    assert nl(ok("events", "aaaa1", "--db", db, "--nl")) == expected
    by_type = {e["type"]: e for e in expected}
    assert by_type["ToolCallCompleted"]["payload"]["call"] == {
        "id": "call_1",
        "name": "web_search",
        "arguments": {"q": "lmdb"},
    }
    with_ids = [(e["seq"], e["type"], e["event_id"]) for e in expected if e["event_id"]]
    assert with_ids == [(12, "RunStatusChanged", str(EVENT_ID))]
    assert by_type["FutureEvent"]["payload"] == FUTURE.data  # raw data, as stored


@pytest.mark.parametrize(
    ("args", "after", "to", "types"),
    [
        (["--after-seq", "5"], 5, None, None),
        (["--to-seq", "4"], 0, 4, None),
        (["--after-seq", "3", "--to-seq", "7"], 3, 7, None),
        (["--to-seq", "0"], 0, 0, None),
        (["--after-seq", "21"], 21, None, None),
        (["--type", "TextDelta"], 0, None, {"TextDelta"}),
        (
            ["--type", "UsageRecorded", "--type", "RunCompleted"],
            0,
            None,
            {"UsageRecorded", "RunCompleted"},
        ),
        (["--type", "FutureEvent"], 0, None, {"FutureEvent"}),
        (["--type", "TextDelta", "--after-seq", "5", "--to-seq", "20"], 5, 20, {"TextDelta"}),
        (["--type", "NoSuchType"], 0, None, {"NoSuchType"}),
    ],
)
def test_events_filters(
    db: Path, args: list[str], after: int, to: int | None, types: set[str] | None
) -> None:
    with read(db) as store:
        records = store.list_events(R_OK, after_seq=after, to_seq=to)
    expected = [event_json(r) for r in records if types is None or r.type in types]
    assert js(ok("events", "aaaa1", "--db", db, "--json", *args)) == expected
    assert nl(ok("events", "aaaa1", "--db", db, "--nl", *args)) == expected


def test_events_filters_pick_the_right_events(db: Path) -> None:
    window = js(ok("events", "aaaa1", "--db", db, "--json", "--after-seq", "3", "--to-seq", "7"))
    assert [e["seq"] for e in window] == [4, 5, 6, 7]
    typed = js(
        ok(
            "events",
            "aaaa1",
            "--db",
            db,
            "--json",
            "--type",
            "UsageRecorded",
            "--type",
            "RunCompleted",
        )
    )
    assert [e["type"] for e in typed] == ["UsageRecorded", "UsageRecorded", "RunCompleted"]
    deltas = js(ok("events", "aaaa1", "--db", db, "--json", "--type", "TextDelta"))
    assert [e["payload"]["delta"] for e in deltas] == ["Let me ", "search.", "LMDB is a B+tree."]


def test_events_no_payload_drops_the_bodies(db: Path) -> None:
    with read(db) as store:
        expected = [event_json(r, payload=False) for r in store.list_events(R_OK)]
    as_json = js(ok("events", "aaaa1", "--db", db, "--json", "--no-payload"))
    as_nl = nl(ok("events", "aaaa1", "--db", db, "--nl", "--no-payload"))
    assert as_json == expected
    assert as_nl == expected
    assert all("payload" not in e for e in as_json + as_nl)
    table = ok("events", "aaaa1", "--db", db, "--no-payload").stdout
    assert table.splitlines()[1].split() == ["seq", "pos", "time", "(UTC)", "+Δ", "type"]
    assert "search." not in table


def test_events_table(db: Path) -> None:
    with read(db) as store:
        records = store.list_events(R_FAIL)
    out = ok("events", "aaaa2", "--db", db).stdout
    lines = out.splitlines()
    assert lines[0].startswith(f"run {R_FAIL}  (")
    assert lines[1].split() == ["seq", "pos", "time", "(UTC)", "+Δ", "type", "summary"]
    rows = [line.split(maxsplit=4) for line in lines[2:]]
    assert [(r[0], r[1]) for r in rows] == [(str(r.seq), str(r.position)) for r in records]
    assert [r[4].split()[0] if r[3].startswith("+") else r[3] for r in rows][1:] == [
        r.type for r in records
    ][1:]
    # the whole summary on a wide terminal: the failure reason, the duration, the error
    assert lines[-1].endswith(
        'RunFailed              error="tool run_tests failed: timed out after 30s"'
    )
    finished = next(line for line in lines if "ToolExecutionFinished" in line)
    assert finished.endswith('run_tests FAILED in 900ms: "timed out after 30s" [call_9]')
    future = ok("events", "aaaa1", "--db", db, "--type", "FutureEvent").stdout.splitlines()
    assert "FutureEvent" in future[2]
    assert 'answer=42 nested={"list":[1,"two",null]} note="from v3"' in future[2]


# -- replay ----------------------------------------------------------------------------------


def _fold(db: Path, run: UUID, to_seq: int | None = None) -> tuple[Any, list[EventRecord]]:
    with read(db) as store:
        record = store.get_run(run)
        events = store.list_events(run, to_seq=to_seq)
        state = store.get_run_state(run)
    assert record is not None
    if to_seq is None:  # the materialized state is the fold of the whole log
        assert builtins(RunState.fold(record, events)) == builtins(state)
    return record, events


@pytest.mark.parametrize("run", [R_OK, R_FAIL, R_CANCEL, R_LIVE, R_PENDING])
def test_replay_without_flags_is_the_folded_state(db: Path, run: UUID) -> None:
    record, events = _fold(db, run)
    expected = DebugState.fold(record, events).to_builtins()
    assert {k: expected[k] for k in RunState.__struct_fields__} == builtins(
        RunState.fold(record, events)
    )
    assert js(ok("replay", str(run)[:5], "--db", db, "--json")) == expected
    assert nl(ok("replay", str(run)[:5], "--db", db, "--nl")) == [expected]


@pytest.mark.parametrize("n", [0, 1, 4, 10, 16, 21, 99])
def test_replay_to_seq_is_the_fold_of_the_first_n_events(db: Path, n: int) -> None:
    record, events = _fold(db, R_OK, to_seq=n)
    assert len(events) == min(n, 21)
    expected = DebugState.fold(record, events).to_builtins()
    assert js(ok("replay", "aaaa1", "--db", db, "--json", "--to-seq", str(n))) == expected
    assert nl(ok("replay", "aaaa1", "--db", db, "--nl", "--to-seq", str(n))) == [expected]


def test_replay_to_seq_is_time_travel(db: Path) -> None:
    state = js(ok("replay", "aaaa1", "--db", db, "--json", "--to-seq", "11"))
    assert (state["status"], state["iteration"], state["event_count"]) == ("calling_model", 1, 11)
    assert state["total_usage"]["total_tokens"] == 120
    assert state["last_finish"] is None
    # what a debugger wants at seq 11: the text so far, the tool call waiting to run
    assert state["assistant_text"] == "Let me search."
    assert state["pending_tool_calls"] == [
        {
            "call_id": "call_1",
            "tool_name": "web_search",
            "phase": "requested",
            "arguments": {"q": "lmdb"},
        }
    ]
    final = js(ok("replay", "aaaa1", "--db", db, "--json"))
    assert (final["status"], final["iteration"], final["last_finish"]) == ("completed", 2, "stop")
    assert final["pending_tool_calls"] == []
    assert final["assistant_text"] == "LMDB is a B+tree."
    assert set(final) == {*RunState.__struct_fields__, "assistant_text", "pending_tool_calls"}


def _steps(db: Path, run: UUID, to_seq: int | None = None) -> list[tuple[EventRecord, Any, Any]]:
    record, events = _fold(db, run, to_seq)
    out = []
    for k, ev in enumerate(events, start=1):
        before = DebugState.fold(record, events[: k - 1]).to_builtins()
        after = DebugState.fold(record, events[:k]).to_builtins()
        out.append((ev, before, after))
    return out


@pytest.mark.parametrize("to_seq", [None, 6])
def test_replay_step(db: Path, to_seq: int | None) -> None:
    limit = [] if to_seq is None else ["--to-seq", str(to_seq)]
    expected = [
        {"seq": ev.seq, "type": ev.type, "state": after}
        for ev, _, after in _steps(db, R_OK, to_seq)
    ]
    assert len(expected) == (21 if to_seq is None else to_seq)
    assert js(ok("replay", "aaaa1", "--db", db, "--step", "--json", *limit)) == expected
    assert nl(ok("replay", "aaaa1", "--db", db, "--step", "--nl", *limit)) == expected
    out = ok("replay", "aaaa1", "--db", db, "--step", *limit).stdout
    headers = [line for line in out.splitlines() if line.startswith("seq ")]
    assert headers == [f"seq {e['seq']} {e['type']}" for e in expected]


@pytest.mark.parametrize("to_seq", [None, 6])
def test_replay_diff(db: Path, to_seq: int | None) -> None:
    limit = [] if to_seq is None else ["--to-seq", str(to_seq)]
    record, events = _fold(db, R_OK, to_seq)
    expected = [builtins(step) for step in replay(record, events)]
    got = js(ok("replay", "aaaa1", "--db", db, "--diff", "--json", *limit))
    assert got == expected
    assert nl(ok("replay", "aaaa1", "--db", db, "--diff", "--nl", *limit)) == expected
    assert [(s["seq"], s["type"]) for s in got] == [(e.seq, e.type) for e in events]
    changes = {s["seq"]: [(c["field"], c["old"], c["new"]) for c in s["changes"]] for s in got}
    assert changes[1] == [("status", "pending", "session_loaded")]  # unchanged fields left out
    assert changes[3] == []  # ContextBuilt changes only the bookkeeping fields
    assert changes[6] == [("assistant_text", "Let me ", "Let me search.")]
    assert all(
        c["field"] not in ("event_count", "last_seq", "updated_at")
        for s in got
        for c in s["changes"]
    )
    table = ok("replay", "aaaa1", "--db", db, "--diff", *limit).stdout.splitlines()
    assert "seq 1 RunStarted" in table
    assert table[table.index("seq 1 RunStarted") + 1].split() == [
        "status",
        '"pending"',
        "->",
        '"session_loaded"',
    ]
    assert "seq 3 ContextBuilt  (no other field changed)" in table
    if to_seq is None:
        finished = table[table.index("seq 14 ToolExecutionFinished") + 1]
        assert finished.split() == [
            "pending_tool_calls.call_1",
            "web_search",
            "running",
            '{"q":',
            '"lmdb"}',
            "->",
            "-",
        ]
        usage = table[table.index("seq 11 UsageRecorded") + 3]
        assert usage.split() == ["total_usage.total_tokens", "0", "->", "120"]


def test_replay_table(db: Path) -> None:
    out = ok("replay", "aaaa2", "--db", db).stdout
    lines = out.splitlines()
    assert lines[0] == f"state of run {R_FAIL} after seq 6"
    assert any(line.split() == ["status", "failed"] for line in lines)
    out = ok("replay", "aaaa2", "--db", db, "--to-seq", "2").stdout
    assert out.splitlines()[0] == f"state of run {R_FAIL} after seq 2"
    assert any(line.split() == ["status", "calling_model"] for line in out.splitlines())


# -- tail (without --follow) -----------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 3, 10, 1000])
def test_tail_last_n_of_the_whole_log(db: Path, n: int) -> None:
    with read(db) as store:
        log = store.read_log()
    expected = [event_json(r) for r in (log[-n:] if n else [])]
    assert nl(ok("tail", "-n", str(n), "--db", db, "--nl")) == expected
    assert js(ok("tail", "--lines", str(n), "--db", db, "--json")) == expected


def test_tail_default_is_ten(db: Path) -> None:
    with read(db) as store:
        expected = [event_json(r) for r in store.read_log()[-10:]]
    assert nl(ok("tail", "--db", db, "--nl")) == expected


@pytest.mark.parametrize("n", [0, 2, 30])
def test_tail_of_one_run(db: Path, n: int) -> None:
    with read(db) as store:
        events = store.list_events(R_OK)
    expected = [event_json(r) for r in (events[-n:] if n else [])]
    assert nl(ok("tail", "aaaa1", "-n", str(n), "--db", db, "--nl")) == expected
    assert js(ok("tail", "aaaa1", "-n", str(n), "--db", db, "--json")) == expected


def test_tail_plain_lines(db: Path) -> None:
    with read(db) as store:
        expected = store.read_log()[-4:]
    lines = ok("tail", "-n", "4", "--db", db).stdout.splitlines()
    assert len(lines) == 4
    for line, record in zip(lines, expected, strict=True):
        fields = line.split()
        assert fields[:3] == [str(record.run_id)[:8], str(record.seq), str(record.position)]
        assert record.type in fields
    run_lines = ok("tail", "aaaa2", "-n", "2", "--db", db).stdout.splitlines()
    assert [line.split()[0] for line in run_lines] == [str(R_FAIL)[:8]] * 2
    assert "RunFailed" in run_lines[-1]


# -- sessions and messages -------------------------------------------------------------------


def _session_rows(db: Path, limit: int, offset: int) -> list[dict[str, Any]]:
    with read(db) as store:
        rows = []
        for s in store.list_sessions(limit=limit, offset=offset):
            row: dict[str, Any] = builtins(s)
            row["runs"] = store.count_runs(session_id=s.id)
            rows.append(row)
    return rows


@pytest.mark.parametrize(
    ("args", "limit", "offset"),
    [([], 20, 0), (["--limit", "1"], 1, 0), (["--offset", "1"], 20, 1)],
)
def test_sessions_json(db: Path, args: list[str], limit: int, offset: int) -> None:
    expected = _session_rows(db, limit, offset)
    assert js(ok("sessions", "--db", db, "--json", *args)) == expected
    assert nl(ok("sessions", "--db", db, "--nl", *args)) == expected


def test_sessions_content_and_table(db: Path) -> None:
    rows = js(ok("sessions", "--db", db, "--json"))
    by_id = {r["id"]: r for r in rows}
    assert set(by_id) == {str(S1), str(S2)}
    assert (by_id[str(S1)]["title"], by_id[str(S1)]["runs"]) == ("Refactor billing", 3)
    assert by_id[str(S1)]["metadata"] == {"team": "payments"}
    assert by_id[str(S2)]["runs"] == 2
    out = ok("sessions", "--db", db).stdout
    assert table_header(out)[:4] == ["session", "title", "model", "runs"]
    table = {r[0]: r for r in table_rows(out)}
    assert table[str(S1)[:8]][1:4] == ["Refactor billing", "gpt-4o", "3"]
    assert table[str(S2)[:8]][1:4] == ["Research LMDB", "claude-sonnet-4", "2"]


@pytest.mark.parametrize(
    ("args", "after", "limit"),
    [([], 0, None), (["--after-seq", "2"], 2, None), (["--after-seq", "1", "--limit", "2"], 1, 2)],
)
def test_messages_json(db: Path, args: list[str], after: int, limit: int | None) -> None:
    with read(db) as store:
        found = store.list_messages(S1, after_seq=after, limit=limit)
    expected = [{"seq": n, **builtins(m)} for n, m in enumerate(found, start=after + 1)]
    assert js(ok("messages", "5e55a", "--db", db, "--json", *args)) == expected
    assert nl(ok("messages", "5e55a", "--db", db, "--nl", *args)) == expected


def test_messages_content_and_table(db: Path) -> None:
    got = js(ok("messages", "5e55a", "--db", db, "--json"))
    assert [m["role"] for m in got] == ["system", "user", "assistant", "tool", "assistant"]
    assert got[2]["tool_calls"] == [
        {"id": "call_1", "name": "web_search", "arguments": {"q": "lmdb"}}
    ]
    assert got[3]["tool_call_id"] == "call_1"
    assert got[3]["content"] == [{"type": "json", "value": {"hits": 7}}]
    out = ok("messages", "5e55a", "--db", db).stdout
    assert table_header(out) == ["seq", "role", "content"]
    rows = table_rows(out)
    assert [r[0] for r in rows] == ["1", "2", "3", "4", "5"]
    assert rows[0][1:] == ["system", "You are a careful coding agent."]
    assert rows[1][1:] == ["user", "How does LMDB store data?"]
    assert rows[2][1] == "assistant"
    assert "web_search" in rows[2][2]
    assert rows[3][1].startswith("tool web_search")
    assert "hits" in rows[3][2]
    assert rows[4][1:] == ["assistant", "LMDB is a B+tree."]
    other = nl(ok("messages", str(S2), "--db", db, "--nl"))
    assert other == [
        {
            "seq": 1,
            "role": "user",
            "content": [{"type": "text", "text": "Compare LMDB and SQLite."}],
        }
    ]


# -- export and import -----------------------------------------------------------------------


def test_export_all_is_the_library_export(db: Path, tmp_path: Path) -> None:
    with read(db) as store:
        expected = list(store.export_jsonl())
    result = ok("export", "--all", "--db", db)
    assert result.stdout.splitlines() == expected
    assert result.stdout.endswith("\n")
    kinds = [json.loads(line)["kind"] for line in expected]
    assert kinds == ["session"] * 2 + ["run"] * 5 + ["event"] * (len(kinds) - 8) + ["trailer"]
    future = [json.loads(line) for line in expected if '"FutureEvent"' in line]
    assert [(f["type"], f["version"], f["payload"]) for f in future] == [
        ("FutureEvent", 3, FUTURE.data)
    ]
    out = tmp_path / "all.jsonl"
    written = cli("export", "--all", "--db", db, "-o", out)
    assert written.exit_code == 0
    assert written.stdout == ""
    assert written.stderr.startswith(f"exported {len(expected)} lines to {out} (2 sessions, 5 runs")
    assert out.read_text(encoding="utf-8") == result.stdout
    other = tmp_path / "again.jsonl"
    assert cli("export", "--all", "--db", db, "--output", other).exit_code == 0
    assert other.read_text(encoding="utf-8") == result.stdout


def test_export_runs_by_prefix(db: Path) -> None:
    with read(db) as store:
        expected = list(store.export_jsonl([R_FAIL, R_CANCEL]))
    got = ok("export", "aaaa2", "bbbb", "--db", db).stdout.splitlines()
    assert got == expected
    lines = [json.loads(line) for line in got]
    assert {line["id"] for line in lines if line["kind"] == "run"} == {str(R_FAIL), str(R_CANCEL)}
    assert {line["id"] for line in lines if line["kind"] == "session"} == {str(S1), str(S2)}
    assert {line["run_id"] for line in lines if line["kind"] == "event"} == {
        str(R_FAIL),
        str(R_CANCEL),
    }


def test_import_into_a_new_path_creates_the_store(db: Path, tmp_path: Path) -> None:
    dump = tmp_path / "dump.jsonl"
    dump.write_text(export_text(db), encoding="utf-8")
    target = tmp_path / "new" / "store"
    result = ok("import", dump, "--db", target)
    with read(db) as store:
        stats = store.stats()
    assert result.stdout == (
        f"imported {stats.sessions} sessions, {stats.runs} runs, {stats.events} events "
        f"into {target}\n"
    )
    assert (target / "data.mdb").is_file()
    with read(target) as store:
        assert store.verify() == []
        assert store.get_run_state(R_OK) is not None
        assert [r.event for r in store.list_events(R_OK, after_seq=15, to_seq=16)] == [FUTURE]
        assert store.count_runs(status="failed") == 1


def test_export_import_export_round_trips_exactly(db: Path, tmp_path: Path) -> None:
    first = tmp_path / "first.jsonl"
    assert ok("export", "--all", "--db", db, "-o", first).stdout == ""
    target = tmp_path / "copy"
    ok("import", first, "--db", target)
    again = export_text(target)
    assert again == first.read_text(encoding="utf-8")
    assert '"type":"FutureEvent","version":3' in again
    assert js(ok("runs", "--db", target, "--json")) == js(ok("runs", "--db", db, "--json"))
    assert js(ok("show", "aaaa1", "--db", target, "--json")) == js(
        ok("show", "aaaa1", "--db", db, "--json")
    )


def test_an_unknown_event_type_in_a_file_is_kept_raw(db: Path, tmp_path: Path) -> None:
    lines = export_text(db).splitlines()
    seq = max(json.loads(line)["seq"] for line in lines if f'"run_id":"{R_LIVE}"' in line)
    plugin = json.dumps(
        {
            "kind": "event",
            "run_id": str(R_LIVE),
            "seq": seq + 1,
            "type": "PluginEvent",
            "version": 7,
            "recorded_at": "2030-01-02T03:04:05.000006Z",
            "event_id": "0b0b0b0b-0000-4000-8000-000000000000",
            "payload": {"type": "PluginEvent", "weird": [1, {"x": None}], "score": 0.5},
        },
        separators=(",", ":"),
    )
    dump = tmp_path / "dump.jsonl"
    # a hand-edited file: the trailer no longer matches, so it goes (and --allow-untrailed)
    dump.write_text("\n".join([*lines[:-1], plugin]) + "\n", encoding="utf-8")
    target = tmp_path / "copy"
    ok("import", dump, "--db", target, "--allow-untrailed")
    assert export_text(target).splitlines()[-2] == plugin
    shown = nl(ok("events", "cccc", "--db", target, "--nl", "--type", "PluginEvent"))
    assert [(e["seq"], e["payload"]) for e in shown] == [
        (seq + 1, {"type": "PluginEvent", "weird": [1, {"x": None}], "score": 0.5})
    ]


def _write_lines(path: Path, lines: Sequence[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _dump_lines(db: Path) -> list[str]:
    return export_text(db).splitlines()


def _first_event(lines: list[str], type_name: str) -> int:
    """0-based index of the first event line of ``type_name``."""
    return next(i for i, line in enumerate(lines) if json.loads(line).get("type") == type_name)


def _bad_files(db: Path, tmp: Path) -> dict[str, tuple[Path, str]]:
    """Bad import files and the text their error message must contain."""
    good = _dump_lines(db)
    out: dict[str, tuple[Path, str]] = {}
    out["malformed"] = (
        _write_lines(tmp / "malformed.jsonl", [good[0], good[1][:40], *good[2:]]),
        "line 2: not valid JSON",
    )
    out["malformed_after_blank"] = (
        _write_lines(tmp / "blank.jsonl", [good[0], "", "{not json", *good[1:]]),
        "line 3: not valid JSON",
    )
    no_title = json.loads(good[1])
    del no_title["title"]
    out["missing_field"] = (
        _write_lines(tmp / "missing.jsonl", [good[0], json.dumps(no_title), *good[2:]]),
        "line 2, field `title`",
    )
    i = _first_event(good, "TextDelta")
    no_seq = json.loads(good[i])
    del no_seq["seq"]
    out["missing_event_field"] = (
        _write_lines(tmp / "noseq.jsonl", [*good[:i], json.dumps(no_seq), *good[i + 1 :]]),
        f"line {i + 1}, field `seq`",
    )
    wrong = json.loads(good[i])
    wrong["payload"]["delta"] = 5
    out["wrong_payload_type"] = (
        _write_lines(tmp / "wrong.jsonl", [*good[:i], json.dumps(wrong), *good[i + 1 :]]),
        f"line {i + 1}, field `payload.delta`",
    )
    bad_seq = json.loads(good[i])
    bad_seq["seq"] = "three"
    out["wrong_field_type"] = (
        _write_lines(tmp / "badseq.jsonl", [*good[:i], json.dumps(bad_seq), *good[i + 1 :]]),
        f"line {i + 1}, field `seq`",
    )
    return out


BAD = [
    "malformed",
    "malformed_after_blank",
    "missing_field",
    "missing_event_field",
    "wrong_payload_type",
    "wrong_field_type",
]


@pytest.mark.parametrize("case", BAD)
def test_a_bad_import_file_leaves_the_store_unchanged(
    db: Path, fresh_db: Path, tmp_path: Path, case: str
) -> None:
    path, message = _bad_files(db, tmp_path)[case]
    empty = tmp_path / "empty-store"
    ok("import", _write_lines(tmp_path / "none.jsonl", []), "--db", empty, "--allow-untrailed")
    for target in (fresh_db, empty):
        before = export_text(target)
        result = fails(1, "import", path, "--db", target)
        assert result.stderr.startswith(f"error: {message}")
        assert "nothing was imported" in result.stderr
        assert export_text(target) == before


@pytest.mark.parametrize("case", BAD)
def test_a_bad_import_into_a_new_path_imports_nothing(db: Path, tmp_path: Path, case: str) -> None:
    path, message = _bad_files(db, tmp_path)[case]
    target = tmp_path / "new"
    result = fails(1, "import", path, "--db", target)
    assert result.stderr.startswith(f"error: {message}")
    if target.exists():  # (it must not exist at all: checked by the next test)
        assert export_text(target) == ""


def test_a_bad_import_into_a_new_path_does_not_create_the_store(db: Path, tmp_path: Path) -> None:
    path, _ = _bad_files(db, tmp_path)["malformed"]
    target = tmp_path / "new"
    fails(1, "import", path, "--db", target)
    assert not target.exists()


def test_import_of_ids_that_exist_is_refused_and_changes_nothing(fresh_db: Path) -> None:
    before = export_text(fresh_db)
    dump = fresh_db.parent / "dump.jsonl"
    dump.write_text(before, encoding="utf-8")
    result = fails(1, "import", dump, "--db", fresh_db)
    assert result.stderr.startswith(f"error: line 1: session {S1} already exists")
    assert export_text(fresh_db) == before


def test_import_of_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    target = tmp_path / "store"
    result = fails(1, "import", missing, "--db", target)
    assert result.stderr.startswith(f"error: file {missing} not found")
    assert not target.exists()


# -- verify, rebuild, stats ------------------------------------------------------------------


def test_verify_ok(db: Path) -> None:
    result = ok("verify", "--db", db)
    assert result.stdout == "ok: the log and every view agree\n"
    assert js(ok("verify", "--db", db, "--json")) == []
    assert ok("verify", "--db", db, "--nl").stdout == ""


def _tamper_view(db: Path, view: str) -> None:
    with RunStore.open(db) as store:

        def tamper(txn: KVTxn) -> None:
            tx = reader(txn, view)
            key, _ = next(iter(tx.scan()))
            tx.put(key, b"\x00tampered")  # type: ignore[attr-defined]

        store.core.backend.write(tamper)


def _problems(db: Path) -> list[Any]:
    with read(db) as store:
        return [builtins(p) for p in store.verify()]


@pytest.mark.parametrize("view", ["run_state", "status_index", "session_listing", "executions"])
def test_verify_reports_a_tampered_view(fresh_db: Path, view: str) -> None:
    _tamper_view(fresh_db, view)
    expected = _problems(fresh_db)
    assert expected
    assert {p["kind"] for p in expected} == {"view_mismatch"}
    result = cli("verify", "--db", fresh_db)
    assert result.exit_code == 1
    assert f"{len(expected)} problems" in result.stdout
    rows = table_rows(result.stdout)
    assert rows
    assert rows[0][0] == "view_mismatch"
    assert view in result.stdout
    as_json = cli("verify", "--db", fresh_db, "--json")
    assert as_json.exit_code == 1
    assert js(as_json) == expected
    as_nl = cli("verify", "--db", fresh_db, "--nl")
    assert as_nl.exit_code == 1
    assert nl(as_nl) == expected


def test_verify_reports_a_deleted_event(fresh_db: Path) -> None:
    with RunStore.open(fresh_db) as store:
        store.core.backend.write(
            lambda txn: txn.delete("events", store.core.engine.index.event_key(txn, R_OK, 2))
        )
    expected = _problems(fresh_db)
    result = cli("verify", "--db", fresh_db, "--json")
    assert result.exit_code == 1
    problems = js(result)
    assert problems == expected
    gaps = [p for p in problems if p["kind"] == "seq_gap"]
    assert [(p["run_id"], p["seq"]) for p in gaps] == [(str(R_OK), 2)]
    assert "dangling_position" in {p["kind"] for p in problems}
    table = cli("verify", "--db", fresh_db)
    assert table.exit_code == 1
    kinds = {r[0] for r in table_rows(table.stdout)}
    assert {"seq_gap", "dangling_position"} <= kinds
    assert f"run {R_OK} seq 2" in table.stdout


def test_rebuild_one_projector_fixes_its_view(fresh_db: Path) -> None:
    _tamper_view(fresh_db, "status_index")
    assert cli("verify", "--db", fresh_db).exit_code == 1
    with read(fresh_db) as store:
        last = store.last_position()
    result = ok("rebuild", "--db", fresh_db, "--projector", "status_index")
    assert result.stdout == f"rebuilt status_index over {last} positions\n"
    assert "status_index" in result.stderr  # the progress bar is on stderr
    assert f"{last}/{last}" in result.stderr
    assert "run_state" not in result.stderr
    assert ok("verify", "--db", fresh_db).stdout == "ok: the log and every view agree\n"


def test_rebuild_all(fresh_db: Path) -> None:
    _tamper_view(fresh_db, "run_state")
    _tamper_view(fresh_db, "executions")
    with read(fresh_db) as store:
        last = store.last_position()
    result = ok("rebuild", "--db", fresh_db)
    assert result.stdout == f"rebuilt {', '.join(BUILTIN_PROJECTORS)} over {last} positions\n"
    for name in ("run_state", "status_index", "session_listing", "executions"):
        assert name in result.stderr
    assert ok("verify", "--db", fresh_db).exit_code == 0
    two = ok("rebuild", "--db", fresh_db, "--projector", "run_state", "--projector", "executions")
    assert two.stdout == f"rebuilt run_state, executions over {last} positions\n"


def test_rebuild_of_an_unknown_projector_is_a_clean_error(fresh_db: Path) -> None:
    result = fails(1, "rebuild", "--db", fresh_db, "--projector", "nope")
    assert result.stderr.startswith("error: ")
    assert "nope" in result.stderr


def test_stats(db: Path) -> None:
    with read(db) as store:
        expected = builtins(store.stats())
    got = js(ok("stats", "--db", db, "--json"))
    assert got == expected
    assert got["runs"] == 5
    assert got["sessions"] == 2
    assert got["runs_by_status"] == {
        "pending": 1,
        "calling_model": 1,
        "completed": 1,
        "failed": 1,
        "cancelled": 1,
    }
    assert got["events"] == got["last_position"]
    assert [p["name"] for p in got["projectors"]] == list(BUILTIN_PROJECTORS)
    lines = ok("stats", "--db", db).stdout.splitlines()
    assert lines[0].split() == ["store", str(db)]
    assert lines[1].split()[:2] == ["runs", "5"]
    assert lines[2].split() == ["sessions", "2"]
    assert lines[3].split()[:2] == ["events", str(expected["events"])]
    ready = sum(1 for line in lines if line.startswith("projector") and "ready" in line)
    assert ready == len(BUILTIN_PROJECTORS)
    assert ["artifacts", "0", "(0", "bytes)"] in [line.split() for line in lines]


# -- consumers -------------------------------------------------------------------------------


def test_consumers_in_every_output_mode(tmp_path: Path) -> None:
    db = tmp_path / "store"
    build_store(db)
    with RunStore.open(db) as store:
        last = store.last_position()
        with store.subscribe(name="indexer", timeout=0) as sub:
            assert len(list(sub)) > 0
        store.subscribe(name="audit.v2", after_position=3).close()
        expected = builtins(store.consumers())
    assert [(c["name"], c["position"], c["lag"]) for c in expected] == [
        ("audit.v2", 3, last - 3),
        ("indexer", last, 0),
    ]
    assert js(ok("consumers", "--db", db, "--json")) == expected
    assert nl(ok("consumers", "--db", db, "--nl")) == expected
    out = ok("consumers", "--db", db).stdout
    assert ANSI not in out
    assert table_header(out) == ["consumer", "position", "lag", "updated"]
    assert [row[:3] for row in table_rows(out)] == [
        ["audit.v2", "3", str(last - 3)],
        ["indexer", str(last), "0"],
    ]


def test_consumers_of_a_store_without_any(db: Path) -> None:
    assert js(ok("consumers", "--db", db, "--json")) == []


# -- demo ------------------------------------------------------------------------------------


def test_demo(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    result = ok("demo", "--db", target, "--runs", "4", "--seed", "1")
    assert "4 demo runs written to" in result.stdout
    for word in ("completed", "failed", "cancelled", "waiting_for_tools", "Folded state"):
        assert word in result.stdout
    with read(target) as store:
        runs = store.list_runs_filtered()
        assert store.verify() == []
        assert len(store.list_sessions()) == 3
    assert sorted(r.status.value for r in runs) == [
        "cancelled",
        "completed",
        "failed",
        "waiting_for_tools",
    ]
    for run in runs:
        assert run.id.hex[:8] in result.stdout
    assert js(ok("runs", "--db", target, "--json", "--status", "failed"))[0]["status"] == "failed"


# -- --db and EVENTLOG_DB --------------------------------------------------------------------

READ_COMMANDS: list[list[str]] = [
    ["runs", "--json"],
    ["runs", "--nl", "--status", "failed"],
    ["show", "aaaa1", "--json"],
    ["events", "aaaa1", "--nl", "--no-payload"],
    ["replay", "aaaa1", "--json", "--to-seq", "5"],
    ["tail", "-n", "3", "--nl"],
    ["sessions", "--json"],
    ["messages", "5e55a", "--json"],
    ["export", "--all"],
    ["export", "aaaa2"],
    ["verify", "--json"],
    ["stats", "--json"],
]


@pytest.mark.parametrize("args", READ_COMMANDS, ids=lambda a: "-".join(a[:2]))
def test_read_commands_take_db_or_eventlog_db(db: Path, tmp_path: Path, args: list[str]) -> None:
    by_option = ok(*args, "--db", db)
    by_env = ok(*args, env={"EVENTLOG_DB": str(db)})
    assert by_option.stdout
    assert by_env.stdout == by_option.stdout
    # --db wins over the environment
    missing = tmp_path / "missing"
    assert ok(*args, "--db", db, env={"EVENTLOG_DB": str(missing)}).stdout == by_option.stdout
    assert not missing.exists()


def test_rebuild_demo_import_take_eventlog_db(db: Path, tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    ok("demo", "--runs", "2", "--seed", "3", env={"EVENTLOG_DB": str(demo)})
    with read(demo) as store:
        assert store.count_runs() == 2
        last = store.last_position()
    rebuilt = ok("rebuild", env={"EVENTLOG_DB": str(demo)})
    assert rebuilt.stdout.endswith(f" over {last} positions\n")
    dump = tmp_path / "dump.jsonl"
    dump.write_text(export_text(db), encoding="utf-8")
    target = tmp_path / "imported"
    ok("import", dump, env={"EVENTLOG_DB": str(target)})
    assert export_text(target) == export_text(db)


def test_the_default_store_is_dot_data(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = fails(1, "runs")
    assert result.stderr.startswith("error: no eventlog store at data")
    assert not (tmp_path / "data").exists()
    ok("import", _write_lines(tmp_path / "dump.jsonl", _dump_lines(db)))
    assert (tmp_path / "data" / "data.mdb").is_file()
    assert len(js(ok("runs", "--json"))) == 5


def test_logs_go_to_stderr_and_data_to_stdout(db: Path) -> None:
    with read(db) as store:
        expected = list(store.export_jsonl())
    result = ok("-v", "export", "--all", "--db", db)
    assert result.stdout.splitlines() == expected
    assert "store_opened" in result.stderr


# -- bad inputs ------------------------------------------------------------------------------

NEEDS_A_STORE: list[list[str]] = [
    ["runs"],
    ["runs", "--json"],
    ["show", "aaaa1"],
    ["events", "aaaa1"],
    ["replay", "aaaa1"],
    ["tail"],
    ["tail", "aaaa1", "-n", "1"],
    ["sessions"],
    ["messages", "5e55a"],
    ["export", "--all"],
    ["verify"],
    ["rebuild"],
    ["stats"],
]


@pytest.mark.parametrize("args", NEEDS_A_STORE, ids=lambda a: "-".join(a[:2]))
def test_a_missing_store_is_a_clean_error_and_is_not_created(
    tmp_path: Path, args: list[str]
) -> None:
    missing = tmp_path / "nowhere" / "store"
    result = fails(1, *args, "--db", missing)
    assert result.stderr.startswith(f"error: no eventlog store at {missing}")
    assert not missing.exists()
    assert not missing.parent.exists()
    by_env = cli(*args, env={"EVENTLOG_DB": str(missing)})
    assert by_env.exit_code == 1
    assert by_env.stderr == result.stderr
    assert not missing.parent.exists()
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    assert fails(1, *args, "--db", empty_dir).stderr.startswith("error: no eventlog store at")
    assert list(empty_dir.iterdir()) == []


@pytest.mark.parametrize(
    "args",
    [
        ["show", "abc123"],
        ["replay", "abc123"],
    ],
)
def test_an_unknown_run_prefix(db: Path, args: list[str]) -> None:
    assert fails(1, *args, "--db", db).stderr == "error: run abc123 not found\n"


@pytest.mark.parametrize(
    "args", [["export", "abc123"], ["export", "aaaa1", "abc123"], ["export", "0" * 33]]
)
def test_export_of_an_unknown_stream(db: Path, args: list[str]) -> None:
    """export takes runs, sessions and streams of any kind: it names all three."""
    message = fails(1, *args, "--db", db).stderr
    assert message.startswith(f"error: no run, session or stream {args[-1]}: ")


@pytest.mark.parametrize("args", [["messages", "abc123"], ["runs", "--session", "abc123"]])
def test_an_unknown_session_prefix(db: Path, args: list[str]) -> None:
    assert fails(1, *args, "--db", db).stderr == "error: session abc123 not found\n"


def test_a_full_unknown_run_id(db: Path) -> None:
    unknown = "0123abcd-0000-4000-8000-000000000000"
    assert fails(1, "show", unknown, "--db", db).stderr == f"error: run {unknown} not found\n"


@pytest.mark.parametrize(
    "args",
    [["show", "aaaa"], ["events", "aaaa"], ["replay", "aaa"], ["tail", "a"], ["export", "aaaa"]],
)
def test_an_ambiguous_run_prefix_lists_the_candidates(db: Path, args: list[str]) -> None:
    message = fails(1, *args, "--db", db).stderr
    assert message.startswith(f"error: run prefix {args[1]} is ambiguous")
    assert str(R_OK) in message
    assert str(R_FAIL) in message
    assert str(R_CANCEL) not in message


@pytest.mark.parametrize("args", [["messages", "5e55"], ["runs", "--session", "5e5"]])
def test_an_ambiguous_session_prefix_lists_the_candidates(db: Path, args: list[str]) -> None:
    message = fails(1, *args, "--db", db).stderr
    assert message.startswith("error: session prefix 5e5")
    assert "ambiguous" in message
    assert str(S1) in message
    assert str(S2) in message


@pytest.mark.parametrize(
    ("args", "bad"),
    [
        (["show", "xyz"], "xyz"),
        (["replay", "not-hex!"], "not-hex!"),
        (["messages", "nope"], "nope"),
        (["runs", "--session", "zz"], "zz"),
    ],
)
def test_an_invalid_prefix(db: Path, args: list[str], bad: str) -> None:
    message = fails(1, *args, "--db", db).stderr
    assert message.startswith(f"error: {bad!r} is not an id or an id prefix")


def test_prefixes_with_dashes_and_full_ids_work(db: Path) -> None:
    full = js(ok("show", str(R_OK), "--db", db, "--json"))
    assert js(ok("show", "aaaa1111-0000", "--db", db, "--json")) == full
    assert js(ok("show", "AAAA1111", "--db", db, "--json")) == full


@pytest.mark.parametrize(
    "args",
    [
        ["runs", "--bogus"],
        ["runs", "--limit", "x"],
        ["runs", "--limit", "-1"],
        ["events"],
        ["show"],
        ["show", "aaaa1", "extra"],
        ["replay", "aaaa1", "--to-seq", "-2"],
        ["tail", "-n", "-1"],
        ["no-such-command"],
        ["demo", "--runs", "0"],
        ["import"],
    ],
)
def test_usage_errors_exit_2(db: Path, args: list[str]) -> None:
    result = fails(2, *args, "--db", db)
    assert "Usage:" in result.stderr or "Error" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["runs", "--json", "--nl"], "error: choose one of --json and --nl\n"),
        (["events", "aaaa1", "--json", "--nl"], "error: choose one of --json and --nl\n"),
        (["export"], "error: give run ids or --all (not both)\n"),
        (["export", "aaaa1", "--all"], "error: give run ids or --all (not both)\n"),
    ],
)
def test_conflicting_options_exit_2(db: Path, args: list[str], message: str) -> None:
    assert fails(2, *args, "--db", db).stderr == message


def test_an_unknown_status(db: Path) -> None:
    result = cli("runs", "--status", "done", "--db", db)
    assert result.exit_code == 2  # a usage error
    assert result.stdout == ""
    assert "Invalid value for '--status'" in result.stderr
    assert "'done'" in result.stderr
    assert "completed" in result.stderr  # the valid values are listed


# -- help ------------------------------------------------------------------------------------


def _commands() -> dict[str, Any]:
    group = get_command(app)
    assert isinstance(group, TyperGroup)
    return dict(group.commands)


def test_every_command_is_registered() -> None:
    assert set(_commands()) == COMMANDS
    for name, subcommands in GROUPS.items():
        assert set(_commands()[name].commands) == subcommands


def _leaf_commands() -> list[str]:
    """Every command, a group's as ``"otel export"``."""
    names = [n for n in COMMANDS if n not in GROUPS]
    names += [f"{g} {sub}" for g, subs in GROUPS.items() for sub in subs]
    return sorted(names)


@pytest.mark.parametrize("name", _leaf_commands())
def test_every_command_has_help_with_an_example(name: str) -> None:
    group, _, sub = name.partition(" ")
    command = _commands()[group].commands[sub] if sub else _commands()[name]
    text = command.help or ""
    assert text.strip(), f"eventlog {name} has no help text"
    assert "Example" in text, f"eventlog {name}: its help has no example"
    assert f"eventlog {name}" in text.split("Example", 1)[1]
    for flag in ("-h", "--help"):
        result = ok(*name.split(), flag)
        assert "Usage:" in result.stdout
        assert "Example" in result.stdout
        # every command names its store with --db; copy has two: --from and --to
        assert ("--from" in result.stdout) if name == "copy" else ("--db" in result.stdout)


def test_top_level_help() -> None:
    for flag in ("-h", "--help"):
        out = ok(flag).stdout
        assert "Usage:" in out
        for name in COMMANDS:
            assert name in out


# -- table cells are text, not rich markup ---------------------------------------------------


def _markup_store(db: Path) -> UUID:
    with RunStore.open(db) as store:
        sid = store.create_session(title="[bold]Billing[/bold] [WIP]").id
        run = store.create_run(sid, provider="p", model="m", run_id=R_OK)
        store.append_event(run.id, TextDelta("see [1] and [/INST] [red]x"))
        store.append_message(sid, ToolMessage("call_7", "search", "done"))
    return sid


def test_a_tool_message_row_shows_the_call_id(tmp_path: Path) -> None:
    db = tmp_path / "store"
    sid = _markup_store(db)
    rows = table_rows(ok("messages", str(sid), "--db", db).stdout)
    assert rows[0][1] == "tool search [call_7]"


def test_an_event_text_with_brackets_is_shown_as_is(tmp_path: Path) -> None:
    db = tmp_path / "store"
    _markup_store(db)
    lines = ok("events", "aaaa", "--db", db).stdout.splitlines()
    assert lines[2].endswith('TextDelta  "see [1] and [/INST] [red]x"')


def test_a_session_title_with_brackets_is_shown_as_is(tmp_path: Path) -> None:
    db = tmp_path / "store"
    _markup_store(db)
    rows = table_rows(ok("sessions", "--db", db).stdout)
    assert rows[0][1] == "[bold]Billing[/bold] [WIP]"


def test_tail_n_skips_deleted_positions(tmp_path: Path) -> None:
    db = tmp_path / "store"
    with RunStore.open(db) as store:
        sid = store.ensure_session()
        kept = store.create_run(sid, provider="p", model="m")
        gone = store.create_run(sid, provider="p", model="m")
        store.append_events(kept.id, [TextDelta(str(i)) for i in range(5)])
        store.append_events(gone.id, [TextDelta(str(i)) for i in range(5)])
        store.delete_run(gone.id)
        expected = [event_json(r) for r in store.read_log()[-3:]]
    assert len(expected) == 3
    assert nl(ok("tail", "-n", "3", "--db", db, "--nl")) == expected
