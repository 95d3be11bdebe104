"""A run as OpenTelemetry spans, following the GenAI semantic conventions (pinned version).

One trace per run: an ``invoke_agent`` span for the run, a ``chat {model}`` span for every
model call (``ModelStarted`` up to its last output), an ``execute_tool {tool}`` span for every
tool execution (``ToolExecutionStarted`` .. ``ToolExecutionFinished``). Usage, provider,
model, finish reasons and errors are attributes; span times are the events' own timestamps.

The ids are derived from the run, never random: the trace id is the run id's 128 bits and a
span id is 64 bits of a BLAKE2b hash of (run id, seq of the event that opened the span; 0 for
the run's own span). Exporting a run twice yields the same spans, so a receiver that keeps one
span per id sees an idempotent re-export.

>>> from eventlog import RunStore
>>> from eventlog.events import ModelStarted, RunCompleted, TokenUsage, UsageRecorded
>>> store = RunStore.in_memory()
>>> run = store.create_run(store.ensure_session(), provider="openai", model="gpt-4o")
>>> _ = store.append_events(run.id, [
...     ModelStarted("openai", "gpt-4o", 1), UsageRecorded(TokenUsage(12, 3, 15)),
...     RunCompleted("stop", 1),
... ])
>>> spans = run_spans(*load_run(store, run.id))
>>> [s.name for s in spans]
['invoke_agent', 'chat gpt-4o']
>>> spans[1].attributes["gen_ai.usage.input_tokens"]
12
>>> spans[0].context.trace_id == run.id.int
True
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util.types import AttributeValue

from eventlog.model.events import (
    Failure,
    RunCancelled,
    RunFailed,
    RunStatusChanged,
    Success,
    ToolCallCompleted,
    ToolExecutionFinished,
    ToolExecutionStarted,
)
from eventlog.model.records import EventRecord, RunRecord
from eventlog.model.status import TERMINAL_STATUSES
from eventlog.tools.story import build_tree, event_time, load_run, summarize

__all__ = [
    "SCHEMA_URL",
    "SEMCONV_VERSION",
    "default_resource",
    "ends_run",
    "load_run",
    "run_spans",
    "span_id_of",
    "trace_id_of",
]

#: The OpenTelemetry semantic conventions version the spans follow (GenAI: development status).
SEMCONV_VERSION = "1.44.0"
#: Its schema URL, set on the resource and on the instrumentation scope of every export.
SCHEMA_URL = f"https://opentelemetry.io/schemas/{SEMCONV_VERSION}"

_ROOT_SEQ = 0

# The attribute names of the pinned conventions (written here, not read from the
# opentelemetry-semantic-conventions package, whose GenAI names are "incubating" and move
# between its releases: the spans must not change when another package upgrades it).
GEN_AI_AGENT_NAME = "gen_ai.agent.name"
GEN_AI_CONVERSATION_ID = "gen_ai.conversation.id"
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_ID = "gen_ai.tool.call.id"
GEN_AI_TOOL_CALL_RESULT = "gen_ai.tool.call.result"
GEN_AI_TOOL_NAME = "gen_ai.tool.name"
GEN_AI_TOOL_TYPE = "gen_ai.tool.type"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
ERROR_TYPE = "error.type"
SERVICE_NAME = "service.name"
SERVICE_VERSION = "service.version"


#: makes one span of the run: (name, seq that opened it, kind, attributes, start, end, status)
_SpanFactory = Callable[
    [str, int, SpanKind, Mapping[str, AttributeValue], int, int, Status], ReadableSpan
]


def trace_id_of(run_id: UUID) -> int:
    """The trace id of a run: its UUID's 128 bits (an all-zero id is invalid: 1 then)."""
    return run_id.int or 1


def span_id_of(run_id: UUID, seq: int) -> int:
    """The span id of the span a run's event ``seq`` opened (0: the run's own span)."""
    digest = hashlib.blake2b(run_id.bytes + seq.to_bytes(8, "big"), digest_size=8).digest()
    return int.from_bytes(digest, "big") or 1


