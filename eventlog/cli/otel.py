"""``eventlog otel export`` and ``eventlog otel follow``: runs as OpenTelemetry GenAI traces.

Both need the ``[otel]`` extra (``pip install 'agent-eventlog[otel]'``); without it they say
so. The spans follow the GenAI semantic conventions version the library pins
(:data:`eventlog.integrations.otel.SEMCONV_VERSION`); their ids derive from (run id, seq), so
exporting a run again sends the same spans.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import typer

from eventlog.cli._common import (
    DEFAULT_DB,
    DbOption,
    die,
    echo,
    fail_cleanly,
    open_store,
    resolve_run,
    resolve_session,
    write_lines_atomically,
)

if TYPE_CHECKING:
    from eventlog.store.run_store import RunStore

__all__ = ["otel_app"]

otel_app = typer.Typer(
    help="Export runs as OpenTelemetry GenAI traces (OTLP/HTTP or an OTLP JSON file).",
    no_args_is_help=True,
    rich_markup_mode=None,
)

EndpointOption = Annotated[
    str | None,
    typer.Option(
        "--endpoint",
        help="The receiver's OTLP/HTTP address (http://localhost:4318; /v1/traces is added).",
        show_default=False,
    ),
]
ContentFlag = Annotated[
    bool,
    typer.Option(
        "--include-content",
        help="Add tool arguments and results and model text to the spans (opt-in: sensitive).",
    ),
]
ServiceOption = Annotated[
    str, typer.Option("--service-name", help="The spans' service.name resource attribute.")
]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", help="Seconds to wait for the receiver per request.")
]


def _need_extra() -> None:
    try:
        import opentelemetry.sdk  # noqa: F401
    except ImportError:
        die("eventlog otel needs the OpenTelemetry packages: pip install 'agent-eventlog[otel]'")


def _chosen_runs(
    store: RunStore, runs: list[str], session: str | None, since: str | None
) -> Iterator[UUID]:
    """The runs named, then the session's runs / the runs created since, oldest first."""
    from eventlog.tools.timespec import parse_time

    seen: set[UUID] = set()
    for prefix in runs:
        rid = resolve_run(store, prefix)
        if rid not in seen:
            seen.add(rid)
            yield rid
    if session is None and since is None:
        return
    after = None if since is None else parse_time(since, option="--since")
    if session is not None:
        records = store.list_runs(resolve_session(store, session))
    else:  # newest first from the status index, until older than --since
        records, offset = [], 0
        while True:
            page = store.list_runs_filtered(limit=500, offset=offset)
            records.extend(r for r in page if after is None or r.created_at >= after)
            if len(page) < 500 or (after is not None and page[-1].created_at < after):
                break
            offset += len(page)
        records.reverse()
    for record in records:
        if (after is None or record.created_at >= after) and record.id not in seen:
            seen.add(record.id)
            yield record.id


@otel_app.command("export")
def export(
    runs: Annotated[
        list[str] | None, typer.Argument(help="Run ids or unique prefixes.", show_default=False)
    ] = None,
    session: Annotated[
        str | None, typer.Option("--session", help="Every run of this session.")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Runs created since: 2h, 7d, or an ISO date/time."),
    ] = None,
    endpoint: EndpointOption = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", help="Write OTLP JSON lines (one run per line) here instead."),
    ] = None,
    include_content: ContentFlag = False,
    service_name: ServiceOption = "eventlog",
    timeout: TimeoutOption = 10.0,
    db: DbOption = DEFAULT_DB,
) -> None:
    """Export runs as traces: to a receiver (--endpoint) or to an OTLP JSON file (--file).

    One trace per run: invoke_agent, chat {model} per model call, execute_tool {tool} per
    tool execution. Exporting a run again sends the same trace and span ids.

    Example: eventlog otel export 3f2a --session 9c1e --endpoint http://localhost:4318
    """
    if (endpoint is None) == (file is None):
        die("give exactly one of --endpoint URL or --file PATH", 2)
    if not runs and session is None and since is None:
        die("name the runs to export: RUN ids, --session S and/or --since T", 2)
    _need_extra()
    from eventlog.integrations.otel import default_resource, otlp_json, run_spans, send
    from eventlog.tools.story import load_run

    resource = default_resource(service_name)
    with fail_cleanly(), open_store(db) as store:
        if endpoint is not None:
            url = endpoint
            count = spans = 0
            for rid in _chosen_runs(store, runs or [], session, since):
                batch = run_spans(
                    *load_run(store, rid), include_content=include_content, resource=resource
                )
                send(batch, url, timeout=timeout)
                count, spans = count + 1, spans + len(batch)
            echo(f"exported {count} runs ({spans} spans) to {url}", err=True)
            return
        assert file is not None
        counts = [0, 0]

        def lines() -> Iterator[str]:
            for rid in _chosen_runs(store, runs or [], session, since):
                batch = run_spans(
                    *load_run(store, rid), include_content=include_content, resource=resource
                )
                counts[0] += 1
                counts[1] += len(batch)
                yield otlp_json(batch)

        if str(file) == "-":
            for line in lines():
                sys.stdout.write(line + "\n")
        else:
            write_lines_atomically(file, lines())
        echo(f"exported {counts[0]} runs ({counts[1]} spans) to {file}", err=True)


@otel_app.command("follow")
def follow(
    endpoint: EndpointOption = None,
    name: Annotated[
        str, typer.Option("--name", help="The persistent consumer's name (its position).")
    ] = "otel",
    include_content: ContentFlag = False,
    service_name: ServiceOption = "eventlog",
    timeout: TimeoutOption = 10.0,
    idle: Annotated[
        float | None,
        typer.Option("--idle", help="Stop after this many idle seconds (default: never)."),
    ] = None,
    retries: Annotated[
        int | None,
        typer.Option(
            "--retries",
            min=0,
            help="Give up (exit 1, the run not acknowledged) after this many failed retries "
            "of a run (default: retry forever, waiting up to 30 s between tries).",
            show_default=False,
        ),
    ] = None,
    db: DbOption = DEFAULT_DB,
) -> None:
    """Ship every run to the receiver as it finishes, as a persistent consumer.

    Its position is stored under --name: after a crash or a restart it resumes after the last
    run the receiver accepted (a run sent but not yet acknowledged is sent again with the
    same ids). While the receiver is down it retries with a growing wait (up to 30 s), forever
    unless --retries says how often.

    Example: eventlog otel follow --endpoint http://localhost:4318
    """
    if endpoint is None:
        die("give --endpoint URL (the receiver's OTLP/HTTP address)", 2)
    _need_extra()
    from eventlog.integrations.otel import default_resource, send
    from eventlog.integrations.otel import follow as follow_runs
    from eventlog.integrations.otel.export import traces_url

    with fail_cleanly():
        url = traces_url(endpoint)
    resource = default_resource(service_name)

    def shipped(run_id: UUID, spans: int) -> None:
        echo(f"exported run {run_id} ({spans} spans)", err=True)

    with fail_cleanly(), open_store(db, write=True) as store:
        try:
            count = follow_runs(
                store,
                lambda spans: send(spans, url, timeout=timeout),
                name=name,
                timeout=idle,
                include_content=include_content,
                resource=resource,
                retries=retries,
                on_run=shipped,
            )
        except KeyboardInterrupt:
            echo("stopped", err=True)
            return
    echo(f"exported {count} runs to {url}", err=True)


def register(app: typer.Typer) -> None:
    """Add the ``otel`` command group to ``app``."""
    app.add_typer(otel_app, name="otel")
