"""``export`` and ``import``: JSON Lines that prove they are whole, and imports that leave no trace.

``export -o FILE`` writes a temporary file beside ``FILE`` and renames it only once the last
line (the trailer: counts and SHA-256) is written and flushed to disk: an interrupted export
(Ctrl-C, SIGTERM, a damaged record) leaves ``FILE`` as it was. To stdout, the trailer alone
proves wholeness: ``import`` refuses a stream without one.

``import`` validates every line and the trailer before it opens (or creates) a store, then
writes everything in one transaction. When it fails, a store it created is removed again (a
new directory, or the files it made in an existing empty directory; a new PostgreSQL schema).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from eventlog.cli._common import (
    DEFAULT_DB,
    DbOption,
    die,
    echo,
    fail_cleanly,
    open_store,
    write_lines_atomically,
)
from eventlog.cli.timeline import resolve_stream
from eventlog.errors import CorruptRecordError, EventLogError

__all__ = ["export", "import_"]


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM: clean up as for Ctrl-C


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    try:
        previous = signal.signal(signal.SIGTERM, _terminated)
    except ValueError:  # not the main thread (a test calling the command in-process)
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _trailer_note(last: str) -> str:
    try:
        trailer = json.loads(last)
        counts = trailer["counts"]
        return (
            f"{counts['session']} sessions, {counts['run']} runs, {counts['stream']} streams, "
            f"{counts['event']} events; trailer sha256 {trailer['sha256'][:16]}…"
        )
    except (ValueError, KeyError, TypeError):
        return "no trailer"


def export(
    runs: Annotated[
        list[str] | None,
        typer.Argument(
            help="Runs, sessions or streams of any kind: ids, unique prefixes, or a stream's "
            "name (a LangGraph thread id, an Agents SDK session id)."
        ),
    ] = None,
    db: DbOption = DEFAULT_DB,
    all_: Annotated[bool, typer.Option("--all", help="Export the whole store.")] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write to this file, replaced only once the export is complete (default: stdout).",
        ),
    ] = None,
) -> None:
    """Export runs, sessions or streams (or --all: everything) as JSON Lines.

    A run brings its session's record; a session brings its messages (not its runs); a
    stream of another kind (a LangGraph thread, an Agents SDK session) brings its record.

    The last line is a trailer (counts per kind and the SHA-256 of every line before it), so
    `eventlog import` can tell a whole export from one cut short. With -o the file appears only
    when complete: an interrupted export leaves the previous file (or none).

    Example: eventlog export --all -o backup.jsonl
    """
    if bool(runs) == all_:
        die("give run ids or --all (not both)", 2)
    count = 0
    last = ""

    def counted(lines: Iterable[str]) -> Iterator[str]:
        nonlocal count, last
        for line in lines:
            yield line
            count += 1
            last = line

    where = "stdout" if output is None else str(output)
    with fail_cleanly(), _sigterm_interrupts(), open_store(db) as store:
        ids = None if all_ else [resolve_stream(store, r)[0] for r in runs or []]
        lines = counted(store.export_jsonl(ids))
        try:
            if output is None:
                write = sys.stdout.write
                for line in lines:
                    write(line + "\n")
                sys.stdout.flush()
                return
            write_lines_atomically(output, lines)
        except (CorruptRecordError, KeyboardInterrupt) as exc:
            why = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"stopped: {exc}"
            if output is None:
                die(
                    f"export {why} after {count} lines: the output to stdout is INCOMPLETE and "
                    "has no trailer, so `eventlog import` will refuse it",
                    130 if isinstance(exc, KeyboardInterrupt) else 1,
                )
            hint = "" if isinstance(exc, KeyboardInterrupt) else "; `eventlog verify` lists them"
            die(
                f"export {why} after {count} lines: nothing was written to {output} "
                f"(a file that was there is unchanged){hint}",
                130 if isinstance(exc, KeyboardInterrupt) else 1,
            )
    echo(f"exported {count} lines to {where} ({_trailer_note(last)})", err=True)


def _read(file: str) -> list[bytes]:
    if file == "-":
        return sys.stdin.buffer.read().splitlines()
    path = Path(file)
    if not path.is_file():
        die(f"file {file} not found (give a file from `eventlog export`, or - for stdin)")
    return path.read_bytes().splitlines()


class _Undo:
    """Remembers what existed before an import, to remove what a failed import created."""

    def __init__(self, db: str) -> None:
        from eventlog.storage.config import is_postgres_url

        self.db = db
        self.path = None if is_postgres_url(db) else Path(db)
        self.existed = self.path is not None and self.path.exists()
        self.had_store = self.path is not None and (self.path / "data.mdb").exists()
        self.entries = (
            set(os.listdir(self.path))
            if self.path is not None and self.path.is_dir()
            else set[str]()
        )
        self.schema_existed = self.path is None and _schema_exists(db)

    def __call__(self) -> None:
        """Remove the store the failed import created (never one that was there before)."""
        if self.path is None:
            if self.schema_existed is False:
                _drop_schema(self.db)
            return
        if self.had_store or not self.path.is_dir():
            return
        if not self.existed:
            shutil.rmtree(self.path, ignore_errors=True)
            return
        for name in set(os.listdir(self.path)) - self.entries:  # keep the directory as it was
            made = self.path / name
            if made.is_dir():
                shutil.rmtree(made, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    made.unlink()


def _schema_exists(db: str) -> bool | None:
    """Whether the URL's schema exists (None: cannot tell - then nothing is ever dropped)."""
    try:
        from eventlog.storage.postgres.schema import schema_exists

        return schema_exists(db)
    except (ImportError, EventLogError):  # the import itself reports the real error
        return None


def _drop_schema(db: str) -> None:
    with contextlib.suppress(ImportError, EventLogError):
        from eventlog.storage.postgres.schema import drop_store_schema

        drop_store_schema(db)


def import_(
    file: Annotated[
        str, typer.Argument(help="A JSON Lines file from `eventlog export`, or - for stdin.")
    ],
    db: DbOption = DEFAULT_DB,
    allow_untrailed: Annotated[
        bool,
        typer.Option(
            "--allow-untrailed",
            help="Import a file without a trailer (an export written before trailers "
            "existed). A trailer that is there is still checked.",
        ),
    ] = False,
) -> None:
    """Import a JSON Lines export: every line and the trailer are checked, then all or nothing.

    A file without its trailer (cut short) or whose trailer does not match is refused, and a
    failed import leaves no store behind.

    Example: eventlog export --all --db ./data | eventlog import - --db ./restored
    """
    from eventlog.tools.jsonl import parse_lines

    with fail_cleanly():
        lines = _read(file)
        # every line and the trailer are checked before a store is opened (or created)
        parse_lines(lines, require_trailer=not allow_untrailed)
        undo = _Undo(db)
        try:
            with open_store(db, write=True, create=True) as store:
                result = store.import_jsonl(lines, require_trailer=not allow_untrailed)
        except BaseException:
            undo()
            raise
    streams = f", {result.streams} streams" if result.streams else ""
    echo(
        f"imported {result.sessions} sessions, {result.runs} runs{streams}, "
        f"{result.events} events into {db}"
    )