def ends_run(record: EventRecord) -> bool:
    """True for an event that puts its run in a terminal status (what ``follow`` waits for)."""
    event = record.event
    if isinstance(event, RunStatusChanged):
        return event.status in TERMINAL_STATUSES
    return record.type in ("RunCompleted", "RunFailed", "RunCancelled")


def _ns(ts: datetime) -> int:
    return round(ts.timestamp() * 1_000_000) * 1000


def _context(run_id: UUID, seq: int) -> SpanContext:
    return SpanContext(
        trace_id_of(run_id), span_id_of(run_id, seq), False, TraceFlags(TraceFlags.SAMPLED)
    )


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _scope() -> InstrumentationScope:
    from eventlog import __version__

    return InstrumentationScope("eventlog", __version__, SCHEMA_URL)


def default_resource(service_name: str = "eventlog") -> Resource:
    """The resource of exported spans: ``service.name`` and the conventions' schema URL."""
    from eventlog import __version__

    return Resource({SERVICE_NAME: service_name, SERVICE_VERSION: __version__}, SCHEMA_URL)


def run_spans(
    record: RunRecord,
    events: Sequence[EventRecord],
    *,
    include_content: bool = False,
    resource: Resource | None = None,
) -> list[ReadableSpan]:
    """The spans of one run (the run's span first), from its record and all its events.

    ``include_content=True`` adds the tool calls' arguments and results and the model's text
    (``gen_ai.tool.call.arguments``, ``gen_ai.tool.call.result``, ``gen_ai.output.messages``):
    the conventions make content opt-in, because it is sensitive and large.
    """
    tree = build_tree(events)
    summary = summarize(record, events, tree)
    res = resource or default_resource()
    scope = _scope()
    rid = record.id
    root_ctx = _context(rid, _ROOT_SEQ)
    start = _ns(summary.started_at or record.created_at)
    end = _ns(summary.ended_at or summary.last_event_at or record.created_at)

    def span(
        name: str,
        seq: int,
        kind: SpanKind,
        attributes: Mapping[str, AttributeValue],
        begin: int,
        finish: int,
        status: Status,
    ) -> ReadableSpan:
        return ReadableSpan(
            name,
            _context(rid, seq),
            None if seq == _ROOT_SEQ else root_ctx,
            res,
            dict(attributes),
            kind=kind,
            status=status,
            start_time=begin,
            end_time=max(begin, finish),
            instrumentation_scope=scope,
        )

    agent = record.metadata.get("agent") if isinstance(record.metadata, dict) else None
    root_attrs: dict[str, AttributeValue] = {
        GEN_AI_OPERATION_NAME: "invoke_agent",
        GEN_AI_PROVIDER_NAME: summary.provider,
        GEN_AI_REQUEST_MODEL: summary.model,
        GEN_AI_CONVERSATION_ID: str(record.session_id),
        GEN_AI_USAGE_INPUT_TOKENS: summary.usage.input_tokens,
        GEN_AI_USAGE_OUTPUT_TOKENS: summary.usage.output_tokens,
        "eventlog.run.id": str(rid),
        "eventlog.run.status": summary.status,
        "eventlog.run.events": summary.events,
    }
    name = "invoke_agent"
    if isinstance(agent, str) and agent:
        root_attrs[GEN_AI_AGENT_NAME] = agent
        name = f"invoke_agent {agent}"
    if summary.finish_reason:
        root_attrs[GEN_AI_RESPONSE_FINISH_REASONS] = (summary.finish_reason,)
    root_status = Status(StatusCode.UNSET)
    if summary.status in ("failed", "cancelled"):
        ended_by = next(
            (e.event for e in reversed(events) if isinstance(e.event, RunFailed | RunCancelled)),
            None,
        )
        root_attrs[ERROR_TYPE] = type(ended_by).__name__ if ended_by else summary.status
        root_status = Status(StatusCode.ERROR, summary.error or summary.status)
    spans = [span(name, _ROOT_SEQ, SpanKind.INTERNAL, root_attrs, start, end, root_status)]

    calls = [mc for it in tree for mc in it.model_calls if mc.model or mc.iteration]
    for index, call in enumerate(calls):
        attrs: dict[str, AttributeValue] = {
            GEN_AI_OPERATION_NAME: "chat",
            GEN_AI_PROVIDER_NAME: call.provider,
            GEN_AI_REQUEST_MODEL: call.model,
            GEN_AI_CONVERSATION_ID: str(record.session_id),
            "eventlog.seq": call.seq,
            "eventlog.iteration": call.iteration,
        }
        if call.usage is not None:
            attrs[GEN_AI_USAGE_INPUT_TOKENS] = call.usage.input_tokens
            attrs[GEN_AI_USAGE_OUTPUT_TOKENS] = call.usage.output_tokens
        if call.tool_calls:
            attrs[GEN_AI_RESPONSE_FINISH_REASONS] = ("tool_calls",)
        elif index == len(calls) - 1 and summary.finish_reason:
            attrs[GEN_AI_RESPONSE_FINISH_REASONS] = (summary.finish_reason,)
        if include_content and call.text:
            message = {"role": "assistant", "parts": [{"type": "text", "content": call.text}]}
            attrs[GEN_AI_OUTPUT_MESSAGES] = _json([message])
        begin = _ns(call.started_at)
        finish = begin + (call.duration_ms or 0) * 1_000_000
        spans.append(
            span(
                f"chat {call.model}",
                call.seq,
                SpanKind.CLIENT,
                attrs,
                begin,
                finish,
                Status(StatusCode.UNSET),
            )
        )

    spans.extend(_tool_spans(record, events, span, end, include_content))
    return spans


