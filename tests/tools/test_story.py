"""The library behind the story commands, on its own: summary, tree, debug fold, search, diff,
times. Pure functions over records, and the readers over a real in-memory store.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import msgspec
import pytest

from eventlog import RunStore
from eventlog.errors import QueryError, RunNotFound
from eventlog.events import (
    Failure,
    ModelStarted,
    RawEvent,
    RunCompleted,
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
    UsageRecorded,
)
from eventlog.model.debug_state import DebugState, replay
from eventlog.model.records import EventRecord
from eventlog.model.status import RunStatus
from eventlog.tools.run_diff import diff_events, diff_runs, steps_of
from eventlog.tools.search import filter_runs, metadata_filter, search_events
from eventlog.tools.story import build_tree, run_story, run_summary, tool_tree
from eventlog.tools.timespec import parse_time

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def two_iterations(session: UUID) -> list[object]:
    return [
        RunStarted(session, "openai", "gpt-4o", timestamp=at(0)),
        ModelStarted("openai", "gpt-4o", 1, timestamp=at(10)),
        ToolCallStarted("a", "search", timestamp=at(100)),
        ToolCallDelta("a", '{"q":', timestamp=at(110)),
        ToolCallCompleted(ToolCall("a", "search", {"q": "x"}), timestamp=at(120)),
        ToolCallCompleted(ToolCall("b", "fetch", {"url": "u"}), timestamp=at(130)),
        UsageRecorded(TokenUsage(10, 2, 12), timestamp=at(150)),
        ToolExecutionStarted("a", "search", timestamp=at(160)),
        ToolExecutionFinished("a", "search", Success({"n": 1}), 40, timestamp=at(200)),
        ToolExecutionStarted("b", "fetch", timestamp=at(210)),
        ToolExecutionFinished("b", "fetch", Failure("404"), 5, timestamp=at(215)),
        ModelStarted("openai", "gpt-4o", 2, timestamp=at(300)),
        TextDelta("done", timestamp=at(400)),
        UsageRecorded(TokenUsage(20, 3, 23), timestamp=at(500)),
        RunCompleted("stop", 2, timestamp=at(600)),
    ]


@pytest.fixture
def store() -> RunStore:
    return RunStore.in_memory()


def make_run(store: RunStore, events: list[object] | None = None, **kw: object) -> UUID:
    sid = store.ensure_session()
    run = store.create_run(
        sid,
        provider=str(kw.get("provider", "openai")),
        model=str(kw.get("model", "gpt-4o")),
        metadata=kw.get("metadata", {}),  # type: ignore[arg-type]
    )
    store.append_events(run.id, events if events is not None else two_iterations(sid))  # type: ignore[arg-type]
    return run.id


def test_summary_counts_calls_tokens_tools_and_time(store: RunStore) -> None:
    rid = make_run(store)
    s = run_summary(store, rid)
    assert (s.status, s.finish_reason, s.error) == ("completed", "stop", None)
    assert (s.iterations, s.model_calls, s.events) == (2, 2, 15)
    assert s.usage == TokenUsage(30, 5, 35)
    assert (s.tool_calls, s.tool_failures, s.failed_tools, s.tool_time_ms) == (2, 1, ["fetch"], 45)
    assert (s.started_at, s.ended_at, s.duration_ms) == (at(0), at(600), 600)


def test_summary_of_a_run_without_events_and_of_a_running_one(store: RunStore) -> None:
    empty = run_summary(store, make_run(store, []))
    assert (empty.status, empty.started_at, empty.duration_ms, empty.model_calls) == (
        "pending",
        None,
        None,
        0,
    )
    sid = store.ensure_session()
    live = make_run(
        store,
        [RunStarted(sid, "p", "m", timestamp=at(0)), ModelStarted("p", "m", 1, timestamp=at(70))],
    )
    s = run_summary(store, live)
    assert (s.ended_at, s.last_event_at, s.duration_ms) == (None, at(70), 70)
    with pytest.raises(RunNotFound):
        run_summary(store, uuid4())


def test_tree_nests_tool_calls_under_their_model_call(store: RunStore) -> None:
    tree = tool_tree(store, make_run(store))
    assert [it.iteration for it in tree] == [1, 2]
    first = tree[0].model_calls[0]
    assert (first.seq, first.duration_ms, first.usage) == (2, 140, TokenUsage(10, 2, 12))
    calls = [
        (c.tool_name, c.outcome, c.duration_ms, c.error, c.arguments) for c in first.tool_calls
    ]
    assert calls == [
        ("search", "success", 40, None, {"q": "x"}),
        ("fetch", "failure", 5, "404", {"url": "u"}),
    ]
    assert first.tool_calls[0].output_summary == "n=1"
    second = tree[1].model_calls[0]
    assert (second.text, second.tool_calls, second.duration_ms) == ("done", [], 200)


def test_tree_keeps_tool_events_without_a_model_call() -> None:
    rid = uuid4()
    records = [EventRecord(rid, 1, 1, ToolExecutionStarted("z", "orphan", timestamp=T0), T0)]
    tree = build_tree(records)
    assert tree[0].iteration == 0
    assert tree[0].model_calls[0].tool_calls[0].outcome == "running"


def test_story_is_json(store: RunStore) -> None:
    story = run_story(store, make_run(store))
    doc = msgspec.json.decode(msgspec.json.encode(story))
    assert doc["summary"]["tool_failures"] == 1
    assert doc["tree"][0]["model_calls"][0]["tool_calls"][1]["error"] == "404"


def test_debug_fold_pending_calls_and_text(store: RunStore) -> None:
    rid = make_run(store)
    record = store.get_run(rid)
    assert record is not None
    events = store.list_events(rid)
    phases = {
        n: [(p.call_id, p.phase) for p in DebugState.fold(record, events[:n]).pending_tool_calls]
        for n in (3, 4, 6, 8, 9, 11)
    }
    assert phases[3] == [("a", "streaming")]
    assert DebugState.fold(record, events[:4]).pending_tool_calls[0].arguments == '{"q":'
    assert phases[6] == [("a", "requested"), ("b", "requested")]
    assert phases[8] == [("a", "running"), ("b", "requested")]
    assert phases[9] == [("b", "requested")]
    assert phases[11] == []
    final = DebugState.fold(record, events)
    assert final.assistant_text == "done"
    # the stored state is untouched by the debug fold
    assert msgspec.to_builtins(final.run) == msgspec.to_builtins(store.get_run_state(rid))


def test_replay_lists_old_and_new_and_leaves_out_bookkeeping(store: RunStore) -> None:
    rid = make_run(store)
    record = store.get_run(rid)
    assert record is not None
    steps = list(replay(record, store.list_events(rid)))
    changes = {s.seq: [(c.field, c.old, c.new) for c in s.changes] for s in steps}
    assert changes[2] == [("status", "session_loaded", "calling_model"), ("iteration", 0, 1)]
    assert changes[9] == [
        (
            "pending_tool_calls.a",
            {"tool_name": "search", "phase": "running", "arguments": {"q": "x"}},
            None,
        )
    ]
    assert changes[12] == [("iteration", 1, 2)]  # the text of call 1 was empty already
    assert all(
        c.field not in ("event_count", "last_seq", "updated_at") for s in steps for c in s.changes
    )
    full = list(replay(record, store.list_events(rid), include_bookkeeping=True))
    assert {c.field for c in full[0].changes} >= {"event_count", "last_seq", "updated_at"}


def test_search_finds_nested_values_and_filters(store: RunStore) -> None:
    rid = make_run(store)
    other = make_run(store, [RawEvent("Later", 2, {"deep": {"list": ["needle"]}})])
    hits = list(search_events(store, "needle|404"))
    assert [(h.record.run_id, h.field, h.text) for h in hits] == [
        (rid, "result.error", "404"),
        (other, "deep.list[0]", "needle"),
    ]
    assert [h.record.run_id for h in search_events(store, "needle|404", stream_ids=[other])] == [
        other
    ]
    assert list(search_events(store, "needle", types=["TextDelta"])) == []
    assert len(list(search_events(store, "4", limit=1))) == 1
    future = datetime.now(UTC) + timedelta(hours=1)
    assert list(search_events(store, "404", since=future)) == []
    assert len(list(search_events(store, "404", until=future))) == 1
    with pytest.raises(QueryError, match="pattern '\\(' is not valid"):
        list(search_events(store, "("))


def test_filter_runs_by_model_provider_metadata_and_time(store: RunStore) -> None:
    a = make_run(store, [], provider="openai", model="gpt-4o", metadata={"user": "ada", "n": 3})
    b = make_run(store, [], provider="anthropic", model="claude", metadata={"user": "bob"})
    assert [r.id for r in filter_runs(store)] == [b, a]
    assert [r.id for r in filter_runs(store, provider="openai")] == [a]
    assert [r.id for r in filter_runs(store, model="claude")] == [b]
    assert [r.id for r in filter_runs(store, metadata={"n": "3"})] == [a]
    assert [r.id for r in filter_runs(store, metadata=metadata_filter(["user=bob"]))] == [b]
    assert [r.id for r in filter_runs(store, limit=1, offset=1)] == [a]
    past = datetime.now(UTC) - timedelta(hours=1)
    assert filter_runs(store, until=past) == []
    assert len(filter_runs(store, since=past)) == 2
    assert filter_runs(store, limit=0) == []
    with pytest.raises(QueryError, match="--metadata 'user' is not valid"):
        metadata_filter(["user"])


def test_diff_folds_deltas_and_finds_the_divergence(store: RunStore) -> None:
    sid = store.ensure_session()
    events = two_iterations(sid)
    changed = [*events[:10], ToolExecutionFinished("b", "fetch", Success("ok"), 5), *events[11:]]
    a, b = make_run(store, events), make_run(store, changed)
    d = diff_runs(store, a, b)
    assert (d.same_steps, d.diverges_at) == (False, 1)
    assert [h.op for h in d.hunks] == ["equal", "replace", "equal"]
    assert d.hunks[1].a[0].label == "ToolExecutionFinished(fetch, failure)"
    assert d.hunks[1].b[0].label == "ToolExecutionFinished(fetch, success)"
    assert diff_runs(store, a, a).same_steps
    rid = uuid4()
    deltas = [EventRecord(rid, i, i, TextDelta(str(i)), T0) for i in (1, 2, 3)]
    assert [(s.label, s.first_seq, s.last_seq, s.count) for s in steps_of(deltas)] == [
        ("TextDelta", 1, 3, 3)
    ]
    status = [EventRecord(rid, 1, 1, RunStatusChanged(RunStatus.PERSISTING), T0)]
    assert [h.op for h in diff_events(deltas, status)] == ["replace"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", T0 - timedelta(seconds=90)),
        ("30m", T0 - timedelta(minutes=30)),
        ("2h", T0 - timedelta(hours=2)),
        ("7d", T0 - timedelta(days=7)),
        ("1.5h", T0 - timedelta(minutes=90)),
        ("2025-02-01", datetime(2025, 2, 1, tzinfo=UTC)),
        ("2025-02-01T10:00:00Z", datetime(2025, 2, 1, 10, tzinfo=UTC)),
        ("2025-02-01T10:00:00+02:00", datetime(2025, 2, 1, 8, tzinfo=UTC)),
    ],
)
def test_parse_time(text: str, expected: datetime) -> None:
    assert parse_time(text, now=T0) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "2h ago", "-2h", "2025-13-01"])
def test_parse_time_refuses_naming_the_option(text: str) -> None:
    with pytest.raises(QueryError, match=f"--until {text!r} is not valid"):
        parse_time(text, option="--until")
