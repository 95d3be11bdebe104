"""One write transaction per integration call: create the stream if missing, then append.

The integrations write to a stream that may not exist yet (a LangGraph thread's first
checkpoint, an Agents SDK session's first items). Creating it with its own call and then
appending would be two commits - two durable flushes - for the first write, and a missing
stream discovered by a failed append would cost a third. :func:`append_plan` builds one write
plan that does both in the same transaction: the append, and only when the stream is missing,
the creation (its plan: ``ensure_stream``'s or ``create_session``'s) followed by the append.
:func:`commit` and :func:`acommit` hand that plan to the store's group committer, as the
store's own write methods do, so it shares a commit with its neighbours.

This is the integrations' local form of create-on-first-append; once the store's
``append_to_stream`` creates missing streams itself, these plans become that call.

>>> import msgspec
>>> from eventlog import RunStore, event_type, stream_id_for
>>> @event_type("doc.noted")
... class Noted(msgspec.Struct, frozen=True):
...     text: str
>>> store = RunStore.in_memory()
>>> sid = stream_id_for("doc.notes", "n-1")
>>> create = store.core.plans.streams.create_stream(sid, "doc.notes", None, ensure=True)
>>> commits = store.core.committer.groups
>>> [r.seq for r in commit(store, append_plan(store, sid, [Noted("hi")], create=create))]
[1]
>>> store.core.committer.groups - commits, store.get_stream(sid).kind
(1, 'doc.notes')
>>> store.close()
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

from eventlog.engine.appends import AppendRequest
from eventlog.errors import StreamNotFound
from eventlog.model.events import AnyEvent
from eventlog.model.records import EventRecord
from eventlog.storage.kv import KVTxn
from eventlog.store.async_run_store import AsyncRunStore
from eventlog.store.plans.arguments import append_request
from eventlog.store.run_store import RunStore

__all__ = ["acommit", "append_plan", "commit", "both_stores"]

T = TypeVar("T")


def both_stores(store: object, who: str) -> tuple[RunStore, AsyncRunStore]:
    """``(sync, async)`` facades of ``store`` (a ``RunStore`` or ``AsyncRunStore``) for ``who``.

    Anything else is a ``TypeError`` that says how to open a store.
    """
    if isinstance(store, AsyncRunStore):
        return store.sync, store
    if isinstance(store, RunStore):
        return store, AsyncRunStore(store)
    raise TypeError(
        f"{who}(store): store must be an open eventlog RunStore or AsyncRunStore, got "
        f"{type(store).__name__}; open one with RunStore.open(path) or "
        "await AsyncRunStore.open(path)"
    )


def append_plan(
    store: RunStore,
    stream_id: UUID,
    events: Sequence[AnyEvent],
    *,
    create: Callable[[KVTxn], object],
    expected_seq: int | None = None,
    checked: bool = False,
) -> Callable[[KVTxn], list[EventRecord]]:
    """A write plan: append ``events`` to ``stream_id``, creating it first if it is missing.

    ``create`` is the creation's own plan, run in the same transaction only when the append
    finds no stream (the append checks the stream before it writes anything). ``checked``:
    the caller built every event from values it checked itself (types and sizes), so the
    store's msgpack round trip of the batch is skipped; otherwise the batch is checked as
    ``append_to_stream`` checks it, before anything is queued.
    """
    if checked:
        req = AppendRequest(stream_id, tuple(events), expected_seq, None)
    else:
        req = append_request(stream_id, events, expected_seq, None, "append_to_stream")
    append = store.core.engine.appends.append

    def work(txn: KVTxn) -> list[EventRecord]:
        try:
            return append(txn, req, datetime.now(UTC), kind="session_or_stream")
        except StreamNotFound:
            create(txn)
            return append(txn, req, datetime.now(UTC), kind="session_or_stream")

    return work


def commit(store: RunStore, plan: Callable[[KVTxn], T]) -> T:
    """Commit ``plan`` through the store's group committer; its result once committed."""
    return store.core.committer.submit(plan)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _Finishing(asyncio.Future[None]):
    """A future that a cancel leaves pending: the awaiting task is cancelled once it is done.

    ``Task.cancel()`` cancels the future its task awaits; when that refuses, the task is marked
    and the ``CancelledError`` is raised in it at its next step - here, once the commit is
    done. No extra task and no extra turn of the event loop.
    """

    def cancel(self, msg: Any | None = None) -> bool:
        return False


async def acommit(store: AsyncRunStore, plan: Callable[[KVTxn], T], *, finish: bool = False) -> T:
    """:func:`commit` for an ``AsyncRunStore``: awaited, never blocking the event loop.

    ``finish``: a caller cancelled while its write is queued waits until the write is done
    (committed or failed), then its ``CancelledError`` is raised - so "the call raised" and
    "the write happened" are never both unknown to it. Otherwise the cancel is raised at once
    and the queued write may still commit.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = _Finishing(loop=loop) if finish else loop.create_future()

    def notify() -> None:  # runs on the committing thread
        loop.call_soon_threadsafe(_wake, done)

    pending = store.core.committer.submit_nowait(plan, notify)
    await done
    return pending.outcome()
