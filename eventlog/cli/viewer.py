"""``eventlog ui``: the local web viewer (the ``ui`` extra: starlette, uvicorn, jinja2)."""

from __future__ import annotations

import importlib.util
from typing import Annotated

import typer

from eventlog.cli._common import DEFAULT_DB, DbOption, die, fail_cleanly

__all__ = ["register"]

_EXTRA = ("starlette", "uvicorn", "jinja2")


def ui(
    db: DbOption = DEFAULT_DB,
    host: Annotated[
        str, typer.Option(help="Address to listen on; other than loopback needs a token.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8765,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the viewer in the default browser.")
    ] = False,
    token: Annotated[
        str | None,
        typer.Option(
            help="Require this token on every request (default: EVENTLOG_UI_TOKEN; off "
            "loopback a fresh one is generated and printed).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve a read-only web viewer of the store: runs, a run's story, live updates, health.

    Pages: runs (filters, payload search, counts), a run (summary, timeline, tool-call tree,
    time-travel slider, live over Server-Sent Events), sessions with their transcript,
    streams of other kinds, store health. GET /events/<id> streams any run or stream as SSE.

    Example: eventlog ui --db ./data --open
    """
    missing = [name for name in _EXTRA if importlib.util.find_spec(name) is None]
    if missing:
        die(
            f"eventlog ui needs the 'ui' extra ({', '.join(missing)} not installed): "
            "pip install 'agent-eventlog[ui]'"
        )
    from eventlog.ui.server import serve

    with fail_cleanly():
        serve(db, host=host, port=port, open_browser=open_browser, token=token)


def register(app: typer.Typer) -> None:
    """Add the ``ui`` command to ``app``."""
    app.command()(ui)
