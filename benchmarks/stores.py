"""Opening each peer's store the same way in every workload, on the same seeded ids."""

from __future__ import annotations

import os
from collections.abc import Sequence
from uuid import UUID

from benchmarks.data import MODEL, PROVIDER
from eventlog import AppendRequest, RunStore
from eventlog.events import Event
from eventlog.storage.config import Durability

__all__ = [
    "create_runs",
    "fill_runs",
    "open_eventlog",
]


def open_eventlog(peer: str, workdir: str, durability: Durability) -> RunStore:
    """``eventlog`` → the LMDB store in ``workdir``; ``memory`` → ``RunStore.in_memory()``.

    ``eventlog-pg`` → the store on the benchmark's PostgreSQL server, in a schema of its own.
    """
    if peer == "memory":
        return RunStore.in_memory()
    if peer == "eventlog-pg":
        from benchmarks.pg import schema_for, store_url

        return RunStore.open(
            store_url(schema_for(os.path.join(workdir, "store"))), durability=durability
        )
    if peer != "eventlog":
        raise ValueError(f"not an eventlog peer: {peer}")
    return RunStore.open(os.path.join(workdir, "store"), durability=durability)


def create_runs(
    store: RunStore, run_ids: Sequence[UUID], session_ids: Sequence[UUID], per_session: int
) -> None:
    """Create the sessions, then the runs (``per_session`` runs in each session, in order)."""
    for sid in session_ids:
        store.create_session(session_id=sid)
    for i, rid in enumerate(run_ids):
        store.create_run(
            session_ids[i // per_session % len(session_ids)],
            provider=PROVIDER,
            model=MODEL,
            run_id=rid,
        )


def fill_runs(
    store: RunStore, run_ids: Sequence[UUID], events: Sequence[Event], *, per_call: int = 5000
) -> None:
    """Append ``events`` to every run, batching up to ``per_call`` events per transaction."""
    per_run = max(1, per_call // max(1, len(events)))
    if len(events) >= per_call:
        for rid in run_ids:
            for k in range(0, len(events), per_call):
                store.append_events(rid, events[k : k + per_call])
        return
    for k in range(0, len(run_ids), per_run):
        store.append_many([AppendRequest(rid, events) for rid in run_ids[k : k + per_run]])
