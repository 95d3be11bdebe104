"""What every command shares: the store option, output modes, id prefixes, clean errors.

Every byte a command prints for a person goes through :func:`eventlog.cli.render.safe`: the
table cells and title of :func:`emit`, every line of :func:`console`'s ``print``, :func:`echo`,
:func:`summary` and the messages of :func:`die`. Stored text (model and tool output, titles,
metadata) cannot steer the terminal. ``--json``/``--nl`` output is JSON with every non-ASCII
and control character escaped by the encoder, so it parses back to the exact stored strings.

The store, msgspec and rich load when a command first uses them (not at import): typer builds
``eventlog --help`` from the command functions' signatures alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn
from uuid import UUID

import typer

from eventlog.cli.render import safe
from eventlog.errors import EventLogError

if TYPE_CHECKING:
    from rich.console import Console

    from eventlog.model.records import EventRecord
    from eventlog.store.run_store import RunStore

__all__ = [
    "DEFAULT_DB",
    "DbOption",
    "JsonFlag",
    "NlFlag",
    "console",
    "die",
    "echo",
    "emit",
    "event_dict",
    "fail_cleanly",
    "open_store",
    "resolve_run",
    "resolve_session",
    "summary",
    "write_lines_atomically",
]

#: Where commands look for the store when neither --db nor EVENTLOG_DB says.
DEFAULT_DB = "./data"

DbOption = Annotated[
    str,
    typer.Option(
        "--db",
        envvar="EVENTLOG_DB",
        help="Store directory, or a PostgreSQL URL postgresql://user@host/db[?schema=NAME] "
        "(or set EVENTLOG_DB).",
        show_default=True,
    ),
]


JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
NlFlag = Annotated[bool, typer.Option("--nl", help="Print JSON Lines (one object per line).")]


def console() -> Console:
    """A console for data on stdout: rich when a terminal, plain (no color) when piped.

    Its ``print`` passes every ``str`` through :func:`safe` (newlines kept): a line that
    interpolates stored text cannot carry an escape sequence to the terminal. Rich renderables
    (tables) must be built from safe text: :func:`emit` does it.
    """
    from rich.console import Console

    class SafeConsole(Console):
        def print(self, *objects: Any, **kwargs: Any) -> None:
            cleaned = [safe(o, multiline=True) if isinstance(o, str) else o for o in objects]
            super().print(*cleaned, **kwargs)

    # markup=False: stored text ("[1]", "[/INST]", titles, metadata) is printed as it is
    if sys.stdout.isatty():
        return SafeConsole(markup=False, highlight=False)
    return SafeConsole(width=200, no_color=True, color_system=None, highlight=False, markup=False)


def echo(text: str, *, err: bool = False) -> None:
    """Print a line of plain text made terminal-safe (:func:`safe`, newlines kept)."""
    typer.echo(safe(text, multiline=True), err=err)


def die(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr (made terminal-safe) and exit."""
    echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def fail_cleanly() -> Iterator[None]:
    """Turn library errors into ``error: …`` on stderr with exit code 1 (no traceback)."""
    try:
        yield
    except BrokenPipeError:
        raise  # the reader went away: main() exits quietly
    except EventLogError as exc:  # ImportFileError included
        die(str(exc))
    except RecursionError:  # a value stored before MAX_NESTING_DEPTH existed
        die(
            "a stored value is nested too deep to be shown (it was stored before eventlog "
            "checked MAX_NESTING_DEPTH); export the other runs, or delete this one"
        )
    except KeyError as exc:
        die(str(exc.args[0]) if exc.args else "not found")
    except (ValueError, TypeError, OSError) as exc:
        die(str(exc))


def open_store(db: str, *, write: bool = False, create: bool = False) -> RunStore:
    """Open the store: read-only unless ``write``; never create one unless ``create``."""
    from eventlog.store.run_store import RunStore

    if write:
        return RunStore.open(db, create=create)
    return RunStore.open(db, readonly=True)


