"""Streams of other kinds than runs and sessions: the :class:`StoreStreams` part of the facade.

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

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TypeVar
from uuid import UUID, uuid4

import msgspec

from eventlog.engine.core import Accepts, AppendRequest, Engine
from eventlog.errors import AlreadyExistsError
from eventlog.model.events import AnyEvent
from eventlog.model.records import (
    RESERVED_KINDS,
    EventRecord,
    StreamRecord,
    check_kind,
    stream_id_for,
)
from eventlog.model.validation import check_fields, check_seq, metadata, uuid_of
from eventlog.storage.kv import KVBackend, KVTxn

__all__ = ["RESERVED_KINDS", "StoreStreams", "check_kind", "stream_id_for"]

T = TypeVar("T")
V = TypeVar("V", bound=msgspec.Struct)


class StoreStreams:
    """``create_stream``, ``ensure_stream``, ``get_stream``, ``append_to_stream``, ..."""

    _backend: KVBackend
    _engine: Engine

    def _write(self, fn: Callable[[KVTxn], T]) -> T:
        raise NotImplementedError

    def _events_of(
        self,
        sid: UUID,
        kind: Accepts,
        after_seq: int,
        to_seq: int | None,
        limit: int | None,
        reverse: bool = False,
    ) -> list[EventRecord]:
        raise NotImplementedError

    def _request(
        self,
        rid: UUID,
        events: Iterable[AnyEvent],
        expected_seq: int | None,
        event_ids: Sequence[UUID | str | None] | None,
        where: str,
    ) -> AppendRequest:
        raise NotImplementedError

    def create_stream(
        self,
        stream_id: UUID | str | None = None,
        *,
        kind: str,
        metadata: Mapping[str, object] | None = None,
    ) -> StreamRecord:
        """Create a stream of ``kind`` (``AlreadyExistsError`` if the id is taken)."""
        return self._write(self._plan_create_stream(stream_id, kind, metadata, ensure=False))

    def ensure_stream(
        self,
        stream_id: UUID | str,
        *,
        kind: str,
        metadata: Mapping[str, object] | None = None,
    ) -> StreamRecord:
        """The stream ``stream_id``, created (with ``metadata``) if it does not exist yet.

        An existing stream is returned as it is (``metadata`` is not changed); one of another
        kind, or a run's or session's id, is an ``AlreadyExistsError``.
        """
        return self._write(self._plan_create_stream(stream_id, kind, metadata, ensure=True))

    def _plan_create_stream(
        self,
        stream_id: UUID | str | None,
        kind: str,
        meta: Mapping[str, object] | None,
        *,
        ensure: bool,
    ) -> Callable[[KVTxn], StreamRecord]:
        if ensure and stream_id is None:
            raise TypeError("ensure_stream needs a stream_id (see eventlog.stream_id_for)")
        sid = uuid4() if stream_id is None else uuid_of(stream_id, "stream_id")
        now = datetime.now(UTC)
        record = check_fields(
            StreamRecord(sid, check_kind(kind), metadata(meta, "metadata"), now, now),
            "create_stream",
        )
        engine = self._engine

        def work(txn: KVTxn) -> StreamRecord:
            if ensure:
                found = engine.get_stream(txn, sid)
                if found is not None:
                    if found.kind != record.kind:
                        raise AlreadyExistsError(
                            f"stream {sid} exists with kind {found.kind!r}, not "
                            f"{record.kind!r}; use another id (stream_id_for(kind, name) "
                            "gives different ids per kind)"
                        )
                    return found
            return engine.create_stream(txn, record)

        return work

    def get_stream(self, stream_id: UUID | str) -> StreamRecord | None:
        """The stream's record (``updated_at`` = its last event's time), or None."""
        sid = uuid_of(stream_id, "stream_id")
        return self._backend.read(lambda txn: self._engine.get_stream(txn, sid))

    def append_to_stream(
        self,
        stream_id: UUID | str,
        events: Sequence[AnyEvent],
        *,
        expected_seq: int | None = None,
        event_ids: Sequence[UUID | str | None] | None = None,
    ) -> list[EventRecord]:
        """Append a batch to a stream atomically (all or nothing), seq numbers consecutive.

        ``expected_seq=N``: the stream's last seq must be N, else ``ConcurrencyError`` and
        nothing is written. ``event_ids``: one UUID (or None) per event; an id already stored
        for the stream returns the stored record and writes nothing for it (safe retries).
        A session's id is accepted too (its stream may hold other events than messages, which
        ``list_messages`` skips); a run's id is a ``StreamNotFound`` that says to use
        ``append_event`` (runs have their status rules); an unknown id, ``StreamNotFound``.
        """
        return self._write(self._plan_append_to_stream(stream_id, events, expected_seq, event_ids))

    def _plan_append_to_stream(
        self,
        stream_id: UUID | str,
        events: Sequence[AnyEvent],
        expected_seq: int | None,
        event_ids: Sequence[UUID | str | None] | None,
    ) -> Callable[[KVTxn], list[EventRecord]]:
        sid = uuid_of(stream_id, "stream_id")
        req = self._request(sid, events, expected_seq, event_ids, "append_to_stream")
        engine = self._engine
        return lambda txn: engine.append(txn, req, datetime.now(UTC), kind="session_or_stream")

    def read_stream(
        self,
        stream_id: UUID | str,
        *,
        after_seq: int = 0,
        to_seq: int | None = None,
        limit: int | None = None,
        reverse: bool = False,
    ) -> list[EventRecord]:
        """The stream's events ``after_seq < seq <= to_seq``: the first ``limit`` in seq order.

        With ``reverse=True``, the last ``limit`` of them, newest first (the tail of a stream:
        ``read_stream(sid, reverse=True, limit=20)``, then ``to_seq=`` the oldest seq read
        minus one for the page before). Reads any stream: a run, a session or a stream of
        another kind (``StreamNotFound`` for an unknown id).
        """
        sid = uuid_of(stream_id, "stream_id")
        return self._events_of(sid, "any", after_seq, to_seq, limit, reverse)

    def read_stream_view(
        self,
        stream_id: UUID | str,
        view: type[V],
        *,
        after_seq: int = 0,
        to_seq: int | None = None,
        limit: int | None = None,
        reverse: bool = False,
    ) -> list[tuple[int, str, V]]:
        """``(seq, stored type name, payload as view)`` for the events :meth:`read_stream` reads.

        ``view`` is a msgspec Struct that names only the payload fields you need, with
        defaults for those some event types lack: msgspec skips the other fields without
        building them, so a reader of many events pays for what it uses (no upcasting: the
        payload as stored). A payload the view refuses is a ``ValueError`` naming the event.

        >>> import msgspec
        >>> from eventlog import RunStore
        >>> from eventlog.model.events import TextDelta
        >>> class Delta(msgspec.Struct):
        ...     delta: str = ""
        >>> store = RunStore.in_memory()
        >>> run = store.create_run(store.ensure_session(), provider="p", model="m")
        >>> _ = store.append_events(run.id, [TextDelta("a"), TextDelta("b")])
        >>> store.read_stream_view(run.id, Delta, reverse=True, limit=1)
        [(2, 'TextDelta', Delta(delta='b'))]
        """
        sid = uuid_of(stream_id, "stream_id")
        if not (isinstance(view, type) and issubclass(view, msgspec.Struct)):
            raise TypeError(f"view must be a msgspec.Struct subclass, got {view!r}")
        after = check_seq(after_seq, "after_seq") or 0
        to = check_seq(to_seq, "to_seq")
        lim = check_seq(limit, "limit")
        back = bool(reverse)
        return self._backend.read(
            lambda txn: self._engine.view_events(
                txn, sid, view, after_seq=after, to_seq=to, limit=lim, reverse=back
            )
        )

    def list_streams(self, kind: str, *, limit: int = 100, offset: int = 0) -> list[StreamRecord]:
        """Streams of ``kind`` in created order (oldest first), ``limit`` from ``offset``."""
        check_kind(kind)
        lim = check_seq(limit, "limit")
        off = check_seq(offset, "offset") or 0
        count = 100 if lim is None else lim
        return self._backend.read(lambda txn: self._engine.list_streams(txn, kind, count, off))

    def delete_stream(self, stream_id: UUID | str) -> bool:
        """Delete the stream, its events, idempotency keys and views in one transaction.

        True if it existed (idempotent: False afterwards). Positions of deleted events are
        never reused. A run's or session's id is a ``StreamNotFound`` naming what it is.
        """
        return self._write(self._plan_delete_stream(stream_id))

    def _plan_delete_stream(self, stream_id: UUID | str) -> Callable[[KVTxn], bool]:
        sid = uuid_of(stream_id, "stream_id")
        return lambda txn: self._engine.delete_stream(txn, sid)