def _tool_spans(
    record: RunRecord,
    events: Sequence[EventRecord],
    span: _SpanFactory,
    run_end: int,
    include_content: bool,
) -> list[ReadableSpan]:
    arguments: dict[str, Any] = {}
    started: dict[str, tuple[EventRecord, ToolExecutionStarted]] = {}
    finished: dict[str, tuple[EventRecord, ToolExecutionFinished]] = {}
    order: list[str] = []
    for rec in events:
        event = rec.event
        if isinstance(event, ToolCallCompleted):
            arguments[event.call.id] = event.call.arguments
        elif isinstance(event, ToolExecutionStarted) and event.call_id not in started:
            started[event.call_id] = (rec, event)
            order.append(event.call_id)
        elif isinstance(event, ToolExecutionFinished):
            finished.setdefault(event.call_id, (rec, event))
    out: list[ReadableSpan] = []
    for call_id in order:
        rec, begin_event = started[call_id]
        attrs: dict[str, AttributeValue] = {
            GEN_AI_OPERATION_NAME: "execute_tool",
            GEN_AI_TOOL_NAME: begin_event.tool_name,
            GEN_AI_TOOL_CALL_ID: call_id,
            GEN_AI_TOOL_TYPE: "function",
            GEN_AI_CONVERSATION_ID: str(record.session_id),
            "eventlog.seq": rec.seq,
        }
        if include_content and call_id in arguments:
            attrs[GEN_AI_TOOL_CALL_ARGUMENTS] = _json(arguments[call_id])
        begin = _ns(event_time(rec))
        done = finished.get(call_id)
        if done is None:  # started, no result: its effects are unknown (a crash, or running)
            status = Status(StatusCode.ERROR, "the tool started and no result was recorded")
            attrs[ERROR_TYPE] = "unresolved"
            finish = max(begin, run_end)
        else:
            end_rec, end_event = done
            finish = _ns(event_time(end_rec))
            attrs["eventlog.duration_ms"] = end_event.duration_ms
            if isinstance(end_event.result, Failure):
                status = Status(StatusCode.ERROR, end_event.result.error)
                attrs[ERROR_TYPE] = "ToolFailure"
            else:
                status = Status(StatusCode.UNSET)
                if include_content and isinstance(end_event.result, Success):
                    attrs[GEN_AI_TOOL_CALL_RESULT] = _json(end_event.result.output)
        out.append(
            span(
                f"execute_tool {begin_event.tool_name}",
                rec.seq,
                SpanKind.INTERNAL,
                attrs,
                begin,
                finish,
                status,
            )
        )
    return out
