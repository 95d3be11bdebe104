"""A store whose every text field is hostile: terminal escapes, NUL, DEL, C1, bidi, CR.

Used by the sweep of every CLI command (``test_cli_hostile.py``): whatever a command prints
for a person must not carry one of :data:`FORBIDDEN` to the terminal, and its JSON must parse
back to the exact stored strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from uuid import UUID

from eventlog import RunStore
from eventlog.events import (
    ModelStarted,
    RawEvent,
    RunFailed,
    RunStarted,
    TextDelta,
    ToolCall,
    ToolCallCompleted,
    ToolCallStarted,
    ToolExecutionStarted,
)
from eventlog.messages import AssistantMessage, ToolMessage, UserMessage

# Each piece alone, so that a leak names the one that got through.
PIECES = {
    "clear": "\x1b[2J",
    "osc_title": "\x1b]0;pwned\x07",
    "osc8_link": "\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\",
    "nul": "\x00",
    "del": "\x7f",
    "c1_csi": "\x9b31m",
    "rlo": "\u202e",
    "cr": "\rOVERWRITE",
}
HOSTILE = "h<" + "".join(PIECES.values()) + ">h"

#: Characters that must never reach a terminal raw (newline and tab excepted).
FORBIDDEN = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]"
)


def h(name: str) -> str:
    """A hostile string that also says which field it was stored in."""
    return f"{name}:{HOSTILE}"


@dataclass(frozen=True)
class HostileStore:
    """Ids of what :func:`fill` wrote."""

    session_id: UUID
    run_id: UUID
    stream_id: UUID
    strings: frozenset[str]
    artifact_id: UUID | None = None


def fill(store: RunStore) -> HostileStore:
    """Write a session, a failed run, messages and a stream, every text field hostile."""
    strings = {
        h(n)
        for n in (
            "title",
            "session_model",
            "provider",
            "model",
            "meta_value",
            "meta_key",
            "delta",
            "tool",
            "arg",
            "error",
            "raw_type",
            "raw_value",
            "user",
            "assistant",
            "stream_meta",
            "tool_msg",
            "content_type",
        )
    }
    session = store.create_session(
        title=h("title"), model=h("session_model"), metadata={h("meta_key"): h("meta_value")}
    )
    run = store.create_run(
        session.id,
        provider=h("provider"),
        model=h("model"),
        metadata={h("meta_key"): h("meta_value")},
    )
    store.append_event(run.id, RunStarted(session.id, h("provider"), h("model")))
    store.append_event(run.id, ModelStarted(h("provider"), h("model"), 1))
    store.append_events(
        run.id,
        [
            TextDelta(h("delta")),
            ToolCallStarted("call-1", h("tool")),
            ToolCallCompleted(ToolCall("call-1", h("tool"), {h("meta_key"): h("arg")})),
            RawEvent(h("raw_type"), 1, {h("meta_key"): h("raw_value")}),
            ToolExecutionStarted("call-1", h("tool")),  # unresolved: the ledger shows it
            RunFailed(h("error")),
        ],
    )
    store.append_message(session.id, UserMessage(h("user")))
    store.append_message(
        session.id,
        AssistantMessage(h("assistant"), tool_calls=[ToolCall("call-1", h("tool"), h("arg"))]),
    )
    store.append_message(session.id, ToolMessage("call-1", h("tool"), h("tool_msg")))
    stream = store.create_stream(kind="test.hostile", metadata={h("meta_key"): h("stream_meta")})
    store.append_to_stream(stream.id, [TextDelta(h("delta"))])
    store.embeddings.upsert(
        h("tool"),
        [1.0, 0.5],
        session_id=session.id,
        text=h("delta"),
        metadata={h("meta_key"): h("meta_value")},
    )
    # names refuse control characters (a bidi override is text); content type and metadata
    # are stored as given; the content is bytes, written to a file, never to the terminal
    artifact = store.artifacts.put(
        session.id,
        "report\u202etxt.exe",
        HOSTILE.encode(),
        content_type=h("content_type"),
        metadata={h("meta_key"): h("meta_value")},
    )
    return HostileStore(session.id, run.id, stream.id, frozenset(strings), artifact.id)
