"""Store-wide commands: demo, export, import, verify, rebuild, stats, consumers.

Each command imports what it uses (the store, rich's tables and progress bars, the demo data)
when it runs, so that ``eventlog --help`` and the other commands do not load it.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from eventlog.cli._common import (
    DEFAULT_DB,
    DbOption,
    JsonFlag,
    NlFlag,
    console,
    die,
    emit,
    fail_cleanly,
    open_store,
    resolve_run,
    to_builtins,
)
from eventlog.cli.render import safe
from eventlog.errors import CorruptRecordError

__all__ = ["register"]


def demo(
    db: DbOption = DEFAULT_DB,
    runs: Annotated[int, typer.Option(min=1, max=1000, help="How many runs to write.")] = 6,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: random).")] = None,
) -> None:
    """Write realistic sample agent runs and print them with their folded state.

    Example: eventlog demo --db ./data --runs 6
    """
    from rich.table import Table

    from eventlog.cli.demo_data import write_demo_runs
    from eventlog.model.status import RunStatus

    out = console()
    with fail_cleanly(), open_store(db, write=True, create=True) as store:
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
        out.print(table)
        counts = {s.value: store.count_runs(status=s) for s in RunStatus}
        out.print(
            "Runs in the store by status (status index): "
            + ", ".join(f"{k} {v}" for k, v in counts.items() if v)
        )
        sid = records[0].session_id
        stats = store.session_stats(sid)
        out.print(
            f"Session {sid}: {stats.total_runs} runs, {stats.tool_calls} tool calls "
            f"({stats.tool_failures} failed), {stats.total_usage.total_tokens} tokens, "
            f"{len(store.list_messages(sid))} messages"
        )
        failed = next((r for r in records if r.status == "failed"), records[0])
        out.print(f"\nTimeline of run {failed.id} (last 6 events):")
        for ev in store.list_events(failed.id)[-6:]:
            out.print(f"  seq {ev.seq:>3}  pos {ev.position:>6}  {ev.type}")
        for rec, state in zip(records, states, strict=True):
            if rec.status in ("failed", "cancelled"):
                out.print(f"\nFolded state of the {rec.status.value} run {rec.id}:")
                for field in state.__struct_fields__:
                    out.print(f"  {field:<12} {getattr(state, field)}")
        out.print(
            f"\nNext: eventlog runs --db {db}   ·   eventlog events {failed.id.hex[:8]} --db {db}"
        )


def export(
    runs: Annotated[list[str] | None, typer.Argument(help="Run ids or prefixes.")] = None,
    db: DbOption = DEFAULT_DB,
    all_: Annotated[bool, typer.Option("--all", help="Export the whole store.")] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (default: stdout).")
    ] = None,
) -> None:
    """Export runs (or --all: everything, messages included) as JSON Lines.

    Example: eventlog export --all -o backup.jsonl
    """
    if bool(runs) == all_:
        die("give run ids or --all (not both)", 2)
    count = 0
    with fail_cleanly(), open_store(db) as store:
        ids = None if all_ else [resolve_run(store, r) for r in runs or []]
        lines = store.export_jsonl(ids)
        try:
            if output is None:
                for line in lines:
                    sys.stdout.write(line + "\n")
                    count += 1
                sys.stdout.flush()
                return
            with output.open("w", encoding="utf-8") as fh:
                for line in lines:
                    fh.write(line + "\n")
                    count += 1
        except CorruptRecordError as exc:
            where = "" if output is None else f" to {output}"
            die(
                f"{exc}; the export is INCOMPLETE: it stopped at that record after {count} "
                f"lines{where} - `eventlog verify` lists every damaged record"
            )
        typer.echo(f"exported {count} lines to {output}", err=True)


def import_(
    file: Annotated[Path, typer.Argument(help="A JSON Lines file from `eventlog export`.")],
    db: DbOption = DEFAULT_DB,
) -> None:
    """Import a JSON Lines export: every line is validated, then all is written or nothing.

    Example: eventlog import backup.jsonl --db ./restored
    """
    from eventlog.storage.config import is_postgres_url
    from eventlog.tools.jsonl import parse_lines

    if not file.is_file():
        die(f"file {file} not found")
    path = None if is_postgres_url(db) else Path(db)
    new_store = path is not None and not (path / "data.mdb").exists()
    new_dir = path is not None and not path.exists()
    with fail_cleanly():
        lines = file.read_bytes().splitlines()
        parse_lines(lines)  # validate every line before a store is opened (or created)
        try:
            with open_store(db, write=True, create=True) as store:
                result = store.import_jsonl(lines)
        except BaseException:
            if new_store and new_dir and path is not None and path.is_dir():
                shutil.rmtree(path)  # a failed import into a new path leaves nothing behind
            raise
    streams = f", {result.streams} streams" if result.streams else ""
    typer.echo(
        f"imported {result.sessions} sessions, {result.runs} runs{streams}, "
        f"{result.events} events into {db}"
    )


def verify(
    db: DbOption = DEFAULT_DB,
    json_out: JsonFlag = False,
    nl: NlFlag = False,
) -> None:
    """Check the store: seq gaps, undecodable records, views that disagree with the log.

    Exit code 1 when anything is wrong. Example: eventlog verify --db ./data
    """
    with fail_cleanly(), open_store(db) as store:
        problems = store.verify()
    rows = [to_builtins(p) for p in problems]
    if json_out or nl:
        emit(rows, json_out=json_out, nl=nl, columns=[])
    elif not problems:
        typer.echo("ok: the log and every view agree")
    else:
        emit(
            rows,
            json_out=False,
            nl=False,
            columns=[
                ("kind", lambda r: r["kind"]),
                ("where", lambda r: r["where"]),
                ("detail", lambda r: r["detail"]),
            ],
            title=f"{len(problems)} problems",
        )
    if problems:
        raise typer.Exit(1)


def rebuild(
    db: DbOption = DEFAULT_DB,
    projector: Annotated[
        list[str] | None, typer.Option(help="Only this projector (repeatable).")
    ] = None,
) -> None:
    """Rebuild projections from the log, with a progress bar.

    Example: eventlog rebuild --projector status_index
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn

    with fail_cleanly(), open_store(db, write=True) as store:
        known = [p.name for p in store.projector_status()]
        unknown = sorted(set(projector or []) - set(known))
        if unknown:
            die(f"unknown projector {', '.join(unknown)}; the projectors are: {', '.join(known)}")
        total = max(1, store.last_position())
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            console=Console(stderr=True),
            transient=False,
        ) as progress:
            tasks: dict[str, Any] = {}

            def report(name: str, position: int, last: int) -> None:
                if name not in tasks:
                    tasks[name] = progress.add_task(name, total=max(last, 1))
                progress.update(tasks[name], completed=min(position, max(last, 1)))

            store.rebuild_projections(projector or None, progress=report)
        names = projector or [p.name for p in store.projector_status()]
    typer.echo(f"rebuilt {', '.join(names)} over {total} positions")


