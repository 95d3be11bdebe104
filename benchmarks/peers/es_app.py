"""What a Python user would pick instead: the ``eventsourcing`` library on SQLite or PostgreSQL.

A run is an aggregate; each agent event is one aggregate event (``EventAppended``) carrying
the event's JSON-able fields; ``app.save(run)`` after each new event. The library's SQLite
persistence uses WAL with SQLite's default ``synchronous=FULL`` (durable). Reading a run
(its state, or a replay) is ``app.repository.get(run_id)``: the aggregate is rebuilt from its
stored events (no snapshots), which is how the library serves state.

:func:`open_pg_app` is the same application on the library's PostgreSQL persistence
(``PERSISTENCE_MODULE=eventsourcing.postgres``, its ``POSTGRES_*`` environment:
``PostgresDatastore`` + ``PostgresApplicationRecorder``) in a schema of its own. Its commits
are durable as the server's ``synchronous_commit=on`` makes them (the library sets nothing).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

__all__ = ["EsRun", "RunsApp", "open_app", "open_pg_app"]

_STATUS_OF = {
    "RunStarted": "session_loaded",
    "ModelStarted": "calling_model",
    "RunCompleted": "completed",
    "RunFailed": "failed",
    "RunCancelled": "cancelled",
}


class EsRun(Aggregate):
    """A run: provider, model, status, event count, token usage."""

    def __init__(self, provider: str, model: str) -> None:
        self.provider = provider
        self.model = model
        self.status = "pending"
        self.event_count = 0
        self.total_tokens = 0

    @event("EventAppended")
    def append_event(self, type: str, data: dict[str, Any]) -> None:
        """Fold one agent event into the run."""
        self.event_count += 1
        status = _STATUS_OF.get(type)
        if status is not None:
            self.status = status
        elif type == "UsageRecorded":
            self.total_tokens += int(data["usage"]["total_tokens"])


class RunsApp(Application[UUID]):
    """The application: nothing but the default repository."""


def open_app(path: str) -> RunsApp:
    """An application persisting to the SQLite file ``path``."""
    return RunsApp(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": path})


def open_pg_app(url: str, schema: str, *, pool_size: int = 5, create: bool = True) -> RunsApp:
    """The application on PostgreSQL at libpq ``url``, its tables in ``schema`` (must exist).

    ``create=False``: the tables exist already (processes opening the application at once
    would race creating them: "tuple concurrently updated").
    """
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    return RunsApp(
        env={
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": parts.path.lstrip("/") or "postgres",
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_SCHEMA": schema,
            "POSTGRES_POOL_SIZE": str(pool_size),
            "CREATE_TABLE": "yes" if create else "no",
        }
    )
