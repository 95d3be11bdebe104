"""Commands about artifacts: ``artifacts`` (a session's list) and ``artifact`` (read one)."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import typer

from eventlog.cli._common import (
    DEFAULT_DB,
    DbOption,
    JsonFlag,
    NlFlag,
    die,
    emit,
    fail_cleanly,
    open_store,
    resolve_session,
    to_builtins,
)

__all__ = ["register"]


def artifacts(
    session: Annotated[str, typer.Argument(help="Session id or a unique prefix.")],
    db: DbOption = DEFAULT_DB,
    latest: Annotated[
        bool, typer.Option("--latest", help="Only the newest version of each name.")
    ] = False,
    json_out: JsonFlag = False,
    nl: NlFlag = False,
) -> None:
    """A session's artifacts, newest first (every version unless --latest).

    Example: eventlog artifacts 9cb6 --json
    """
    with fail_cleanly(), open_store(db) as store:
        sid = resolve_session(store, session)
        found = store.artifacts.list_by_session(sid, versions="latest" if latest else "all")
    rows: list[dict[str, Any]] = [to_builtins(a) for a in found]
    emit(
        rows,
        json_out=json_out,
        nl=nl,
        columns=[
            ("artifact", lambda r: r["id"]),
            ("name", lambda r: r["name"]),
            ("size", lambda r: f"{r['size']:,}"),
            ("sha256", lambda r: r["sha256"][:12]),
            ("type", lambda r: r["content_type"] or ""),
            ("created", lambda r: r["created_at"][:19].replace("T", " ")),
        ],
    )


def _copy(source: BinaryIO, out: BinaryIO) -> None:
    while chunk := source.read(1 << 20):
        out.write(chunk)


def artifact(
    artifact_id: Annotated[str, typer.Argument(help="The artifact's id (a UUID).")],
    output: Annotated[
        str,
        typer.Option("--output", "-o", help="Write the content to this file ('-': stdout)."),
    ],
    db: DbOption = DEFAULT_DB,
) -> None:
    """Write an artifact's content to a file (checked against its SHA-256).

    A damaged blob is an error and leaves no file behind. Example: eventlog artifact
    1c0e...-... -o report.md
    """
    from uuid import UUID

    try:
        aid = UUID(artifact_id)
    except ValueError:
        die(f"not an artifact id: {artifact_id!r}; list them with `eventlog artifacts SESSION`")
    with fail_cleanly(), open_store(db) as store, store.artifacts.open(aid) as source:
        if output == "-":
            _copy(source, sys.stdout.buffer)
            sys.stdout.buffer.flush()
            return
        target = Path(output)
        fd, temp = tempfile.mkstemp(prefix=".eventlog-", dir=target.parent or Path("."))
        try:
            with os.fdopen(fd, "wb") as out:
                _copy(source, out)
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise


def register(app: typer.Typer) -> None:
    """Add the artifact commands to ``app``."""
    for fn in (artifacts, artifact):
        app.command()(fn)
