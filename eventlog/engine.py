"""Every rule of the store, written once against :class:`eventlog.kv.KVTxn`.

The public methods of :class:`~eventlog.store.RunStore` open one transaction and call the
functions here, which do the work inside it (eventsourcing's ``method`` / ``_method(txn)``
split). :meth:`Engine.append` is the single write step for events: it takes one
:class:`AppendRequest` and applies it in the caller's transaction, so a multi-run append (and,
later, group commit) is a loop over requests inside one transaction.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import msgspec

from eventlog.codec import RUN_RECORD, RUN_STATE, SESSION, decode_event, encode_event
from eventlog.errors import (
    AlreadyExistsError,
    ConcurrencyError,
    InvalidTransition,
    ProjectionError,
    RunNotFound,
    SessionNotFound,
    StoreError,
)
from eventlog.events import AnyEvent, RawEvent
from eventlog.keys import (
    FORMAT_KEY,
    FORMAT_VERSION,
    MAX_KEY,
    SEQ_END,
    pack_u64,
    prefix_end,
    unpack_u64,
)
from eventlog.kv import KVTxn
from eventlog.protocols import Projector
from eventlog.records import EventRecord, RunRecord, RunState, Session, status_after
from eventlog.status import TERMINAL_STATUSES

__all__ = ["AppendRequest", "Engine", "ProjectorMeta"]


@dataclass(frozen=True, slots=True)
class AppendRequest:
    """One run's part of an append: its events, optional ``expected_seq`` and event ids.

    >>> from uuid import uuid4
    >>> from eventlog.events import TextDelta
    >>> AppendRequest(uuid4(), [TextDelta("hi")], expected_seq=0).expected_seq
    0
    """

    run_id: UUID
    events: Sequence[AnyEvent]
    expected_seq: int | None = None
    event_ids: Sequence[UUID | None] | None = None


class ProjectorMeta(msgspec.Struct, array_like=True):
    """What the store remembers of a projector: its version and checkpoint (last position)."""

    version: int
    checkpoint: int
    ready: bool


_META_ENCODER = msgspec.msgpack.Encoder()
_META_DECODER = msgspec.msgpack.Decoder(ProjectorMeta)


class _ProjectionTx:
    """The facade over one projector's keyspace (a key prefix in the ``projections`` table)."""

    __slots__ = ("_prefix", "_txn")

    def __init__(self, txn: KVTxn, name: str) -> None:
        self._txn = txn
        self._prefix = name.encode() + b"\x00"

    def _key(self, key: bytes) -> bytes:
        if not isinstance(key, bytes):
            raise TypeError(f"projection keys are bytes, got {type(key).__name__}")
        full = self._prefix + key
        if len(full) > MAX_KEY:
            raise ValueError(f"projection key too long ({len(key)} bytes); keep keys short")
        return full

    def get(self, key: bytes) -> bytes | None:
        return self._txn.get("projections", self._key(key))

    def put(self, key: bytes, value: bytes) -> None:
        self._txn.put("projections", self._key(key), bytes(value))

    def delete(self, key: bytes) -> None:
        self._txn.delete("projections", self._key(key))

    def scan(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        start = self._key(prefix)
        n = len(self._prefix)
        for key, value in self._txn.scan("projections", start, prefix_end(start)):
            yield key[n:], value

    def clear(self) -> None:
        keys = [k for k, _ in self._txn.scan("projections", self._prefix, prefix_end(self._prefix))]
        for k in keys:
            self._txn.delete("projections", k)


class Engine:
    """The store's rules over one transaction at a time."""

    def __init__(self, projectors: Sequence[Projector] = ()) -> None:
        names: set[str] = set()
        for p in projectors:
            name = getattr(p, "name", None)
            if not isinstance(name, str) or not name or "\x00" in name or len(name) > 100:
                raise ValueError(f"projector {p!r}: `name` must be a non-empty str (<= 100 chars)")
            if name in names:
                raise ValueError(f"two projectors are named {name!r}; names must be unique")
            if not isinstance(getattr(p, "version", None), int):
                raise ValueError(f"projector {name!r}: `version` must be an int")
            if not callable(getattr(p, "apply", None)):
                raise ValueError(f"projector {name!r}: it needs an apply(tx, record) method")
            names.add(name)
        self.projectors = tuple(projectors)
        self._wants = tuple(frozenset(getattr(p, "event_types", frozenset())) for p in projectors)

    # -- store format ----------------------------------------------------------------------
    def init_store(self, txn: KVTxn) -> None:
        """Stamp a new store with the format version; refuse a store of a newer format."""
        raw = txn.get("meta", FORMAT_KEY)
        if raw is None:
            txn.put("meta", FORMAT_KEY, pack_u64(FORMAT_VERSION))
            return
        found = unpack_u64(raw)
        if found > FORMAT_VERSION:
            raise StoreError(
                f"the store uses format {found}, newer than this eventlog supports "
                f"({FORMAT_VERSION}); upgrade eventlog"
            )

    # -- sessions --------------------------------------------------------------------------
    def create_session(self, txn: KVTxn, session: Session) -> Session:
        key = session.id.bytes
        if txn.get("sessions", key) is not None:
            raise AlreadyExistsError(
                f"session {session.id} already exists; omit session_id to get a new one"
            )
        txn.put("sessions", key, SESSION.encode(session))
        return session

    def get_session(self, txn: KVTxn, session_id: UUID) -> Session | None:
        raw = txn.get("sessions", session_id.bytes)
        return None if raw is None else SESSION.decode(raw, "session", session_id)

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
        txn.put("states", record.id.bytes, RUN_STATE.encode(RunState.initial(record)))
        if creq_key is not None:
            txn.put("client_requests", creq_key, record.id.bytes)
        return record

    def get_state(self, txn: KVTxn, run_id: UUID) -> RunState | None:
        raw = txn.get("states", run_id.bytes)
        return None if raw is None else RUN_STATE.decode(raw, "run", run_id, "state")

    def get_run(self, txn: KVTxn, run_id: UUID) -> RunRecord | None:
        raw = txn.get("runs", run_id.bytes)
        if raw is None:
            return None
        record = RUN_RECORD.decode(raw, "run", run_id, "record")
        state = self.get_state(txn, run_id)
        if state is None:
            return record
        return msgspec.structs.replace(
            record, status=state.status, updated_at=state.updated_at or record.updated_at
        )

    # -- the write step --------------------------------------------------------------------
    def append(self, txn: KVTxn, req: AppendRequest, now: datetime) -> list[EventRecord]:
        """Apply one request in ``txn``: check, assign seq and positions, write, project."""
        run_id = req.run_id
        rid = run_id.bytes
        raw_state = txn.get("states", rid)
        if raw_state is None:
            raise RunNotFound(run_id)
        state = RUN_STATE.decode(raw_state, "run", run_id, "state")
        events = req.events
        ids = req.event_ids
        if ids is None:  # the common path: no idempotency keys
            if req.expected_seq is not None and req.expected_seq != state.last_seq:
                raise ConcurrencyError(run_id, req.expected_seq, state.last_seq)
            return self._write(txn, run_id, rid, state, events, None, now)
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
                    results[i] = self._read_event(txn, run_id, unpack_u64(stored))
        if todo or not events:  # an empty batch still checks expected_seq, like the fast path
            if req.expected_seq is not None and req.expected_seq != state.last_seq:
                raise ConcurrencyError(run_id, req.expected_seq, state.last_seq)
            written = self._write(
                txn, run_id, rid, state, [events[i] for i in todo], [ids[i] for i in todo], now
            )
            for i, record in zip(todo, written, strict=True):
                results[i] = record
        for i, j in duplicates:
            results[i] = results[j]
        return [r for r in results if r is not None]

    def _write(
        self,
        txn: KVTxn,
        run_id: UUID,
        rid: bytes,
        state: RunState,
        events: Sequence[AnyEvent],
        ids: Sequence[UUID | None] | None,
        now: datetime,
    ) -> list[EventRecord]:
        """Assign seq and positions to ``events`` and write them, the state and the views."""
        position = self.last_position(txn)
        projectors = self.projectors
        put = txn.put
        out: list[EventRecord] = []
        for i, event in enumerate(events):
            seq = state.last_seq + 1
            position += 1
            current = state.status
            if current in TERMINAL_STATUSES:
                nxt = status_after(current, event)
                if nxt != current:
                    raise InvalidTransition(run_id, current.value, nxt.value, seq)
            eid = None if ids is None else ids[i]
            record = EventRecord(run_id, seq, position, event, now, eid)
            seq_key = rid + pack_u64(seq)
            put("events", seq_key, encode_event(event, position, now, eid))
            put("positions", pack_u64(position), seq_key, append=True)
            if eid is not None:
                put("event_ids", rid + eid.bytes, pack_u64(seq))
            state._apply(record)
            if projectors:
                self._project(txn, record)
            out.append(record)
        put("states", rid, RUN_STATE.encode(state))
        if projectors:
            self._checkpoint_all(txn, position)
        return out

    def _project(self, txn: KVTxn, record: EventRecord) -> None:
        type_name = record.type
        for projector, wants in zip(self.projectors, self._wants, strict=True):
            if wants and type_name not in wants:
                continue
            try:
                projector.apply(_ProjectionTx(txn, projector.name), record)
            except Exception as exc:
                raise ProjectionError(projector.name, record.run_id, record.seq, exc) from exc

    def _checkpoint_all(self, txn: KVTxn, position: int) -> None:
        for projector in self.projectors:
            meta = ProjectorMeta(projector.version, position, True)
            txn.put("projector_meta", projector.name.encode(), _META_ENCODER.encode(meta))

    # -- reads -----------------------------------------------------------------------------
    def _read_event(self, txn: KVTxn, run_id: UUID, seq: int) -> EventRecord:
        raw = txn.get("events", run_id.bytes + pack_u64(seq))
        if raw is None:
            raise StoreError(f"run {run_id}: event seq {seq} is indexed but missing")
        return decode_event(run_id, seq, raw)

    def list_events(
        self,
        txn: KVTxn,
        run_id: UUID,
        *,
        after_seq: int = 0,
        to_seq: int | None = None,
        limit: int | None = None,
    ) -> list[EventRecord]:
        rid = run_id.bytes
        if txn.get("states", rid) is None:
            raise RunNotFound(run_id)
        stop = rid + (SEQ_END if to_seq is None else pack_u64(to_seq + 1))
        out: list[EventRecord] = []
        if limit == 0:
            return out
        for key, value in txn.scan("events", rid + pack_u64(after_seq + 1), stop):
            out.append(decode_event(run_id, unpack_u64(key[16:]), value))
            if limit is not None and len(out) >= limit:
                break
        return out

    def read_log(
        self, txn: KVTxn, *, after_position: int = 0, limit: int | None = None
    ) -> list[EventRecord]:
        """Events in position order after ``after_position`` (deleted positions are skipped)."""
        out: list[EventRecord] = []
        if limit == 0:
            return out
        for _, ref in txn.scan("positions", pack_u64(after_position + 1)):
            if not ref:
                continue  # the tombstone of a deleted run's last position
            run_id = UUID(bytes=ref[:16])
            out.append(self._read_event(txn, run_id, unpack_u64(ref[16:])))
            if limit is not None and len(out) >= limit:
                break
        return out

    def last_position(self, txn: KVTxn) -> int:
        """The highest position ever assigned: the last key of ``positions``.

        Deleting a run keeps a tombstone (empty value) at the highest position instead of
        deleting it, so positions are never handed out twice.
        """
        last = txn.last("positions")
        return 0 if last is None else unpack_u64(last[0])

    # -- delete ----------------------------------------------------------------------------
    def delete_run(self, txn: KVTxn, run_id: UUID) -> bool:
        rid = run_id.bytes
        raw = txn.get("runs", rid)
        if raw is None:
            return False
        record = RUN_RECORD.decode(raw, "run", run_id, "record")
        events = list(txn.scan("events", rid + pack_u64(1), rid + SEQ_END))
        highest = self.last_position(txn)
        for key, value in events:
            position = decode_event(run_id, unpack_u64(key[16:]), value).position
            if position == highest:
                txn.put("positions", pack_u64(position), b"")  # tombstone: keeps the counter
            else:
                txn.delete("positions", pack_u64(position))
            txn.delete("events", key)
        for key, _ in list(txn.scan("event_ids", rid, prefix_end(rid))):
            txn.delete("event_ids", key)
        if record.client_request_id is not None:
            txn.delete(
                "client_requests", record.session_id.bytes + record.client_request_id.encode()
            )
        txn.delete("states", rid)
        txn.delete("runs", rid)
        return True

    # -- projector bookkeeping -------------------------------------------------------------
    def projector_meta(self, txn: KVTxn, name: str) -> ProjectorMeta | None:
        raw = txn.get("projector_meta", name.encode())
        return None if raw is None else _META_DECODER.decode(raw)

    def needs_rebuild(self, txn: KVTxn) -> list[Projector]:
        """Projectors that are new, have a new version, or whose rebuild did not finish."""
        stale = []
        for p in self.projectors:
            meta = self.projector_meta(txn, p.name)
            if meta is None or meta.version != p.version or not meta.ready:
                stale.append(p)
        return stale

    def rebuild_step(
        self, txn: KVTxn, projector: Projector, after_position: int, chunk: int
    ) -> tuple[int, bool]:
        """Apply up to ``chunk`` log events after ``after_position`` to ``projector``.

        The first step (``after_position == 0``) clears the projector's keyspace. Returns the
        new checkpoint and whether the projector caught up with the log.
        """
        tx = _ProjectionTx(txn, projector.name)
        if after_position == 0:
            tx.clear()
        wants = frozenset(getattr(projector, "event_types", frozenset()))
        records = self.read_log(txn, after_position=after_position, limit=chunk)
        checkpoint = after_position
        for record in records:
            if not wants or record.type in wants:
                try:
                    projector.apply(tx, record)
                except Exception as exc:
                    raise ProjectionError(projector.name, record.run_id, record.seq, exc) from exc
            checkpoint = record.position
        done = len(records) < chunk
        if done:
            checkpoint = max(checkpoint, self.last_position(txn))
        meta = ProjectorMeta(projector.version, checkpoint, done)
        txn.put("projector_meta", projector.name.encode(), _META_ENCODER.encode(meta))
        return checkpoint, done

    def projection_reader(self, txn: KVTxn, name: str) -> _ProjectionTx:
        return _ProjectionTx(txn, name)


def raw_event_data(event: AnyEvent) -> dict[str, object]:
    """The payload mapping of any event (used by exporters and debuggers)."""
    if isinstance(event, RawEvent):
        return dict(event.data)
    data = msgspec.to_builtins(event)
    assert isinstance(data, dict)
    return data
