"""Every rule of the log, written once against :class:`eventlog.storage.kv.KVTxn`.

The public methods of :class:`~eventlog.store.run_store.RunStore` open one transaction and call the
methods here, which do the work inside it (eventsourcing's ``method`` / ``_method(txn)``
split). :meth:`Engine.append` is the single write step for events: it takes one
:class:`AppendRequest` and applies it in the caller's transaction, so a multi-run append (and,
later, group commit) is a loop over requests inside one transaction.

The engine knows streams (runs, and sessions whose messages are a stream), seq and positions,
idempotency keys and cascading deletes. Everything derived from events - run state, status
index, session listing, executions - is a projector run by :class:`ProjectorSet`, the
built-ins included; the engine names none of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Literal
from uuid import UUID

from eventlog.engine.projectors import (
    ProjectionTxn,
    ProjectorMeta,
    ProjectorSet,
    apply_one,
    call_hook,
    is_async,
)
from eventlog.engine.protocols import ProjectionTx, Projector
from eventlog.engine.scans import Scans
from eventlog.engine.streams import OtherStreams
from eventlog.errors import (
    AlreadyExistsError,
    ConcurrencyError,
    EventTooLargeError,
    RunNotFound,
    SessionNotFound,
    StoreError,
    StreamNotFound,
)
from eventlog.model.events import AnyEvent, RawEvent, event_type_name, event_version
from eventlog.model.records import EventRecord, RunRecord, Session
from eventlog.storage.codec import (
    MAX_EVENT_BYTES,
    RUN_RECORD,
    SESSION,
    as_read,
    decode_event,
    decode_stream,
    decode_values,
    encode_event,
)
from eventlog.storage.keys import (
    COPY_MARKER_KEY,
    FORMAT_KEY,
    FORMAT_VERSION,
    MAX_KEY,
    SEQ_END,
    pack_u64,
    prefix_end,
    unpack_u64,
)
from eventlog.storage.kv import KVTxn

__all__ = ["Accepts", "AppendRequest", "Engine", "StreamKind"]

#: What a stream is: a run, a session's messages, or a stream of another kind (whose kind
#: name is in its :class:`~eventlog.model.records.StreamRecord`).
StreamKind = Literal["run", "session", "stream"]
#: What an operation accepts: one kind, sessions or streams of other kinds, or any stream.
Accepts = Literal["run", "session", "stream", "session_or_stream", "any"]
_KIND: dict[str, bytes] = {"run": b"r", "session": b"s", "stream": b"x"}
_CODES: dict[str, frozenset[bytes]] = {
    **{k: frozenset({v}) for k, v in _KIND.items()},
    "session_or_stream": frozenset({b"s", b"x"}),
    "any": frozenset(_KIND.values()),
}
_NO_STREAM = UUID(int=0)


@dataclass(frozen=True, slots=True)
class AppendRequest:
    """One run's part of an append: its events, optional ``expected_seq`` and event ids.

    >>> from uuid import uuid4
    >>> from eventlog.model.events import TextDelta
    >>> AppendRequest(uuid4(), [TextDelta("hi")], expected_seq=0).expected_seq
    0
    """

    run_id: UUID
    events: Sequence[AnyEvent]
    expected_seq: int | None = None
    event_ids: Sequence[UUID | None] | None = None


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


class Engine(OtherStreams, Scans):
    """The store's rules over one transaction at a time."""

    def __init__(self, projectors: Sequence[Projector] = ()) -> None:
        self.projectors = ProjectorSet(projectors)

    # -- store format ----------------------------------------------------------------------
    def init_store(self, txn: KVTxn) -> None:
        """Stamp a new store with the format version; refuse a store of a newer format."""
        if txn.get("meta", FORMAT_KEY) is None and txn.get("meta", COPY_MARKER_KEY) is None:
            txn.put("meta", FORMAT_KEY, pack_u64(FORMAT_VERSION))
        self.check_format(txn)

    def check_format(self, txn: KVTxn) -> None:
        """Refuse a store written in a newer format than this code knows."""
        if txn.get("meta", COPY_MARKER_KEY) is not None:
            raise StoreError(
                "this store is an incomplete copy (`eventlog copy` did not finish); delete it "
                "and copy again"
            )
        raw = txn.get("meta", FORMAT_KEY)
        if raw is None:
            raise StoreError("not an eventlog store (no format stamp); check the path")
        found = unpack_u64(raw)
        if found > FORMAT_VERSION:
            raise StoreError(
                f"the store uses format {found}, newer than this eventlog supports "
                f"({FORMAT_VERSION}); upgrade eventlog"
            )
        if found < FORMAT_VERSION:
            raise StoreError(
                f"the store uses format {found}, older than this eventlog's ({FORMAT_VERSION}); "
                "export it with the eventlog version that wrote it (`eventlog export --all`) "
                "and import the file into a new store"
            )

    # -- sessions --------------------------------------------------------------------------
    def create_session(self, txn: KVTxn, session: Session) -> Session:
        key = session.id.bytes
        if txn.get("sessions", key) is not None:
            raise AlreadyExistsError(
                f"session {session.id} already exists; omit session_id to get a new one"
            )
        txn.put("sessions", key, SESSION.encode(session))
        self._new_stream(txn, session.id, "session")
        self.projectors.hook(txn, "on_session_created", session)
        return session

    def get_session(self, txn: KVTxn, session_id: UUID) -> Session | None:
        raw = txn.get("sessions", session_id.bytes)
        return None if raw is None else SESSION.decode(raw, "session", session_id)

    def session_run_ids(self, txn: KVTxn, session_id: UUID) -> list[UUID]:
        sid = session_id.bytes
        return [UUID(bytes=k[16:]) for k, _ in txn.scan("session_runs", sid, prefix_end(sid))]

    def delete_session(self, txn: KVTxn, session_id: UUID) -> bool:
        """Delete the session, its runs and its messages (one transaction, idempotent)."""
        session = self.get_session(txn, session_id)
        if session is None:
            return False
        for run_id in self.session_run_ids(txn, session_id):
            self.delete_run(txn, run_id)
        self._delete_stream(txn, session_id)
        self.projectors.hook(txn, "on_session_deleted", session)
        txn.discard("sessions", session_id.bytes)
        return True

    # -- runs ------------------------------------------------------------------------------
    def create_run(self, txn: KVTxn, record: RunRecord) -> RunRecord:
        if txn.get("sessions", record.session_id.bytes) is None:
            raise SessionNotFound(record.session_id)
        creq_key = None
        if record.client_request_id is not None:
            creq_key = record.session_id.bytes + record.client_request_id.encode()
            if len(creq_key) > MAX_KEY:
                raise ValueError("client_request_id is too long (max 400 bytes)")
            existing = txn.get("client_requests", creq_key)
            if existing is not None:  # an idempotent retry of the same create
                found = self.get_run(txn, UUID(bytes=existing))
                if found is not None:
                    return found
        if txn.get("runs", record.id.bytes) is not None:
            raise AlreadyExistsError(
                f"run {record.id} already exists; omit run_id to get a new one"
            )
        txn.put("runs", record.id.bytes, RUN_RECORD.encode(record))
        self._new_stream(txn, record.id, "run")
        txn.put("session_runs", record.session_id.bytes + record.id.bytes, b"")
        if creq_key is not None:
            txn.put("client_requests", creq_key, record.id.bytes)
        self.projectors.hook(txn, "on_run_created", record)
        return record

    def get_run(self, txn: KVTxn, run_id: UUID) -> RunRecord | None:
        """The run record as created (status ``pending``); the facade adds the current status."""
        raw = txn.get("runs", run_id.bytes)
        return None if raw is None else RUN_RECORD.decode(raw, "run", run_id, "record")

    def delete_run(self, txn: KVTxn, run_id: UUID) -> bool:
        record = self.get_run(txn, run_id)
        if record is None:
            return False
        rid = run_id.bytes
        self._delete_stream(txn, run_id)
        if record.client_request_id is not None:
            txn.discard(
                "client_requests", record.session_id.bytes + record.client_request_id.encode()
            )
        txn.discard("session_runs", record.session_id.bytes + rid)
        self.projectors.hook(txn, "on_run_deleted", record)
        txn.discard("runs", rid)
        return True

    # -- streams ---------------------------------------------------------------------------
    def _new_stream(self, txn: KVTxn, stream_id: UUID, kind: StreamKind) -> bytes:
        """Give a new stream the next stream number (never reused); return it."""
        last = txn.last_key("stream_ids")
        number = pack_u64(1 if last is None else unpack_u64(last) + 1)
        txn.put("streams", stream_id.bytes, number + _KIND[kind])
        txn.put("stream_ids", number, stream_id.bytes, append=True)
        return number

    def _check_stream(self, txn: KVTxn, stream_id: UUID, kind: Accepts) -> bytes:
        """The stream's number (8 bytes); ``RunNotFound``/``SessionNotFound``/``StreamNotFound``."""
        raw = txn.get("streams", stream_id.bytes)
        if raw is None or raw[8:] not in _CODES[kind]:
            if kind == "run":
                raise RunNotFound(stream_id)
            if kind == "session":
                raise SessionNotFound(stream_id)
            raise StreamNotFound(
                stream_id, None if raw is None else self.stream_kind(txn, stream_id)
            )
        return raw[:8]

    def stream_number(self, txn: KVTxn, stream_id: UUID) -> bytes | None:
        """The 8-byte number of stream ``stream_id`` (None: no such stream)."""
        raw = txn.get("streams", stream_id.bytes)
        return None if raw is None else raw[:8]

    def stream_of(self, txn: KVTxn, number: bytes) -> UUID | None:
        """The run, session or stream id that owns stream ``number`` (None: none)."""
        raw = txn.get("stream_ids", number)
        return UUID(bytes=raw) if raw else None

    def event_key(self, txn: KVTxn, stream_id: UUID, seq: int) -> bytes:
        """The ``events`` key of ``stream_id``'s event ``seq`` (for tools and tests)."""
        raw = txn.get("streams", stream_id.bytes)
        if raw is None:
            raise RunNotFound(stream_id)
        return raw[:8] + pack_u64(seq)

    def _delete_stream(self, txn: KVTxn, stream_id: UUID) -> None:
        """Delete a stream's events, their positions, idempotency keys and its number.

        The log's highest position, if it belongs to this stream, becomes a tombstone so it is
        never handed out again; so does the highest stream number.
        """
        raw = txn.get("streams", stream_id.bytes)
        if raw is None:
            return
        number = raw[:8]
        events = list(txn.scan("events", number + pack_u64(1), number + SEQ_END))
        highest = self.last_position(txn)
        for key, value in events:
            position = decode_event(stream_id, unpack_u64(key[8:]), value).position
            if position == highest:
                txn.put("positions", pack_u64(position), b"")
            else:
                txn.discard("positions", pack_u64(position))
            txn.discard("events", key)
        sid = stream_id.bytes
        for key, _ in list(txn.scan("event_ids", sid, prefix_end(sid))):
            txn.discard("event_ids", key)
        txn.discard("streams", sid)
        if txn.last_key("stream_ids") == number:
            txn.put("stream_ids", number, b"")  # tombstone: the number is never reused
        else:
            txn.discard("stream_ids", number)

    # -- the write step --------------------------------------------------------------------
    def last_seq(self, txn: KVTxn, number: bytes) -> int:
        """The head of stream ``number``: the seq of its last event (0 when it has none)."""
        key = txn.last_key("events", number + SEQ_END)
        return 0 if key is None or key[:8] != number else unpack_u64(key[8:])

    def append(
        self, txn: KVTxn, req: AppendRequest, now: datetime, kind: Accepts = "run"
    ) -> list[EventRecord]:
        """Apply one request in ``txn``: check, assign seq and positions, write, project."""
        run_id = req.run_id
        number = self._check_stream(txn, run_id, kind)
        head = self.last_seq(txn, number)
        events = req.events
        ids = req.event_ids
        if ids is None:  # the common path: no idempotency keys
            if req.expected_seq is not None and req.expected_seq != head:
                raise ConcurrencyError(run_id, req.expected_seq, head)
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
                    results[i] = self._read(txn, run_id, number + stored)
        if todo or not events:  # an empty batch still checks expected_seq, like the fast path
            if req.expected_seq is not None and req.expected_seq != head:
                raise ConcurrencyError(run_id, req.expected_seq, head)
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
        number = self._check_stream(txn, stream_id, kind)
        head = self.last_seq(txn, number)
        if seq != head + 1:
            raise ConcurrencyError(stream_id, seq - 1, head)
        ids = None if event_id is None else (event_id,)
        return self._write(txn, stream_id, number, head, (event,), ids, recorded_at)[0]

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
        """Assign seq and positions to ``events``, write them and run the projectors."""
        rid = b"" if ids is None else run_id.bytes  # only idempotency keys need it
        position = self.last_position(txn)
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

    # -- reads -----------------------------------------------------------------------------
    def _read(self, txn: KVTxn, stream_id: UUID, key: bytes) -> EventRecord:
        """The event at ``events`` key ``key`` (stream number + seq) of ``stream_id``."""
        raw = txn.get("events", key)
        seq = unpack_u64(key[8:])
        if raw is None:
            raise StoreError(f"run {stream_id}: event seq {seq} is indexed but missing")
        return decode_event(stream_id, seq, raw)

    def read_event(self, txn: KVTxn, run_id: UUID, seq: int) -> EventRecord:
        """Event ``seq`` of stream ``run_id`` (``StoreError`` if it is missing)."""
        return self._read(txn, run_id, self.event_key(txn, run_id, seq))

    def read_ref(self, txn: KVTxn, ref: bytes, ids: dict[bytes, UUID]) -> EventRecord:
        """The event a position entry points at (``ids`` caches stream numbers → ids)."""
        number = ref[:8]
        stream_id = ids.get(number)
        if stream_id is None:
            found = self.stream_of(txn, number)
            if found is None:
                raise StoreError(
                    f"the log points at stream {unpack_u64(number)}, which has no run, "
                    "session or stream record; run store.verify()"
                )
            stream_id = ids[number] = found
        return self._read(txn, stream_id, ref)

    def list_events(
        self,
        txn: KVTxn,
        run_id: UUID,
        *,
        after_seq: int = 0,
        to_seq: int | None = None,
        limit: int | None = None,
        kind: Accepts = "run",
        reverse: bool = False,
    ) -> list[EventRecord]:
        """Events ``after_seq < seq <= to_seq``, at most ``limit``.

        The first ones in seq order, or with ``reverse`` the last ones, newest first.
        """
        number = self._check_stream(txn, run_id, kind)
        if limit == 0:
            return []
        head = self.last_seq(txn, number)
        last = head if to_seq is None else min(to_seq, head)
        if reverse:
            if limit is not None:
                after_seq = max(after_seq, last - limit)
            found = self.list_events(txn, run_id, after_seq=after_seq, to_seq=last, kind=kind)
            found.reverse()
            return found
        n = last - after_seq
        if limit is not None:
            n = min(n, limit)
        if n <= 0:
            return []
        # seq numbers are dense (1..head), so the n keys after after_seq are exactly
        # after_seq+1 .. after_seq+n: read values only and check the last key
        first = number + pack_u64(after_seq + 1)
        values, last_key = txn.values("events", first, n)
        if len(values) == n and last_key == number + pack_u64(after_seq + n):
            return decode_values(run_id, after_seq + 1, values)
        stop = number + pack_u64(after_seq + n + 1)  # a damaged stream (a gap): read the keys
        return decode_stream(run_id, txn.scan("events", first, stop))

    def iter_log(self, txn: KVTxn, *, after_position: int = 0) -> Iterator[tuple[int, bytes]]:
        """``(position, ref)`` in position order; tombstones are skipped.

        ``ref`` is the stream number + seq, the event's ``events`` key; :meth:`read_ref` reads it.
        """
        for key, ref in txn.scan("positions", pack_u64(after_position + 1)):
            if ref:
                yield unpack_u64(key), ref

    def read_log(
        self, txn: KVTxn, *, after_position: int = 0, limit: int | None = None
    ) -> list[EventRecord]:
        """Events in position order after ``after_position`` (deleted positions are skipped)."""
        out: list[EventRecord] = []
        if limit == 0:
            return out
        ids: dict[bytes, UUID] = {}
        for _, ref in self.iter_log(txn, after_position=after_position):
            out.append(self.read_ref(txn, ref, ids))
            if limit is not None and len(out) >= limit:
                break
        return out

    def last_events(self, txn: KVTxn, n: int, run_id: UUID | None = None) -> list[EventRecord]:
        """The last ``n`` events of the log (or of one run), oldest first."""
        if n <= 0:
            return []
        if run_id is not None:
            number = self._check_stream(txn, run_id, "run")
            pairs = list(islice(txn.scan("events", number, number + SEQ_END, reverse=True), n))
            return decode_stream(run_id, reversed(pairs))
        refs: list[bytes] = []
        for _, ref in txn.scan("positions", b"", reverse=True):
            if ref:  # tombstones are not events
                refs.append(ref)
                if len(refs) >= n:
                    break
        ids: dict[bytes, UUID] = {}
        return [self.read_ref(txn, r, ids) for r in reversed(refs)]

    def last_position(self, txn: KVTxn) -> int:
        """The highest position ever assigned: the last key of ``positions``.

        Deleting a run keeps a tombstone (empty value) at the highest position instead of
        deleting it, so positions are never handed out twice.
        """
        key = txn.last_key("positions")
        return 0 if key is None else unpack_u64(key)

    # -- projectors ------------------------------------------------------------------------
    def rebuild(
        self,
        txn: KVTxn,
        names: Sequence[str],
        progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        """Rebuild projectors ``names`` from the stored sessions, runs and the whole log.

        An async projector is reset instead (its view cleared, checkpoint 0): its thread
        catches up from the log in batches, without holding this transaction.
        """
        chosen = self.projectors.subset(names)
        last = self.last_position(txn)
        for projector in chosen.all:
            tx = ProjectionTxn(txn, projector.name)
            tx.clear()
            if is_async(projector):
                chosen.set_meta(txn, projector.name, ProjectorMeta(projector.version, 0, True))
                if progress is not None:
                    progress(projector.name, 0, last)
                continue
            self.replay_into(txn, projector, tx, progress, last)
            chosen.set_meta(txn, projector.name, ProjectorMeta(projector.version, last, True))

    def replay_into(
        self,
        txn: KVTxn,
        projector: Projector,
        tx: ProjectionTx,
        progress: Callable[[str, int, int], None] | None,
        last: int,
        on_bad: Callable[[UUID, int, Exception], None] | None = None,
        to_position: int | None = None,
    ) -> None:
        """Feed ``projector`` (writing through ``tx``) every session, run and logged event.

        ``to_position`` stops after that position (an async projector's checkpoint).
        """
        target = tx
        if callable(getattr(projector, "on_session_created", None)):
            for session in self.iter_sessions(txn):
                call_hook(projector, target, "on_session_created", session)
        if callable(getattr(projector, "on_run_created", None)):
            for run in self.iter_runs(txn):
                call_hook(projector, target, "on_run_created", run)
        if callable(getattr(projector, "on_stream_created", None)):
            for stream in self.iter_streams(txn):
                call_hook(projector, target, "on_stream_created", stream)
        types = frozenset(getattr(projector, "event_types", frozenset()))
        done = 0
        ids: dict[bytes, UUID] = {}
        for position, ref in self.iter_log(txn):
            if to_position is not None and position > to_position:
                break
            try:
                record = self.read_ref(txn, ref, ids)
            except StoreError as exc:
                if on_bad is None:
                    raise
                on_bad(ids.get(ref[:8], _NO_STREAM), unpack_u64(ref[8:]), exc)
                continue
            if not types or record.type in types:
                apply_one(projector, target, record)
            done += 1
            if progress is not None and done % 1000 == 0:
                progress(projector.name, position, last)
        if progress is not None:
            progress(projector.name, last, last)