def stats(db: DbOption = DEFAULT_DB, json_out: JsonFlag = False) -> None:
    """Counts, store size, map size and use, projector checkpoints.

    Example: eventlog stats --json
    """
    from eventlog.storage.config import is_postgres_url

    with fail_cleanly(), open_store(db) as store:
        result = store.stats()
    data = to_builtins(result)
    if json_out:
        typer.echo(json.dumps(data, indent=2))
        return
    out = console()
    out.print(f"store      {db}")
    out.print(
        f"runs       {result.runs}  "
        + "  ".join(f"{k} {v}" for k, v in result.runs_by_status.items())
    )
    out.print(f"sessions   {result.sessions}")
    if result.streams_by_kind:
        out.print(
            f"streams    {sum(result.streams_by_kind.values())}  "
            + "  ".join(f"{safe(k)} {v}" for k, v in result.streams_by_kind.items())
        )
    out.print(f"events     {result.events} (last position {result.last_position})")
    if is_postgres_url(db):
        out.print(f"disk       {result.file_bytes:,} bytes in PostgreSQL tables (with indexes)")
    else:
        used = 100 * result.used_bytes / max(result.map_size, 1)
        out.print(
            f"disk       {result.file_bytes:,} bytes in data.mdb; map {result.map_size:,} "
            f"bytes, {result.used_bytes:,} used ({used:.1f}%)"
        )
    for p in result.projectors:
        state = "ready" if p["ready"] else "STALE (run eventlog rebuild)"
        out.print(
            f"projector  {p['name']:<16} v{p['version']}  checkpoint {p['checkpoint']}  {state}"
        )


def consumers(db: DbOption = DEFAULT_DB, json_out: JsonFlag = False, nl: NlFlag = False) -> None:
    """Persistent consumers (store.subscribe(name=...)): acknowledged position and lag.

    The lag is how many log positions the consumer is behind the last one.

    Example: eventlog consumers --json
    """
    with fail_cleanly(), open_store(db) as store:
        rows = [to_builtins(c) for c in store.consumers()]
    emit(
        rows,
        json_out=json_out,
        nl=nl,
        columns=[
            ("consumer", lambda r: r["name"]),
            ("position", lambda r: str(r["position"])),
            ("lag", lambda r: str(r["lag"])),
            ("updated", lambda r: r["updated_at"][:19].replace("T", " ")),
        ],
    )


def register(app: typer.Typer) -> None:
    """Add the store-wide commands to ``app``."""
    app.command()(demo)
    app.command()(export)
    app.command(name="import")(import_)
    app.command()(verify)
    app.command()(rebuild)
    app.command()(stats)
    app.command()(consumers)
