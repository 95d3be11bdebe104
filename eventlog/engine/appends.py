"""The write step for events: check, assign seq and positions, write, project.

:meth:`Appender.append` takes one :class:`AppendRequest` and applies it in the caller's
transaction, so a multi-run append (and group commit) is a loop over requests inside one
transaction. It checks the stream (:class:`~eventlog.engine.stream_index.StreamIndex`), the
``expected_seq`` and the idempotency keys, writes the events and their positions, and runs the
inline projectors (:class:`~eventlog.engine.projectors.ProjectorSet`) in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from eventlog.engine.projectors import ProjectorSet
from eventlog.engine.reads import EventReader
from eventlog.engine.stream_index import Accepts, StreamIndex, StreamKind
from eventlog.engine.targets import StreamTargets
from eventlog.errors import ConcurrencyError, EventTooLargeError
from eventlog.model.events import AnyEvent, RawEvent, event_type_name, event_version
from eventlog.model.records import EventRecord
from eventlog.storage.codec import MAX_EVENT_BYTES, as_read, encode_event
from eventlog.storage.keys import pack_u64
from eventlog.storage.kv import KVTxn

__all__ = ["AppendRequest", "Appender"]


@dataclass(frozen=True, slots=True)
class AppendRequest:
    """One stream's part of an append: its events, optional ``expected_seq`` and event ids.

    The first field is the id of the stream appended to - a run, a session or a stream of
    another kind (named ``run_id`` for the callers that predate streams; :attr:`stream_id`
    is the same id). ``kind`` says what the stream must be:

    - ``None`` (default): any existing stream (``StreamNotFound`` when there is none);
    - ``"run"`` / ``"session"``: an existing run (``RunNotFound``) or session
      (``SessionNotFound``); runs and sessions are created by ``create_run`` (which takes
      first ``events=`` in the same commit) and ``create_session``;
    - a stream kind (``"doc.counter"``): a stream of that kind. With ``expected_seq=0`` a
      missing one is **created** in the same transaction, with ``metadata`` (its projectors'
      ``on_stream_created`` hooks run first, as with ``create_stream``); without
      ``expected_seq=0`` a missing stream is a ``StreamNotFound``. An existing stream keeps
      its metadata.

    A stream that exists as another kind is a ``StreamKindError``. Each request of an
    ``append_many`` has its own ``expected_seq`` and ``event_ids`` (idempotency keys).

    >>> from uuid import uuid4
    >>> from eventlog.events import TextDelta
    >>> AppendRequest(uuid4(), [TextDelta("hi")], expected_seq=0).expected_seq
    0
    >>> req = AppendRequest(uuid4(), [], expected_seq=0, kind="doc.counter", metadata={"a": 1})
    >>> req.stream_id == req.run_id, req.kind
    (True, 'doc.counter')
    """

    run_id: UUID
    events: Sequence[AnyEvent]
    expected_seq: int | None = None
    event_ids: Sequence[UUID | None] | None = None
    #: what the stream must be (None: any existing stream); see the class docstring
    kind: str | None = None
    #: a new stream's metadata (only with a stream ``kind``); ignored for an existing one
    metadata: Mapping[str, object] | None = None

    @property
    def stream_id(self) -> UUID:
        """The id of the stream appended to (the same as ``run_id``)."""
        return self.run_id


def _record(
    stream_id: UUID,
    seq: int,
    position: int,
    event: AnyEvent,
    now: datetime,
    event_id: UUID | None,
) -> EventRecord:
    """The record of an appended event, as a later read returns it.

    Raw data of a known type is stored as given, but reads (and so the projectors, here)
    see it decoded - upcast - like any stored event of that type.
    """
    if type(event) is RawEvent:
        return EventRecord(stream_id, seq, position, as_read(event), now, event_id, event.version)
    return EventRecord(stream_id, seq, position, event, now, event_id, event_version(event))


def _too_large(run_id: UUID, seq: int, event: AnyEvent, value: bytes) -> EventTooLargeError:
    return EventTooLargeError(run_id, seq, event_type_name(event), len(value), MAX_EVENT_BYTES)


class Appender:
    """Appends events to streams (and imports exported ones) inside the caller's transaction."""

    def __init__(
        self,
        index: StreamIndex,
        reader: EventReader,
        projectors: ProjectorSet,
        targets: StreamTargets,
    ) -> None:
        self.index = index
        self.reader = reader
        self.projectors = projectors
        self.targets = targets

    def append(
        self, txn: KVTxn, req: AppendRequest, now: datetime, kind: Accepts = "run"
    ) -> list[EventRecord]:
        """Apply one request in ``txn``: check, assign seq and positions, write, project.

        ``kind`` is what a request without its own ``kind`` may append to.
        """
        run_id = req.run_id
        index = self.index
        if req.kind is None:
            number = index.check_stream(txn, run_id, kind)
        else:  # a named kind: checked, or the stream created (expected_seq=0)
            number = self.targets.open(
                txn, req.run_id, req.kind, req.expected_seq, req.metadata, now
            )
        head = index.last_seq(txn, number)
        events = req.events
        ids = req.event_ids
        if ids is None:  # the common path: no idempotency keys
            if req.expected_seq is not None and req.expected_seq != head:
                raise self._conflict(txn, req, kind, req.expected_seq, head)
            return self._write(txn, run_id, number, head, events, None, now)
        rid = run_id.bytes
        results: list[EventRecord | None] = [None] * len(events)
        todo: list[int] = []
        first_of: dict[UUID, int] = {}
        duplicates: list[tuple[int, int]] = []
        for i, eid in enumerate(ids):
            if eid is None:
                todo.append(i)
            elif eid in first_of:
                duplicates.append((i, first_of[eid]))
            else:
                stored = txn.get("event_ids", rid + eid.bytes)
                if stored is None:
                    first_of[eid] = i
                    todo.append(i)
                else:  # already stored: return it, write nothing for it
                    results[i] = self.reader.read_at(txn, run_id, number + stored)
        if todo or not events:  # an empty batch still checks expected_seq, like the fast path
            if req.expected_seq is not None and req.expected_seq != head:
                raise self._conflict(txn, req, kind, req.expected_seq, head)
            written = self._write(
                txn, run_id, number, head, [events[i] for i in todo], [ids[i] for i in todo], now
            )
            for i, record in zip(todo, written, strict=True):
                results[i] = record
        for i, j in duplicates:
            results[i] = results[j]
        return [r for r in results if r is not None]

    def import_event(
        self,
        txn: KVTxn,
        stream_id: UUID,
        kind: StreamKind,
        seq: int,
        event: AnyEvent,
        recorded_at: datetime,
        event_id: UUID | None,
    ) -> EventRecord:
        """Append one exported event with its original seq, time and id (``import``)."""
        number = self.index.check_stream(txn, stream_id, kind)
        head = self.index.last_seq(txn, number)
        if seq != head + 1:
            what = self.targets.what(txn, stream_id) if kind == "stream" else kind
            raise ConcurrencyError(stream_id, seq - 1, head, kind=what)
        ids = None if event_id is None else (event_id,)
        return self._write(txn, stream_id, number, head, (event,), ids, recorded_at)[0]

    def _conflict(
        self, txn: KVTxn, req: AppendRequest, kind: Accepts, expected: int, head: int
    ) -> ConcurrencyError:
        """The error of a failed ``expected_seq`` check, naming what the stream is."""
        if req.kind is not None:  # checked by targets.open: the stream is of this kind
            what = req.kind
        elif kind in ("run", "session"):
            what = kind
        else:  # any stream: look it up (the error path only)
            what = self.targets.what(txn, req.run_id)
        return ConcurrencyError(req.run_id, expected, head, kind=what)

    def _write(
        self,
        txn: KVTxn,
        run_id: UUID,
        number: bytes,
        head: int,
        events: Sequence[AnyEvent],
        ids: Sequence[UUID | None] | None,
        now: datetime,
    ) -> list[EventRecord]:
        """Assign seq and positions after ``head`` to ``events``, write them, run the projectors.

        The caller has checked the stream (``number``) and its head; :meth:`append` is the
        checked entry point.
        """
        rid = b"" if ids is None else run_id.bytes  # only idempotency keys need it
        position = self.index.last_position(txn)
        projectors = self.projectors
        if len(events) == 1:  # the common single append: two puts
            event = events[0]
            eid = None if ids is None else ids[0]
            seq = head + 1
            position += 1
            record = _record(run_id, seq, position, event, now, eid)
            seq_key = number + pack_u64(seq)
            value = encode_event(event, position, now, eid)
            if len(value) > MAX_EVENT_BYTES:
                raise _too_large(run_id, seq, event, value)
            txn.put("events", seq_key, value)
            txn.put("positions", pack_u64(position), seq_key, append=True)
            if eid is not None:
                txn.put("event_ids", rid + eid.bytes, pack_u64(seq))
            out = [record]
        else:  # a batch: the run's keys and the positions are each one sorted run of puts
            out = []
            event_items: list[tuple[bytes, bytes]] = []
            position_items: list[tuple[bytes, bytes]] = []
            id_items: list[tuple[bytes, bytes]] = []
            seq = head
            for i, event in enumerate(events):
                seq += 1
                position += 1
                eid = None if ids is None else ids[i]
                out.append(_record(run_id, seq, position, event, now, eid))
                seq_key = number + pack_u64(seq)
                value = encode_event(event, position, now, eid)
                if len(value) > MAX_EVENT_BYTES:
                    raise _too_large(run_id, seq, event, value)
                event_items.append((seq_key, value))
                position_items.append((pack_u64(position), seq_key))
                if eid is not None:
                    id_items.append((rid + eid.bytes, pack_u64(seq)))
            txn.put_many("events", event_items)
            txn.put_many("positions", position_items, append=True)
            if id_items:
                id_items.sort()
                txn.put_many("event_ids", id_items)
        if projectors:
            projectors.apply_batch(txn, out)
        return out
