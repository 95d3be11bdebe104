"""``eventlog embeddings``: how many embeddings a store holds, their dimension, the index state."""

from __future__ import annotations

import json

import typer

from eventlog.cli._common import DEFAULT_DB, DbOption, JsonFlag, console, fail_cleanly, open_store

__all__ = ["register"]


def embeddings(db: DbOption = DEFAULT_DB, json_out: JsonFlag = False) -> None:
    """Embeddings: count, dimension, search index kind and whether it is up to date.

    An LMDB store of 5,000 embeddings or more searches an approximate index saved beside
    the store with the log position it reflects; a search catches it up from there. Smaller
    stores and the other backends search exactly (an index built in memory).

    Example: eventlog embeddings --db ./data --json
    """
    with fail_cleanly(), open_store(db) as store:
        status = dict(store.embeddings.status())
    if status["kind"] == "approximate":
        saved = status["file_position"]
        if saved is None:
            state = "no index file yet (built on the next search)"
        elif saved >= status["last_position"]:
            state = "up to date"
        else:
            state = f"behind: saved at position {saved} (caught up on the next search)"
    else:
        state = "exact search (in memory, built on the first search)"
    status["status"] = state
    if json_out:
        typer.echo(json.dumps(status, indent=2))
        return
    out = console()
    out.print(f"store      {db}")
    out.print(f"embeddings {status['count']}")
    dimension = status["dimension"]
    out.print(f"dimension  {'not set' if dimension is None else dimension}")
    out.print(f"index      {status['kind']}: {state}")
    out.print(f"log        last position {status['last_position']}")


def register(app: typer.Typer) -> None:
    """Add ``embeddings`` to ``app``."""
    app.command()(embeddings)
