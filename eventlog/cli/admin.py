"""Store-wide commands: demo, export, import, verify, rebuild, stats, consumers.

Each command imports what it uses (the store, rich's tables and progress bars, the demo data)
when it runs, so that ``eventlog --help`` and the other commands do not load it.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from eventlog.cli import backup
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
    to_builtins,
)
from eventlog.cli.render import safe

__all__ = ["register"]


def demo(
    db: DbOption = DEFAULT_DB,
    runs: Annotated[int, typer.Option(min=1, max=1000, help="How many runs to write.")] = 6,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: random).")] = None,
) -> None:
    """Write realistic sample agent runs and print them with their folded state.

    The demo runs have fixed ids: running it again on the same store writes nothing new
    (it says so), and --runs 10 after 6 adds the 4 missing ones.

    Example: eventlog demo --db ./data --runs 6
    """
    from rich.table import Table

    from eventlog.cli.demo_data import demo_run_ids, write_demo_runs
    from eventlog.model.status import RunStatus

    out = console()
    with fail_cleanly(), open_store(db, write=True, create=True) as store:
        present = sum(store.get_run(rid) is not None for rid in demo_run_ids(runs))
        records = write_demo_runs(store, runs=runs, seed=seed)
        written = len(records) - present
        if present == 0:
            title = f"{written} demo runs written to {store.path}"
        elif written == 0:
            title = f"the {present} demo runs are already in {store.path}: nothing written"
        else:
            title = f"{written} demo runs written to {store.path} ({present} already there)"
        table = Table(title=safe(title))
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
                safe(f"{state.provider}/{state.model}"),
                str(state.event_count),
                str(state.iteration),
                str(state.total_usage.total_tokens),
                safe(state.last_finish or state.last_error or ""),
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


def verify(
    db: DbOption = DEFAULT_DB,
    json_out: JsonFlag = False,
    nl: NlFlag = False,
) -> None:
    """Check the store: seq gaps, bad records, views off the log, missing or bad blobs.

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
    out.print(f"artifacts  {result.artifacts} ({result.artifact_bytes:,} bytes)")
    if result.embedding_dimension is not None:
        out.print(f"embeddings {result.embeddings} (dimension {result.embedding_dimension})")
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
    app.command()(backup.export)
    app.command(name="import")(backup.import_)
    app.command()(verify)
    app.command()(rebuild)
    app.command()(stats)
    app.command()(consumers)
