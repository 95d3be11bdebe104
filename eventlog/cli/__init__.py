"""The ``eventlog`` command: a thin layer over the library (typer + rich).

Every command opens the store (read-only unless it writes), calls one or two public library
functions and prints the result as a table, ``--json`` or ``--nl``. Library errors become
``error: …`` on stderr with exit code 1; usage errors exit 2. Logs go to stderr, and only
with ``-v`` (the PostgreSQL driver's and pool's too). A reader that goes away (``| head``)
ends the command quietly with exit code 0. ``--db`` is accepted before the command
(``eventlog --db X runs``) as after it.

The command modules import the store, rich and the rest when a command runs: ``eventlog
--help`` loads typer and the command signatures only (benchmarks/startup.py measures it).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from eventlog.cli import (
    admin,
    artifacts,
    compact,
    embeddings,
    inspect,
    lineage,
    otel,
    retention,
    runs,
    sessions,
    stores,
    story,
    viewer,
)

__all__ = ["app", "main"]


class _Commands(TyperGroup):
    """The command group; a reader that goes away (``| head -1``) ends a command quietly."""

    def invoke(self, ctx: Any) -> Any:  # (typer's vendored click.Context)
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # not an error: the reader had enough. Point stdout at /dev/null so that the
            # interpreter's last flush does not fail again, and exit 0.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
            raise typer.Exit(0) from None


app = typer.Typer(
    cls=_Commands,
    help="Debug and inspect agent runs stored by eventlog. Every command takes --db PATH "
    "or --db postgresql://... (or EVENTLOG_DB; default ./data).",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _configure_logging(verbose: bool) -> None:
    level = logging.INFO if verbose else logging.WARNING
    # the standard-library level decides what is printed: the library logs through structlog
    # over stdlib loggers (eventlog.log), loaded by the first line that passes this level
    logging.basicConfig(stream=sys.stderr, level=level, format="%(message)s", force=True)
    # the pool logs every failed connection attempt at WARNING; the error says it once
    logging.getLogger("psycopg").setLevel(logging.NOTSET if verbose else logging.CRITICAL)
    if verbose:  # only then: importing structlog costs more than most commands (rich, asyncio)
        import structlog

        structlog.configure(
            wrapper_class=structlog.make_filtering_bound_logger(level),
            logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        )


def _print_version(value: bool) -> None:
    if value:
        from eventlog.cli.version import version_report

        typer.echo(version_report())
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log to stderr.")] = False,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="The store for the command (as the command's own --db, which wins): "
            "eventlog --db ./data runs.",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version, store formats and library versions, and exit.",
        ),
    ] = False,
) -> None:
    _configure_logging(verbose)
    if db is not None:  # every command's --db reads EVENTLOG_DB when it is not given
        os.environ["EVENTLOG_DB"] = db


runs.register(app)
story.register(app)
inspect.register(app)
sessions.register(app)
artifacts.register(app)
admin.register(app)
stores.register(app)
otel.register(app)
compact.register(app)
viewer.register(app)
retention.register(app)
lineage.register(app)
embeddings.register(app)


def main() -> None:
    """Entry point of the ``eventlog`` console script."""
    app()
