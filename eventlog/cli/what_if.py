"""``eventlog replay RUN --what-if SEQ=FILE.json`` (and ``--drop``, ``--insert-after``).

Renders what :func:`eventlog.tools.what_if.what_if` returns: the state the edited history
leads to, the fields that differ from the real one, the steps that differ. Nothing is
written and nothing runs again. The files are read here (size-capped) and checked by
:func:`eventlog.tools.what_if.events_from_json`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from eventlog.cli._common import die, fail_cleanly, open_store, resolve_run, to_builtins
from eventlog.cli.render import safe
from eventlog.cli.timeline import table_console

if TYPE_CHECKING:
    from eventlog.model.events import AnyEvent

__all__ = ["DropOption", "InsertOption", "WhatIfOption", "show_what_if"]

WhatIfOption = Annotated[
    list[str] | None,
    typer.Option(
        "--what-if",
        help="SEQ=FILE.json: fold as if event SEQ had been the file's event (repeatable).",
    ),
]
DropOption = Annotated[
    list[int] | None,
    typer.Option("--drop", min=1, help="Fold as if event SEQ had not happened (repeatable)."),
]
InsertOption = Annotated[
    list[str] | None,
    typer.Option(
        "--insert-after",
        help="SEQ=FILE.json: fold the file's events (one or a list) after SEQ (0: first).",
    ),
]


def _read_events(spec: str, option: str) -> tuple[int, list[AnyEvent]]:
    from eventlog.tools.what_if import MAX_EVENT_FILE_BYTES, events_from_json

    seq_text, sep, path = spec.partition("=")
    if not sep or not path or not seq_text.strip().isdigit():
        die(f"{option} {safe(spec)!r}: expected SEQ=FILE.json (SEQ an integer >= 0)", 2)
    try:
        with Path(path).open("rb") as f:
            data = f.read(MAX_EVENT_FILE_BYTES + 1)
    except OSError as exc:
        die(f"{option}: cannot read {safe(path)!r}: {safe(exc.strerror or str(exc))}", 2)
    return int(seq_text), events_from_json(data, path)


def show_what_if(
    db: str,
    run: str,
    to_seq: int | None,
    what_if: list[str],
    drop: list[int],
    insert_after: list[str],
    json_out: bool,
) -> None:
    """Print the what-if state, its changes and its steps (or all of it as JSON)."""
    from eventlog.tools.what_if import what_if as replay_what_if

    replace: dict[int, AnyEvent] = {}
    insert: dict[int, list[AnyEvent]] = {}
    with fail_cleanly():
        for spec in what_if:
            seq, events = _read_events(spec, "--what-if")
            if len(events) != 1 or seq in replace:
                die(f"--what-if {safe(spec)!r}: one event per seq, and each seq once", 2)
            replace[seq] = events[0]
        for spec in insert_after:
            seq, events = _read_events(spec, "--insert-after")
            insert.setdefault(seq, []).extend(events)
        with open_store(db) as store:
            rid = resolve_run(store, run)
            result = replay_what_if(
                store, rid, to_seq=to_seq, replace=replace, drop=drop, insert=insert
            )
    if json_out:
        typer.echo(json.dumps(to_builtins(result), indent=2))
        return
    out = table_console()
    out.print(f"what-if of run {result.run_id} up to seq {result.to_seq} (nothing was written)")
    state = to_builtins(result.state)
    for name, value in state.items():
        out.print(f"  {name:<18} {_short(value, 100)}")
    if not result.changes:
        out.print("same state as the real run")
    else:
        out.print("changes (real -> what-if)")
        for c in result.changes:
            out.print(f"  {safe(c.field):<26} {_short(c.old, 45)} -> {_short(c.new, 60)}")
    if result.diverges_at is None:
        out.print("same steps as the real run")
        return
    out.print("steps that differ (- real, + what-if)")
    for hunk in result.hunks:
        if hunk.op == "equal":
            continue
        for x in hunk.a:
            out.print(f"- {safe(x.label):<44} seq {x.first_seq}")
        for y in hunk.b:
            out.print(f"+ {safe(y.label):<44} seq {y.first_seq} (renumbered)")


def _short(value: Any, width: int) -> str:
    text = safe(json.dumps(value, ensure_ascii=False, default=str))
    return text if len(text) <= width else text[: width - 1] + "…"
