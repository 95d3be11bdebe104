"""The seeded event data every peer stores: realistic agent runs, identical across peers.

A run is ``RunStarted`` then model iterations: ``ContextBuilt``, ``ModelStarted``, a few
streamed ``TextDelta``\\ s, often a tool call (started, argument deltas, completed, executed:
success or failure) and ``UsageRecorded``. No terminal event, so any prefix of a run can be
appended to (and more events after it). Timestamps are fixed (a base time plus a seeded
offset), so the same seed gives the same bytes in every process.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec

from eventlog.events import (
    ContextBuilt,
    Event,
    Failure,
    ModelStarted,
    RunStarted,
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

__all__ = ["PROVIDER", "MODEL", "run_events", "seeded_uuid", "to_plain", "uuids"]

PROVIDER = "openai"
MODEL = "gpt-4o"
BASE_TIME = datetime(2025, 1, 1, tzinfo=UTC)

_TEXT = (
    "the test suite fails on the flaky fixture so let me read the log first then patch the "
    "retry loop and run it again before I commit the change to the branch with a short note "
    "about why the timeout was too low for the slow runner in CI"
)
_WORDS = tuple(_TEXT.split())
_TOOLS = ("run_tests", "read_file", "search", "edit_file", "shell")


def seeded_uuid(rng: random.Random) -> UUID:
    """A version-4 UUID drawn from ``rng`` (the same seed gives the same ids)."""
    return UUID(int=rng.getrandbits(128), version=4)


def uuids(seed: int, n: int) -> list[UUID]:
    """``n`` seeded UUIDs."""
    rng = random.Random(seed)
    return [seeded_uuid(rng) for _ in range(n)]


def _text(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(lo, hi)))


def run_events(seed: int, n: int, session_id: UUID | None = None) -> list[Event]:
    """The first ``n`` events of a seeded agent run (no terminal event)."""
    rng = random.Random(seed)
    sid = session_id if session_id is not None else seeded_uuid(rng)
    clock = BASE_TIME + timedelta(seconds=rng.randint(0, 86_400))
    out: list[Event] = []

    def ts() -> datetime:
        nonlocal clock
        clock += timedelta(milliseconds=rng.randint(5, 400))
        return clock

    out.append(RunStarted(sid, PROVIDER, MODEL, timestamp=ts()))
    iteration = 0
    while len(out) < n:
        iteration += 1
        out.append(ContextBuilt(rng.randint(2, 80), timestamp=ts()))
        out.append(ModelStarted(PROVIDER, MODEL, iteration, timestamp=ts()))
        for _ in range(rng.randint(3, 12)):
            out.append(TextDelta(_text(rng, 1, 14), timestamp=ts()))
        if rng.random() < 0.6:
            call_id = f"call_{iteration}_{rng.randint(0, 9999)}"
            tool = rng.choice(_TOOLS)
            args: dict[str, Any] = {
                "path": f"src/{rng.choice(_WORDS)}.py",
                "line": rng.randint(1, 900),
            }
            out.append(ToolCallStarted(call_id, tool, timestamp=ts()))
            out.append(ToolCallDelta(call_id, '{"path": "src/', timestamp=ts()))
            out.append(ToolCallCompleted(ToolCall(call_id, tool, args), timestamp=ts()))
            out.append(ToolExecutionStarted(call_id, tool, timestamp=ts()))
            result: Success | Failure
            if rng.random() < 0.85:
                result = Success({"ok": True, "lines": rng.randint(0, 400)})
            else:
                result = Failure(_text(rng, 3, 10))
            out.append(
                ToolExecutionFinished(call_id, tool, result, rng.randint(3, 5000), timestamp=ts())
            )
        i, o = rng.randint(200, 9000), rng.randint(10, 800)
        out.append(UsageRecorded(TokenUsage(i, o, i + o), timestamp=ts()))
    return out[:n]


def to_plain(event: Event) -> dict[str, Any]:
    """The event as JSON-able builtins (``type`` tag included): what a JSON store keeps."""
    plain: dict[str, Any] = msgspec.to_builtins(event)
    return plain
