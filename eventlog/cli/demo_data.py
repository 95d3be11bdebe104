"""Realistic sample agent runs, written through the public API (used by ``eventlog demo``).

Every demo session and run has a fixed id (:func:`demo_run_ids`), so writing the demo again
into the same store adds nothing: a run that is already there is skipped. The runs tell true
stories: the failed run's error names the tool that failed and how often, as its events show.
"""

from __future__ import annotations

import random
from uuid import UUID, uuid4, uuid5

from eventlog.model.events import (
    AssistantMessageCommitted,
    ContextBuilt,
    Event,
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
from eventlog.model.messages import (
    AssistantMessage,
    JsonPart,
    Part,
    SystemMessage,
    TextPart,
    ToolMessage,
    UserMessage,
)
from eventlog.model.records import RunRecord
from eventlog.model.status import RunStatus
from eventlog.store.run_store import RunStore

__all__ = ["demo_run_ids", "write_demo_runs"]

_NAMESPACE = UUID("5f0c2f5e-3c1a-4d59-9a57-0d3c0ee1d3a1")  # of the demo's fixed ids
_SESSION_TITLES = ("Refactor the billing service", "Research: embedded KV stores", "Support")
# the failed run: each try of this tool times out, and the run gives up after the last one
_FAILING_TOOL = ("run_tests", {"target": "tests/billing"}, "timed out after 30s")
_FAILED_TRIES = 3


def _session_id(n: int) -> UUID:
    return uuid5(_NAMESPACE, f"session-{n}")


def demo_run_ids(runs: int) -> list[UUID]:
    """The fixed ids of the first ``runs`` demo runs (the same in every store).

    >>> demo_run_ids(2) == demo_run_ids(3)[:2]
    True
    """
    return [uuid5(_NAMESPACE, f"run-{n}") for n in range(runs)]


_MODELS = [("openai", "gpt-4o"), ("anthropic", "claude-sonnet-4"), ("openai", "gpt-4o-mini")]
_QUESTIONS = [
    "Why does the billing test fail on CI only?",
    "Compare LMDB and SQLite for an append-only log.",
    "A customer cannot log in after the password reset.",
]
_TOOLS = [
    ("web_search", {"query": "LMDB durability guarantees"}, {"hits": 7}),
    ("read_file", {"path": "src/main.py"}, {"bytes": 5120}),
    ("run_tests", {"target": "tests/"}, {"passed": 41, "failed": 0}),
    ("sql_query", {"sql": "select count(*) from runs"}, {"rows": [[1234]]}),
]


def _stream(text: str, rng: random.Random) -> list[Event]:
    words = text.split(" ")
    chunks, i = [], 0
    while i < len(words):
        n = rng.randint(1, 3)
        chunks.append(" ".join(words[i : i + n]) + " ")
        i += n
    return [TextDelta(c) for c in chunks]


def _iteration(
    run_id: UUID, provider: str, model: str, it: int, rng: random.Random, tool_fails: bool
) -> list[Event]:
    result: Success | Failure
    if tool_fails:
        name, args, error = _FAILING_TOOL
        result = Failure(error)
    else:
        name, args, output = rng.choice(_TOOLS)
        result = Success(output)
    call_id = f"call_{run_id.hex[:6]}_{it}"
    arg_text = str(args).replace("'", '"')
    half = len(arg_text) // 2
    return [
        RunStatusChanged(RunStatus.BUILDING_CONTEXT),
        ContextBuilt(2 + 2 * it),
        ModelStarted(provider, model, it),
        *_stream("I will use a tool to find that out.", rng),
        ToolCallStarted(call_id, name),
        ToolCallDelta(call_id, arg_text[:half]),
        ToolCallDelta(call_id, arg_text[half:]),
        ToolCallCompleted(ToolCall(call_id, name, args)),
        UsageRecorded(TokenUsage(800 + 150 * it, 40 + it, 840 + 151 * it)),
        AssistantMessageCommitted(uuid4()),
        RunStatusChanged(RunStatus.WAITING_FOR_TOOLS),
        ToolExecutionStarted(call_id, name),
        ToolExecutionFinished(call_id, name, result, rng.randint(20, 900)),
        ToolMessageCommitted(uuid4()),
    ]


def write_demo_runs(store: RunStore, *, runs: int = 6, seed: int | None = None) -> list[RunRecord]:
    """Write ``runs`` sample runs over a few sessions; return the records of all of them.

    The mix: completed runs with tool calls, one failed (its tool timed out on every try),
    one cancelled, one still running. Ids are fixed: a run already in the store is not
    written again (and its record is returned as it is), so a second call adds nothing.

    >>> store = RunStore.in_memory()
    >>> [r.status.value for r in write_demo_runs(store, runs=4, seed=1)]
    ['completed', 'failed', 'cancelled', 'waiting_for_tools']
    >>> len(write_demo_runs(store, runs=4)), store.count_runs()
    (4, 4)
    """
    rng = random.Random(seed)
    run_ids = demo_run_ids(runs)
    sessions = []
    for n, title in enumerate(_SESSION_TITLES):
        sid = _session_id(n)
        if store.get_session(sid) is None:
            store.create_session(title=title, model="gpt-4o", session_id=sid)
            store.append_message(sid, SystemMessage("You are a careful coding agent."))
        sessions.append(sid)
    outcomes = ["completed", "failed", "cancelled", "running"]
    outcomes += ["completed"] * max(0, runs - len(outcomes))
    out: list[RunRecord] = []
    for n, outcome in enumerate(outcomes[:runs]):
        existing = store.get_run(run_ids[n])
        if existing is not None:
            out.append(existing)
            continue
        session_id = sessions[n % len(sessions)]
        provider, model = _MODELS[n % len(_MODELS)]
        run = store.create_run(
            session_id,
            provider=provider,
            model=model,
            metadata={"demo": True, "user": f"user-{n % 3}"},
            client_request_id=f"demo-{n}",
            run_id=run_ids[n],
        )
        question = rng.choice(_QUESTIONS)
        store.append_message(session_id, UserMessage(question))
        events: list[Event] = [RunStarted(session_id, provider, model)]
        iterations = _FAILED_TRIES if outcome == "failed" else rng.randint(1, 3)
        for it in range(1, iterations + 1):
            fails = outcome == "failed"
            events += _iteration(run.id, provider, model, it, rng, tool_fails=fails)
        if outcome == "completed":
            events += [
                RunStatusChanged(RunStatus.CALLING_MODEL),
                ModelStarted(provider, model, iterations + 1),
                *_stream("Here is what I found: the answer, with sources.", rng),
                UsageRecorded(TokenUsage(1200, 180, 1380)),
                RunStatusChanged(RunStatus.PERSISTING),
                AssistantMessageCommitted(uuid4()),
                RunCompleted("stop", iterations + 1),
            ]
        elif outcome == "failed":
            events.append(RunFailed(_failure_summary(events)))
        elif outcome == "cancelled":
            events.append(RunCancelled())
        # write in the chunks a runtime would: each step's events as one atomic batch
        for i in range(0, len(events), 5):
            store.append_events(run.id, events[i : i + 5])
        for event in events:  # the transcript: the assistant's tool calls and the tool results
            if isinstance(event, ToolCallCompleted):
                store.append_message(session_id, AssistantMessage("", tool_calls=[event.call]))
            elif isinstance(event, ToolExecutionFinished):
                output = event.result.output if isinstance(event.result, Success) else None
                text = event.result.error if isinstance(event.result, Failure) else None
                parts: list[Part] = [JsonPart(output)] if text is None else [TextPart(text)]
                store.append_message(session_id, ToolMessage(event.call_id, event.tool_name, parts))
        if outcome == "completed":
            store.append_message(session_id, AssistantMessage("Here is what I found."))
        record = store.get_run(run.id)
        assert record is not None
        out.append(record)
    return out


def _failure_summary(events: list[Event]) -> str:
    """The failed run's error, told by its own events: which tool failed, how often, why."""
    failures = [
        e for e in events if isinstance(e, ToolExecutionFinished) and isinstance(e.result, Failure)
    ]
    names = sorted({e.tool_name for e in failures})
    last = failures[-1].result
    assert isinstance(last, Failure)
    return f"tool {', '.join(names)} failed {len(failures)} times in a row: {last.error}"
