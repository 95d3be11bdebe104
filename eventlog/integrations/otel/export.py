"""Deliver runs' spans: to an OTLP/HTTP receiver, or as OTLP JSON lines in a file.

:func:`send` posts spans (protobuf) to ``{endpoint}/v1/traces`` with the OpenTelemetry SDK's
own OTLP/HTTP exporter. :func:`otlp_json` renders one run's spans as one line of OTLP JSON (an
``ExportTraceServiceRequest`` in the OTLP/JSON encoding: lowerCamelCase names, ids in hex,
enums as integers, the format the OpenTelemetry Collector's file exporter writes), and
:func:`read_otlp_json` parses such a file back into protobuf messages.

>>> from eventlog import RunStore
>>> from eventlog.events import ModelStarted, RunCompleted
>>> from eventlog.integrations.otel.spans import load_run, run_spans
>>> store = RunStore.in_memory()
>>> run = store.create_run(store.ensure_session(), provider="openai", model="gpt-4o")
>>> _ = store.append_events(run.id, [ModelStarted("openai", "gpt-4o", 1), RunCompleted("stop", 1)])
>>> line = otlp_json(run_spans(*load_run(store, run.id)))
>>> import json
>>> span = json.loads(line)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
>>> span["name"], span["traceId"] == run.id.hex
('invoke_agent', True)
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from eventlog.errors import TelemetryExportError

__all__ = ["otlp_json", "read_otlp_json", "send", "traces_url"]

_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL of a receiver: ``endpoint`` + ``/v1/traces`` unless given.

    >>> traces_url("http://localhost:4318")
    'http://localhost:4318/v1/traces'
    >>> traces_url("http://localhost:6006/v1/traces")
    'http://localhost:6006/v1/traces'
    """
    url = endpoint.strip()
    if not url.startswith(("http://", "https://")):
        raise ValueError(
            f"--endpoint {endpoint!r} is not an http(s) URL; give the receiver's OTLP/HTTP "
            "address, e.g. http://localhost:4318"
        )
    url = url.rstrip("/")
    return url if url.endswith("/v1/traces") else f"{url}/v1/traces"


def send(
    spans: Sequence[ReadableSpan],
    endpoint: str,
    *,
    timeout: float = 10.0,
    headers: dict[str, str] | None = None,
) -> None:
    """Post ``spans`` to the receiver at ``endpoint`` (OTLP/HTTP, protobuf).

    Raises :class:`~eventlog.errors.TelemetryExportError` naming the URL when the receiver
    does not accept them (unreachable, refused, an HTTP error after the exporter's retries).
    """
    url = traces_url(endpoint)
    if not spans:
        return
    exporter = OTLPSpanExporter(endpoint=url, timeout=timeout, headers=headers)
    # the exporter logs each failure itself; the error below says it once
    log = logging.getLogger("opentelemetry.exporter.otlp.proto.http")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        result = exporter.export(spans)
    except Exception as exc:  # a malformed URL, a TLS setup error: the exporter's own
        raise TelemetryExportError(url, f"{type(exc).__name__}: {exc}") from exc
    finally:
        log.setLevel(level)
        exporter.shutdown()  # type: ignore[no-untyped-call]
    if result is not SpanExportResult.SUCCESS:
        raise TelemetryExportError(url, "unreachable, refused or an HTTP error")


def _hex_ids(node: Any) -> Any:
    """OTLP/JSON writes ids in hex where protobuf's JSON mapping writes base64."""
    if isinstance(node, dict):
        return {
            k: (
                base64.b64decode(v).hex() if k in _ID_FIELDS and isinstance(v, str) else _hex_ids(v)
            )
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_hex_ids(v) for v in node]
    return node


def _b64_ids(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: (
                base64.b64encode(bytes.fromhex(v)).decode()
                if k in _ID_FIELDS and isinstance(v, str)
                else _b64_ids(v)
            )
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_b64_ids(v) for v in node]
    return node


def otlp_json(spans: Sequence[ReadableSpan]) -> str:
    """One line of OTLP JSON: an ``ExportTraceServiceRequest`` holding ``spans``."""
    message = json_format.MessageToDict(encode_spans(spans), use_integers_for_enums=True)
    return json.dumps(_hex_ids(message), ensure_ascii=True, separators=(",", ":"))


def otlp_json_lines(groups: Iterable[Sequence[ReadableSpan]]) -> Iterator[str]:
    """One OTLP JSON line per group of spans (one group per run)."""
    for spans in groups:
        yield otlp_json(spans)


def read_otlp_json(path: str | Path) -> list[ExportTraceServiceRequest]:
    """Parse an OTLP JSON lines file (as :func:`otlp_json` writes) back into protobuf.

    A line that is not an OTLP traces request is a ``ValueError`` naming the file and line.
    """
    requests = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                data = _b64_ids(json.loads(line))
                requests.append(json_format.ParseDict(data, ExportTraceServiceRequest()))
            except (ValueError, json_format.ParseError) as exc:
                raise ValueError(
                    f"{path}, line {number}: not an OTLP JSON traces request ({exc})"
                ) from exc
    return requests
