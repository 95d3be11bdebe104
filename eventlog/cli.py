"""The ``eventlog`` command: a thin layer over the library (typer + rich)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import structlog
import typer
from rich.console import Console
from rich.table import Table

from eventlog.demo import write_demo_runs
from eventlog.errors import EventLogError
from eventlog.status import RunStatus
from eventlog.store import RunStore

app = typer.Typer(
    help="Debug and inspect agent runs stored by eventlog.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

DbOption = Annotated[
    Path, typer.Option("--db", envvar="EVENTLOG_DB", help="Store directory.", show_default=True)
]


def _configure_logging(verbose: bool) -> None:
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(stream=sys.stderr, level=level, format="%(message)s", force=True)
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.INFO if verbose else logging.WARNING
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log to stderr.")] = False,
) -> None:
    _configure_logging(verbose)


@app.command()
def demo(
    db: DbOption = Path("./data"),
    runs: Annotated[int, typer.Option(min=1, max=1000, help="How many runs to write.")] = 6,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: random).")] = None,
) -> None:
    """Write realistic sample agent runs and print them with their folded state.

    Example: eventlog demo --db ./data --runs 6
    """
    console = Console() if sys.stdout.isatty() else Console(width=130)
    try:
        with RunStore.open(db) as store:
            records = write_demo_runs(store, runs=runs, seed=seed)
            table = Table(title=f"{len(records)} demo runs written to {store.path}")
            for col in ("run", "session", "status", "provider/model", "events", "iter", "tokens"):
                table.add_column(col, no_wrap=True)
            table.add_column("finish / error", overflow="ellipsis", no_wrap=True, max_width=30)
            states = []
            for rec in records:
                state = store.get_run_state(rec.id)
                assert state is not None
                states.append(state)
                table.add_row(
                    str(rec.id)[:8],
                    str(rec.session_id)[:8],
                    state.status.value,
                    f"{state.provider}/{state.model}",
                    str(state.event_count),
                    str(state.iteration),
                    str(state.total_usage.total_tokens),
                    state.last_finish or state.last_error or "",
                )
            console.print(table)
            counts = {s.value: store.count_runs(status=s) for s in RunStatus}
            console.print(
                "Runs in the store by status (status index): "
                + ", ".join(f"{k} {v}" for k, v in counts.items() if v),
                highlight=False,
            )
            sid = records[0].session_id
            stats = store.session_stats(sid)
            console.print(
                f"Session {sid}: {stats.total_runs} runs, {stats.tool_calls} tool calls "
                f"({stats.tool_failures} failed), {stats.total_usage.total_tokens} tokens, "
                f"{len(store.list_messages(sid))} messages",
                highlight=False,
            )
            failed = next((r for r in records if r.status == "failed"), records[0])
            console.print(f"\nTimeline of run {failed.id} (last 6 events):")
            events = store.list_events(failed.id)
            for ev in events[-6:]:
                console.print(f"  seq {ev.seq:>3}  pos {ev.position:>6}  {ev.type}")
            for rec, state in zip(records, states, strict=True):
                if rec.status in ("failed", "cancelled"):
                    console.print(f"\nFolded state of the {rec.status.value} run {rec.id}:")
                    for field in state.__struct_fields__:
                        console.print(f"  {field:<12} {getattr(state, field)}", highlight=False)
    except EventLogError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def main() -> None:
    """Entry point of the ``eventlog`` console script."""
    app()
