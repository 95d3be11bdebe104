"""The one internal plans API both facades call: each operation checked and built once.

A *write plan* is a ``Callable[[KVTxn], T]``: the method that builds it checks the arguments
(raising at once, in the caller's thread or task, before anything is queued) and returns the
work to do inside one write transaction. :class:`~eventlog.store.run_store.RunStore` hands it
to the group committer and waits; :class:`~eventlog.store.async_run_store.AsyncRunStore`
queues it and awaits it. A *read plan* has the same shape and runs in one read snapshot
(``backend.read(plan)``): inline, or in a reader thread for the async facade. The few
operations that are not one transaction (``get_run_state``'s point read, export, import,
statistics) are methods that do their reads themselves; the async facade runs them off the
loop when they may touch a server.

:class:`Plans` owns one object per topic; each takes the backend and/or engine it needs.
"""

from __future__ import annotations

from eventlog.engine.core import Engine
from eventlog.storage.kv import KVBackend
from eventlog.store.plans.embeddings import EmbeddingPlans
from eventlog.store.plans.events import EventPlans
from eventlog.store.plans.forks import ForkPlans
from eventlog.store.plans.history import HistoryPlans
from eventlog.store.plans.projections import ProjectionPlans, ProjectorStatus
from eventlog.store.plans.retention import RetentionPlans
from eventlog.store.plans.runs import RunPlans
from eventlog.store.plans.sessions import SessionPlans
from eventlog.store.plans.streams import StreamPlans
from eventlog.store.plans.tools import StoreStats, ToolPlans

__all__ = ["Plans", "ProjectorStatus", "StoreStats"]


class Plans:
    """Every operation's plan, by topic: ``sessions``, ``runs``, ``events``, ``streams``, ..."""

    def __init__(self, backend: KVBackend, engine: Engine) -> None:
        self.sessions = SessionPlans(backend, engine)
        self.runs = RunPlans(backend, engine)
        self.events = EventPlans(engine)
        self.streams = StreamPlans(engine)
        self.projections = ProjectionPlans(backend, engine)
        self.tools = ToolPlans(backend, engine, self.projections)
        self.history = HistoryPlans(engine)
        self.retention = RetentionPlans(engine)
        self.forks = ForkPlans(engine)
        self.embeddings = EmbeddingPlans(engine)
        # delete_session deletes the session's embeddings in the same transaction
        self.sessions.cascades.append(self.embeddings.cascade)
