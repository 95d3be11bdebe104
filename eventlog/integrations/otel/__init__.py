"""OpenTelemetry export of runs as GenAI spans (the ``[otel]`` extra).

``pip install 'agent-eventlog[otel]'``. A run becomes one trace - an ``invoke_agent`` span,
``chat`` spans for model calls, ``execute_tool`` spans for tool executions - following the
OpenTelemetry GenAI semantic conventions version :data:`SEMCONV_VERSION`, with ids derived
from (run id, seq) so that a re-export is idempotent. :func:`send` posts spans to an OTLP/HTTP
receiver, :func:`otlp_json` writes OTLP JSON, :func:`follow` is the live exporter (a
persistent consumer). The CLI: ``eventlog otel export`` and ``eventlog otel follow``.
"""

from __future__ import annotations

from eventlog.integrations.otel.export import (
    otlp_json,
    otlp_json_lines,
    read_otlp_json,
    send,
    traces_url,
)
from eventlog.integrations.otel.follow import END_EVENT_TYPES, follow
from eventlog.integrations.otel.spans import (
    SCHEMA_URL,
    SEMCONV_VERSION,
    default_resource,
    ends_run,
    run_spans,
    span_id_of,
    trace_id_of,
)

__all__ = [
    "END_EVENT_TYPES",
    "SCHEMA_URL",
    "SEMCONV_VERSION",
    "default_resource",
    "ends_run",
    "follow",
    "otlp_json",
    "otlp_json_lines",
    "read_otlp_json",
    "run_spans",
    "send",
    "span_id_of",
    "trace_id_of",
    "traces_url",
]
