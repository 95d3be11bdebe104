"""Plans of the operations on streams of other kinds than runs and sessions.

A LangGraph thread or an Agents SDK session is a stream too: it gets the same gap-free seq,
dense commit-ordered positions, ``expected_seq`` checks and durable ``event_ids`` idempotency
as a run, its events appear in ``read_log``, subscriptions and projectors, and it is listed
by kind and deleted (events, positions, idempotency keys and views) in one transaction.

>>> import msgspec, eventlog
>>> @eventlog.event_type("doc.counted")
... class Counted(msgspec.Struct, frozen=True):
...     n: int
>>> store = eventlog.RunStore.in_memory()
>>> sid = eventlog.stream_id_for("doc.counter", "clicks")   # a stable id for a name
>>> _ = store.ensure_stream(sid, kind="doc.counter", metadata={"owner": "docs"})
>>> [r.seq for r in store.append_to_stream(sid, [Counted(1), Counted(2)], expected_seq=0)]
[1, 2]
>>> [r.event.n for r in store.read_stream(sid, after_seq=1)]
[2]
>>> [s.metadata for s in store.list_streams("doc.counter")]
[{'owner': 'docs'}]
>>> store.delete_stream(sid), store.get_stream(sid)
(True, None)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TypeVar
from uuid import UUID, uuid4

import msgspec

from eventlog.engine.core import Engine
from eventlog.errors import AlreadyExistsError
from eventlog.model.artifacts import ARTIFACT_KIND
from eventlog.model.events import AnyEvent
from eventlog.model.records import EventRecord, StreamRecord, check_kind
from eventlog.model.validation import check_fields, check_seq, metadata, uuid_of
from eventlog.storage.kv import KVTxn
from eventlog.store.plans.arguments import append_request
from eventlog.store.plans.events import events_of

__all__ = ["StreamPlans"]

V = TypeVar("V", bound=msgspec.Struct)


class StreamPlans:
    """Each stream operation's input checks and its work inside one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- writes ----------------------------------------------------------------------------
    def create_stream(
        self,
        stream_id: UUID | str | None,
        kind: str,
        meta: Mapping[str, object] | None,
        *,
        ensure: bool,
    ) -> Callable[[KVTxn], StreamRecord]:
        """``create_stream`` (or with ``ensure``, ``ensure_stream``: an existing one as it is)."""
        if ensure and stream_id is None:
            raise TypeError("ensure_stream needs a stream_id (see eventlog.stream_id_for)")
        sid = uuid4() if stream_id is None else uuid_of(stream_id, "stream_id")
        now = datetime.now(UTC)
        record = check_fields(
            StreamRecord(sid, check_kind(kind), metadata(meta, "metadata"), now, now),
            "create_stream",
        )
        streams = self.engine.streams

        def work(txn: KVTxn) -> StreamRecord:
            if ensure:
                found = streams.get_stream(txn, sid)
                if found is not None:
                    if found.kind != record.kind:
                        raise AlreadyExistsError(
                            f"stream {sid} exists with kind {found.kind!r}, not "
                            f"{record.kind!r}; use another id (stream_id_for(kind, name) "
                            "gives different ids per kind)"
                        )
                    return found
            return streams.create_stream(txn, record)

        return work

    def append_to_stream(
        self,
        stream_id: UUID | str,
        events: Sequence[AnyEvent],
        expected_seq: int | None,
        event_ids: Sequence[UUID | str | None] | None,
        kind: str | None = None,
        meta: Mapping[str, object] | None = None,
    ) -> Callable[[KVTxn], list[EventRecord]]:
        """``append_to_stream``: a batch to a stream of another kind or a session's stream.

        With a stream ``kind`` and ``expected_seq=0``, a missing stream is created first, in
        the same transaction (see :class:`~eventlog.engine.appends.AppendRequest`).
        """
        sid = uuid_of(stream_id, "stream_id")
        if kind == "run":
            raise ValueError(
                "append_to_stream does not append to runs (they have their status rules): use "
                "append_events, or append_many with AppendRequest(..., kind='run')"
            )
        req = append_request(sid, events, expected_seq, event_ids, "append_to_stream", kind, meta)
        append = self.engine.appends.append
        return lambda txn: append(txn, req, datetime.now(UTC), kind="session_or_stream")

    def delete_stream(self, stream_id: UUID | str) -> Callable[[KVTxn], bool]:
        """``delete_stream``: the stream with its events and views (True if it existed)."""
        sid = uuid_of(stream_id, "stream_id")
        streams = self.engine.streams

        def work(txn: KVTxn) -> bool:
            record = streams.stream_record(txn, sid)
            if record is not None and record.kind == ARTIFACT_KIND:
                raise ValueError(
                    f"stream {sid} holds a session's artifacts: delete them with "
                    "store.artifacts.delete(id) or store.delete_session(session_id), which "
                    "also remove their blobs"
                )
            return streams.delete_stream(txn, sid)

        return work

    # -- reads -----------------------------------------------------------------------------
    def get_stream(self, stream_id: UUID | str) -> Callable[[KVTxn], StreamRecord | None]:
        """``get_stream``: the record with ``updated_at`` = its last event's time, or None."""
        sid = uuid_of(stream_id, "stream_id")
        streams = self.engine.streams
        return lambda txn: streams.get_stream(txn, sid)

    def read_stream(
        self,
        stream_id: UUID | str,
        after_seq: int,
        to_seq: int | None,
        limit: int | None,
        reverse: bool,
    ) -> Callable[[KVTxn], list[EventRecord]]:
        """``read_stream``: any stream's events, the first ones or (``reverse``) the last ones."""
        sid = uuid_of(stream_id, "stream_id")
        return events_of(self.engine, sid, "any", after_seq, to_seq, limit, reverse)

    def read_stream_view(
        self,
        stream_id: UUID | str,
        view: type[V],
        after_seq: int,
        to_seq: int | None,
        limit: int | None,
        reverse: bool,
    ) -> Callable[[KVTxn], list[tuple[int, str, V]]]:
        """``read_stream_view``: ``(seq, stored type, payload as view)`` of a stream's events."""
        sid = uuid_of(stream_id, "stream_id")
        if not (isinstance(view, type) and issubclass(view, msgspec.Struct)):
            raise TypeError(f"view must be a msgspec.Struct subclass, got {view!r}")
        after = check_seq(after_seq, "after_seq") or 0
        to = check_seq(to_seq, "to_seq")
        lim = check_seq(limit, "limit")
        back = bool(reverse)
        reads = self.engine.reads
        return lambda txn: reads.view_events(
            txn, sid, view, after_seq=after, to_seq=to, limit=lim, reverse=back
        )

    def list_streams(
        self, kind: str, limit: int, offset: int
    ) -> Callable[[KVTxn], list[StreamRecord]]:
        """``list_streams``: streams of ``kind`` in created order, a page of them."""
        check_kind(kind)
        lim = check_seq(limit, "limit")
        off = check_seq(offset, "offset") or 0
        count = 100 if lim is None else lim
        streams = self.engine.streams
        return lambda txn: streams.list_streams(txn, kind, count, off)

    def list_stream_kinds(self) -> Callable[[KVTxn], list[str]]:
        """``list_stream_kinds``: the kinds that have streams, sorted (one seek per kind)."""
        return self.engine.streams.list_kinds
