"""Realistic sample agent runs, written through the public API (used by ``eventlog demo``)."""

from __future__ import annotations

import random
from uuid import UUID, uuid4

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

__all__ = ["write_demo_runs"]

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
    name, args, output = rng.choice(_TOOLS)
    call_id = f"call_{run_id.hex[:6]}_{it}"
    arg_text = str(args).replace("'", '"')
    half = len(arg_text) // 2
    result: Success | Failure = (
        Failure("tool timed out after 30s") if tool_fails else Success(output)
    )
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
    """Write ``runs`` sample runs over a few sessions; return their records.

    The mix: completed runs with tool calls, one failed, one cancelled, one still running.

    >>> store = RunStore.in_memory()
    >>> [r.status.value for r in write_demo_runs(store, runs=4, seed=1)]
    ['completed', 'failed', 'cancelled', 'waiting_for_tools']
    """
    rng = random.Random(seed)
    sessions = [
        store.create_session(title=title, model="gpt-4o")
        for title in ("Refactor the billing service", "Research: embedded KV stores", "Support")
    ]
    for session in sessions:
        store.append_message(session.id, SystemMessage("You are a careful coding agent."))
    outcomes = ["completed", "failed", "cancelled", "running"]
    outcomes += ["completed"] * max(0, runs - len(outcomes))
    out: list[RunRecord] = []
    for n, outcome in enumerate(outcomes[:runs]):
        session = sessions[n % len(sessions)]
        provider, model = _MODELS[n % len(_MODELS)]
        run = store.create_run(
            session.id,
            provider=provider,
            model=model,
            metadata={"demo": True, "user": f"user-{n % 3}"},
            client_request_id=f"demo-{uuid4().hex[:8]}",
        )
        question = rng.choice(_QUESTIONS)
        store.append_message(session.id, UserMessage(question))
        events: list[Event] = [RunStarted(session.id, provider, model)]
        iterations = rng.randint(1, 3)
        for it in range(1, iterations + 1):
            fails = outcome == "failed" and it == iterations
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
            events.append(RunFailed("tool web_search failed 3 times: tool timed out after 30s"))
        elif outcome == "cancelled":
            events.append(RunCancelled())
        # write in the chunks a runtime would: each step's events as one atomic batch
        for i in range(0, len(events), 5):
            store.append_events(run.id, events[i : i + 5])
        for event in events:  # the transcript: the assistant's tool calls and the tool results
            if isinstance(event, ToolCallCompleted):
                store.append_message(session.id, AssistantMessage("", tool_calls=[event.call]))
            elif isinstance(event, ToolExecutionFinished):
                output = event.result.output if isinstance(event.result, Success) else None
                text = event.result.error if isinstance(event.result, Failure) else None
                parts: list[Part] = [JsonPart(output)] if text is None else [TextPart(text)]
                store.append_message(session.id, ToolMessage(event.call_id, event.tool_name, parts))
        if outcome == "completed":
            store.append_message(session.id, AssistantMessage("Here is what I found."))
        record = store.get_run(run.id)
        assert record is not None
        out.append(record)
    return out
