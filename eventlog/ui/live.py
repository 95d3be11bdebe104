"""Server-Sent Events: any run's or stream's events as they are appended, by any process.

``GET /events/{stream_id}`` answers ``text/event-stream``. Each event is one SSE message
whose ``id`` is the event's seq and whose ``data`` is the event as JSON
(:func:`~eventlog.ui.views.event_json`). It first sends what is stored after the resume point,
then follows the log through the store's subscription (``store.subscribe``: inotify on LMDB
wakes it on another process's commit; no polling sleep). The resume point is the
``Last-Event-ID`` header (a browser's ``EventSource`` sends it when it reconnects), else the
``after`` query parameter, else 0 (everything).

No gap, no duplicate: the log's last position is read *before* the catch-up read, and the
subscription starts after it. Every event at or below that position was visible to the
catch-up read; every later one comes through the subscription; a seq already sent is skipped.
An idle stream gets a ``: keep-alive`` comment every :data:`KEEPALIVE` seconds.

Example (any client)::

    curl -N -H 'Last-Event-ID: 12' http://127.0.0.1:8765/events/3f2a...
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING
from uuid import UUID

from eventlog.errors import StoreClosedError
from eventlog.model.records import EventRecord
from eventlog.ui.views import event_json

if TYPE_CHECKING:
    from eventlog.store.run_store import RunStore

__all__ = ["KEEPALIVE", "format_event", "resume_point", "sse_events"]

#: Seconds between keep-alive comments on an idle stream.
KEEPALIVE = 15.0
_CATCH_UP = 500


def resume_point(last_event_id: str | None, after: str | None) -> int:
    """The seq to resume after: ``Last-Event-ID`` first, then ``?after=``; bad values are 0."""
    for value in (last_event_id, after):
        if value is not None and value.strip().isdigit():
            return int(value.strip())
    return 0


def format_event(record: EventRecord) -> bytes:
    """One SSE message: ``id: <seq>``, ``event: event``, the JSON on one ``data:`` line."""
    data = json.dumps(event_json(record), ensure_ascii=True, default=str)
    return f"id: {record.seq}\nevent: event\ndata: {data}\n\n".encode()


async def sse_events(store: RunStore, stream_id: UUID, after_seq: int) -> AsyncIterator[bytes]:
    """The SSE body: events of ``stream_id`` after ``after_seq``, then live ones, forever."""
    yield b"retry: 1000\n\n"
    position = await asyncio.to_thread(store.last_position)
    sent = after_seq
    while True:  # catch up from the stored events, in pages
        page = await asyncio.to_thread(
            store.read_stream, stream_id, after_seq=sent, limit=_CATCH_UP
        )
        for record in page:
            yield format_event(record)
            sent = record.seq
        if len(page) < _CATCH_UP:
            break
    while True:
        try:
            sub = store.subscribe(after_position=position, run_id=stream_id, timeout=KEEPALIVE)
        except StoreClosedError:  # the server is shutting down
            return
        try:
            async for record in sub:
                if record.seq > sent:
                    yield format_event(record)
                    sent = record.seq
            position = sub.position
        finally:
            sub.close()
        yield b": keep-alive\n\n"
