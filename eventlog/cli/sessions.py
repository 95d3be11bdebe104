"""Commands about sessions: sessions, messages (the store loads when a command runs)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from eventlog.cli._common import (
    DEFAULT_DB,
    DbOption,
    JsonFlag,
    NlFlag,
    emit,
    fail_cleanly,
    open_store,
    resolve_session,
    to_builtins,
)

if TYPE_CHECKING:
    from eventlog.model.messages import Message

__all__ = ["register"]


def sessions(
    db: DbOption = DEFAULT_DB,
    limit: Annotated[int, typer.Option(min=0, help="At most this many sessions.")] = 20,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many sessions first.")] = 0,
    json_out: JsonFlag = False,
    nl: NlFlag = False,
) -> None:
    """List sessions, most recently updated first.

    Example: eventlog sessions --limit 5
    """
    with fail_cleanly(), open_store(db) as store:
        rows = []
        for s in store.list_sessions(limit=limit, offset=offset):
            row: dict[str, Any] = to_builtins(s)
            row["runs"] = store.count_runs(session_id=s.id)
            rows.append(row)
    emit(
        rows,
        json_out=json_out,
        nl=nl,
        columns=[
            ("session", lambda r: r["id"][:8]),
            ("title", lambda r: r["title"]),
            ("model", lambda r: r["model"]),
            ("runs", lambda r: str(r["runs"])),
            ("created", lambda r: r["created_at"][:19].replace("T", " ")),
            ("updated", lambda r: r["updated_at"][:19].replace("T", " ")),
        ],
    )


def _content(message: Message) -> str:
    from eventlog.model.messages import AssistantMessage, ImageUrlPart, JsonPart, TextPart

    parts = []
    for part in message.content:
        if isinstance(part, TextPart):
            parts.append(part.text)
        elif isinstance(part, JsonPart):
            parts.append(to_builtins(part.value).__repr__())
        elif isinstance(part, ImageUrlPart):
            parts.append(f"[image {part.url}]")
    if isinstance(message, AssistantMessage):
        parts += [f"→ {c.name}({c.arguments}) [{c.id}]" for c in message.tool_calls]
    return " ".join(p for p in parts if p)


def messages(
    session: Annotated[str, typer.Argument(help="Session id or a unique prefix.")],
    db: DbOption = DEFAULT_DB,
    after_seq: Annotated[int, typer.Option(min=0, help="Only messages after this seq.")] = 0,
    limit: Annotated[int | None, typer.Option(min=0, help="At most this many.")] = None,
    json_out: JsonFlag = False,
    nl: NlFlag = False,
) -> None:
    """A session's transcript, in order.

    Example: eventlog messages 9cb6 --nl
    """
    from eventlog.model.messages import ToolMessage

    with fail_cleanly(), open_store(db) as store:
        sid = resolve_session(store, session)
        found = store.list_messages(sid, after_seq=after_seq, limit=limit)
    rows = []
    for seq, message in enumerate(found, start=after_seq + 1):
        row: dict[str, Any] = {"seq": seq, **to_builtins(message)}
        row["_text"] = _content(message)
        row["_who"] = (
            f"tool {message.name} [{message.tool_call_id}]"
            if isinstance(message, ToolMessage)
            else row["role"]
        )
        rows.append(row)
    if json_out or nl:
        rows = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    emit(
        rows,
        json_out=json_out,
        nl=nl,
        columns=[
            ("seq", lambda r: str(r["seq"])),
            ("role", lambda r: r["_who"]),
            ("content", lambda r: r["_text"]),
        ],
    )


def register(app: typer.Typer) -> None:
    """Add the session commands to ``app``."""
    for fn in (sessions, messages):
        app.command()(fn)