def _resolve(kind: str, found: Sequence[UUID], prefix: str) -> UUID:
    if not found:
        die(f"{kind} {prefix} not found")
    if len(found) > 1:
        listed = ", ".join(str(u) for u in found[:10])
        more = " …" if len(found) > 10 else ""
        die(f"{kind} prefix {prefix} is ambiguous: it matches {listed}{more}; give more digits")
    return found[0]


def resolve_run(store: RunStore, prefix: str) -> UUID:
    """The run whose id starts with ``prefix`` (exit 1 when none or several)."""
    try:
        found = store.find_runs(prefix, limit=11)
    except ValueError as exc:
        die(str(exc))
    return _resolve("run", found, prefix)


def resolve_session(store: RunStore, prefix: str) -> UUID:
    """The session whose id starts with ``prefix`` (exit 1 when none or several)."""
    try:
        found = store.find_sessions(prefix, limit=11)
    except ValueError as exc:
        die(str(exc))
    return _resolve("session", found, prefix)


def to_builtins(obj: Any) -> Any:
    """JSON-ready builtins with the library's field names."""
    import msgspec

    return msgspec.to_builtins(obj)


def event_dict(record: EventRecord, *, payload: bool = True) -> dict[str, Any]:
    """An event as a JSON object: run_id, seq, position, type, recorded_at, event_id, payload."""
    from eventlog.model.events import RawEvent

    out: dict[str, Any] = {
        "run_id": str(record.run_id),
        "seq": record.seq,
        "position": record.position,
        "type": record.type,
        "recorded_at": to_builtins(record.recorded_at),
        "event_id": None if record.event_id is None else str(record.event_id),
    }
    if payload:
        event = record.event
        out["payload"] = event.data if isinstance(event, RawEvent) else to_builtins(event)
    return out


def summary(record: EventRecord, width: int = 90) -> str:
    """A one-line summary of an event's payload, terminal-safe (:func:`safe`)."""
    from eventlog.model.events import RawEvent

    event = record.event
    data = event.data if isinstance(event, RawEvent) else to_builtins(event)
    parts = []
    for key, value in data.items():
        if key in ("type", "timestamp"):
            continue
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        parts.append(f"{key}={text!r}" if isinstance(value, str) else f"{key}={text}")
    line = safe(" ".join(parts))
    return line if len(line) <= width else line[: width - 1] + "…"


def age(ts: datetime | None) -> str:
    """How long ago ``ts`` was, short (``42s``, ``3m``, ``5h``, ``2d``)."""
    if ts is None:
        return ""
    seconds = max(0, int((datetime.now(UTC) - ts).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def when(ts: datetime | None) -> str:
    """A timestamp for tables (UTC, to the second)."""
    return "" if ts is None else ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def emit(
    rows: Sequence[dict[str, Any]],
    *,
    json_out: bool,
    nl: bool,
    columns: Sequence[tuple[str, Callable[[dict[str, Any]], str]]],
    title: str | None = None,
) -> None:
    """Print ``rows`` as one JSON document, JSON Lines, or a table built from ``columns``.

    JSON is exact (``ensure_ascii``: control, bidi and every non-ASCII character escaped);
    every table cell and the title go through :func:`safe`.
    """
    from rich.table import Table

    if json_out and nl:
        die("choose one of --json and --nl", 2)
    if json_out:
        typer.echo(json.dumps(list(rows), indent=2, default=str))
        return
    if nl:
        for row in rows:
            typer.echo(json.dumps(row, default=str))
        return
    table = Table(title=None if title is None else safe(title))
    for name, _ in columns:
        table.add_column(safe(name), overflow="fold")
    for row in rows:
        table.add_row(*(safe(fn(row)) for _, fn in columns))
    console().print(table)


def write_lines_atomically(output: Path, lines: Iterable[str]) -> str:
    """Write ``lines`` to a temporary file beside ``output``, then rename it into place.

    The file appears whole or not at all (flushed and fsynced before the rename; an
    interruption removes the temporary file). Returns the last line written.
    """
    import tempfile

    target = output.resolve()
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    last = ""
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            for line in lines:
                fh.write(line)
                fh.write("\n")
                last = line
            fh.flush()
            os.fsync(fh.fileno())
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # what open() would have made, not mkstemp's 0600
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return last
