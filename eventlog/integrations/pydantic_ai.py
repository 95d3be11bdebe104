"""A Pydantic AI step store on the event store: ``EventLogStepStore(store)``.

It implements ``pydantic_ai_harness.step_persistence.StepStore`` (runs with their
``parent_run_id``/``conversation_id`` lineage, step events, ``complete``/``interrupted``
snapshots bounded by ``max_snapshots_per_run``, and the tool-effect ledger with
``list_unresolved_tool_effects``) over one stream per run (kind ``"pydantic_ai.run"``, id
``stream_id_for("pydantic_ai.run", run_id)``). The built-in ``pydantic_ai`` projector
(``projections/pydantic_ai_steps.py``) keeps, in the same transaction as each write, the run
listings, the latest snapshots, the tool ledger and the idempotency keys, so every call but
``list_events`` is a few point reads. It answers as the harness's ``InMemoryStepStore`` does,
with one difference its persistent stores share: registering a ``run_id`` twice is an
:class:`~eventlog.errors.AlreadyExistsError` (``run_id`` is single-shot).

Needs the optional extra: ``pip install 'agent-eventlog[pydantic-ai]'`` (pins
``pydantic-ai-slim`` and ``pydantic-ai-harness``, whose protocol is still alpha).

>>> import asyncio
>>> from eventlog import RunStore
>>> from pydantic_ai_harness.step_persistence import RunRecord, StepEvent
>>> store = RunStore.in_memory()
>>> steps = EventLogStepStore(store)
>>> async def demo():
...     await steps.register_run(RunRecord(run_id="r-1", conversation_id="c-1"))
...     await steps.append_event(StepEvent(run_id="r-1", kind="run_started", step_index=0))
...     runs = await steps.list_runs(conversation_id="c-1")
...     return [r.run_id for r in runs], [e.kind for e in await steps.list_events(run_id="r-1")]
>>> asyncio.run(demo())
(['r-1'], ['run_started'])
>>> store.close()
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TypeVar
from uuid import UUID

import msgspec
from pydantic import ValidationError
from pydantic_ai.messages import ModelMessage, ModelMessagesTypeAdapter
from pydantic_ai_harness.step_persistence import (
    ContinuableSnapshot,
    RunRecord,
    StepEvent,
    ToolEffectRecord,
)

from eventlog.errors import (
    AlreadyExistsError,
    ConfigError,
    CorruptRecordError,
    InvalidRecordError,
    StreamNotFound,
)
from eventlog.integrations.stream_writes import acommit, append_plan, both_stores
from eventlog.model.events import AnyEvent
from eventlog.model.records import EventRecord, stream_id_for
from eventlog.storage.keys import prefix_end
from eventlog.storage.kv import KVTxn
from eventlog.store.async_run_store import AsyncRunStore
from eventlog.store.run_store import RunStore
from projections.pydantic_ai_steps import (
    KEYSPACE,
    MAX_DEPTH,
    RUN_KIND,
    RunRegistered,
    SnapshotKeys,
    SnapshotRecorded,
    SnapshotTip,
    StepRecorded,
    StoredEffect,
    StoredRun,
    StoredSnapshotRef,
    ToolEffectRecorded,
    h,
    message_hash,
    snapshot_key_sequence,
)

__all__ = ["RUN_KIND", "EventLogStepStore"]

T = TypeVar("T")

_PREFIX = KEYSPACE.encode() + b"\x00"
_run_dec = msgspec.msgpack.Decoder(StoredRun)
_ref_dec = msgspec.msgpack.Decoder(StoredSnapshotRef)
_keys_dec = msgspec.msgpack.Decoder(SnapshotKeys)
_effect_dec = msgspec.msgpack.Decoder(StoredEffect)
_tip_dec = msgspec.msgpack.Decoder(SnapshotTip)
_json = msgspec.json.Encoder().encode
_KINDS = frozenset(
    {
        "run_started",
        "run_completed",
        "run_failed",
        "model_request_started",
        "model_request_completed",
        "model_request_failed",
        "tool_call_started",
        "tool_call_completed",
        "tool_call_failed",
    }
)


class _StepView(msgspec.Struct):
    """The fields of a stream's events that ``list_events`` reads (a snapshot's messages not)."""

    kind: str = ""
    step_index: int = 0
    timestamp: str = ""
    conversation_id: str | None = None
    parent_run_id: str | None = None
    agent_name: str | None = None
    tool_call_id: str | None = None
    tool_name: str | None = None
    error: str | None = None
    metadata: dict[str, str] = {}
    idempotency_key: str | None = None


@functools.lru_cache(maxsize=4096)
def _stream(run_id: str) -> UUID:
    """The run's stream id (a uuid5 of its id: cached, a run asks for it at every step)."""
    return stream_id_for(RUN_KIND, run_id)


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidRecordError(what, f"must be a str, got {type(value).__name__}: {value!r}")
    return value


def _opt(value: object, what: str) -> str | None:
    return None if value is None else _text(value, what)


def _when(value: object, what: str) -> str:
    if not isinstance(value, datetime):
        raise InvalidRecordError(what, f"must be a datetime, got {type(value).__name__}")
    return value.isoformat()


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value < 2**63:
        raise InvalidRecordError(what, f"must be a 64-bit int, got {value!r}")
    return value


def _metadata(value: object, what: str) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise InvalidRecordError(what, f"must be a dict of str to str, got {value!r}")
    return dict(value)


def _choice(value: object, allowed: frozenset[str] | tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise InvalidRecordError(what, f"must be one of {sorted(allowed)}, got {value!r}")
    assert isinstance(value, str)
    return value


def _record(value: object, cls: type[T], call: str) -> T:
    if not isinstance(value, cls):
        raise InvalidRecordError(f"{call}()", f"takes a {cls.__name__}, got {type(value).__name__}")
    return value


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _run(stored: StoredRun) -> RunRecord:
    r = stored.run
    return RunRecord(
        run_id=r.run_id,
        conversation_id=r.conversation_id,
        parent_run_id=r.parent_run_id,
        agent_name=r.agent_name,
        metadata=dict(r.metadata),
        started_at=_time(r.started_at),
        registration_id=r.registration_id,
    )


def _effect(run_id: str, e: ToolEffectRecorded) -> ToolEffectRecord:
    return ToolEffectRecord(
        tool_call_id=e.tool_call_id,
        tool_name=e.tool_name,
        run_id=run_id,
        status=e.status,
        started_at=_time(e.started_at),
        ended_at=None if e.ended_at is None else _time(e.ended_at),
        idempotency_key=e.idempotency_key,
        effect_summary=e.effect_summary,
    )


def _get(txn: KVTxn, key: bytes) -> bytes | None:
    return txn.get("projections", _PREFIX + key)


def _scan(txn: KVTxn, prefix: bytes) -> list[tuple[bytes, bytes]]:
    start = _PREFIX + prefix
    cut = len(_PREFIX)
    return [(k[cut:], v) for k, v in txn.scan("projections", start, prefix_end(start))]


def _history(
    read: Callable[[KVTxn, UUID, int], EventRecord], txn: KVTxn, sid: UUID, seq: int
) -> tuple[SnapshotRecorded, bytes]:
    """The snapshot event at ``seq`` and its whole history's JSON (its deltas' bases read)."""
    chain: list[SnapshotRecorded] = []
    at: int | None = seq
    while at is not None:
        event = read(txn, sid, at).event
        if not isinstance(event, SnapshotRecorded) or len(chain) > MAX_DEPTH:
            raise CorruptRecordError(
                f"step-persistence stream {sid}: seq {at} is not the snapshot a newer one "
                "names as its base; run store.verify()"
            )
        chain.append(event)
        at = event.base
    parts: list[bytes] = []
    for event in reversed(chain):
        parts = [*parts[: event.shared], *event.messages]
    return chain[0], b"[" + b",".join(parts) + b"]"


class EventLogStepStore:
    """A ``StepStore`` (pydantic-ai-harness) over an open ``RunStore`` or ``AsyncRunStore``.

    Pass it to ``StepPersistence(store=...)``. Every method is async, as the protocol is;
    writes go through the store's group committer (awaited, never blocking the event loop),
    reads are point reads (inline on LMDB and memory, in a thread on PostgreSQL).
    ``max_snapshots_per_run`` bounds the snapshots a run keeps (None: all), keeping the newest
    and the newest ``complete`` one as the harness's stores do.

    >>> import asyncio
    >>> from eventlog import RunStore
    >>> store = RunStore.in_memory()
    >>> asyncio.run(EventLogStepStore(store).latest_snapshot(run_id="nobody")) is None
    True
    >>> store.close()
    """

    def __init__(
        self, store: RunStore | AsyncRunStore, *, max_snapshots_per_run: int | None = None
    ) -> None:
        self._store, self._astore = both_stores(store, "EventLogStepStore")
        keep = max_snapshots_per_run
        if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
            raise ConfigError(f"max_snapshots_per_run must be an int >= 1 or None, got {keep!r}")
        self._keep = keep
        self._read_txn = self._store.core.backend.read
        self._remote = self._store.core.remote
        self._creates = self._store.core.plans.streams.create_stream
        self._event_at = self._store.core.engine.reads.read_event

    @property
    def max_snapshots_per_run(self) -> int | None:
        """How many snapshots a run keeps (None: every one)."""
        return self._keep

    # -- plumbing ---------------------------------------------------------------------------
    async def _read(self, fn: Callable[[KVTxn], T]) -> T:
        """One read snapshot: inline on an embedded store, in a thread on a server."""
        if self._remote:
            return await asyncio.to_thread(self._read_txn, fn)
        return self._read_txn(fn)

    async def _append(
        self,
        run_id: str,
        events: list[AnyEvent] | Callable[[KVTxn], list[AnyEvent]],
        skip: Callable[[KVTxn], bool] | None = None,
        check: Callable[[KVTxn], None] | None = None,
    ) -> None:
        """Append ``events`` to the run's stream (created if missing), unless ``skip(txn)``.

        ``events`` may be a function of the write transaction (a snapshot's delta is taken
        against the run's newest snapshot as of that transaction).
        """
        sid = _stream(run_id)
        create = self._creates(sid, RUN_KIND, {"run_id": run_id}, ensure=True)
        store = self._store
        fixed = None if callable(events) else append_plan(store, sid, events, create=create)

        def plan(txn: KVTxn) -> None:
            if skip is not None and skip(txn):
                return
            if check is not None:
                check(txn)
            if fixed is not None:
                fixed(txn)
            else:
                assert callable(events)
                append_plan(store, sid, events(txn), create=create)(txn)

        await acommit(self._astore, plan, finish=True)

    # -- runs -------------------------------------------------------------------------------
    async def register_run(self, record: RunRecord) -> None:
        """Record a run's lineage; a ``run_id`` already registered is an AlreadyExistsError."""
        record = _record(record, RunRecord, "register_run")
        run_id = _text(record.run_id, "RunRecord.run_id")
        event = RunRegistered(
            run_id=run_id,
            started_at=_when(record.started_at, "RunRecord.started_at"),
            conversation_id=_opt(record.conversation_id, "RunRecord.conversation_id"),
            parent_run_id=_opt(record.parent_run_id, "RunRecord.parent_run_id"),
            agent_name=_opt(record.agent_name, "RunRecord.agent_name"),
            metadata=_metadata(record.metadata, "RunRecord.metadata"),
            registration_id=_opt(record.registration_id, "RunRecord.registration_id"),
        )
        t = _stream(run_id).bytes

        def refuse_twice(txn: KVTxn) -> None:
            if _get(txn, b"r" + t) is not None:
                raise AlreadyExistsError(
                    f"step-persistence run {run_id!r} is already registered (run_id is "
                    "single-shot); use a new run_id, and conversation_id to group runs"
                )

        await self._append(run_id, [event], check=refuse_twice)

    async def get_run(self, *, run_id: str) -> RunRecord | None:
        """The run's record, or None."""
        t = _stream(_text(run_id, "run_id")).bytes
        raw = await self._read(lambda txn: _get(txn, b"r" + t))
        return None if raw is None else _run(_run_dec.decode(raw))

    async def list_runs(
        self, *, parent_run_id: str | None = None, conversation_id: str | None = None
    ) -> list[RunRecord]:
        """The runs matching both filters (when set), oldest ``started_at`` first.

        Reads an index (by conversation, by parent, or of every run), never the runs' events.
        """
        parent = _opt(parent_run_id, "parent_run_id")
        conversation = _opt(conversation_id, "conversation_id")
        if conversation is not None:
            prefix = b"c" + h(conversation)
        elif parent is not None:
            prefix = b"p" + h(parent)
        else:
            prefix = b"a"

        def read(txn: KVTxn) -> list[StoredRun]:
            found = []
            for key, _ in _scan(txn, prefix):
                raw = _get(txn, b"r" + key[-16:])
                if raw is None:
                    raise CorruptRecordError(
                        f"the pydantic_ai view lists run stream {UUID(bytes=key[-16:])} "
                        "without its record; run store.rebuild_projections(['pydantic_ai'])"
                    )
                found.append(_run_dec.decode(raw))
            return found

        runs = [_run(s) for s in await self._read(read)]
        return [
            r
            for r in runs
            if (parent is None or r.parent_run_id == parent)
            and (conversation is None or r.conversation_id == conversation)
        ]

    # -- step events ------------------------------------------------------------------------
    async def append_event(self, event: StepEvent) -> None:
        """Append a step event; one whose ``idempotency_key`` the run has is dropped."""
        event = _record(event, StepEvent, "append_event")
        run_id = _text(event.run_id, "StepEvent.run_id")
        key = _opt(event.idempotency_key, "StepEvent.idempotency_key")
        recorded = StepRecorded(
            kind=_choice(event.kind, _KINDS, "StepEvent.kind"),
            step_index=_int(event.step_index, "StepEvent.step_index"),
            timestamp=_when(event.timestamp, "StepEvent.timestamp"),
            conversation_id=_opt(event.conversation_id, "StepEvent.conversation_id"),
            parent_run_id=_opt(event.parent_run_id, "StepEvent.parent_run_id"),
            agent_name=_opt(event.agent_name, "StepEvent.agent_name"),
            tool_call_id=_opt(event.tool_call_id, "StepEvent.tool_call_id"),
            tool_name=_opt(event.tool_name, "StepEvent.tool_name"),
            error=_opt(event.error, "StepEvent.error"),
            metadata=_metadata(event.metadata, "StepEvent.metadata"),
            idempotency_key=key,
        )
        skip = None
        if key is not None:
            seen = b"e" + _stream(run_id).bytes + h(key)

            def skip(txn: KVTxn) -> bool:
                return _get(txn, seen) is not None

        await self._append(run_id, [recorded], skip)

    async def list_events(self, *, run_id: str) -> list[StepEvent]:
        """The run's step events in the order they were appended."""
        run_id = _text(run_id, "run_id")
        try:
            rows = await self._astore.read_stream_view(_stream(run_id), _StepView)
        except StreamNotFound:
            return []
        return [
            StepEvent(
                run_id=run_id,
                kind=v.kind,  # type: ignore[arg-type]  # checked when written
                step_index=v.step_index,
                timestamp=_time(v.timestamp),
                conversation_id=v.conversation_id,
                parent_run_id=v.parent_run_id,
                agent_name=v.agent_name,
                tool_call_id=v.tool_call_id,
                tool_name=v.tool_name,
                error=v.error,
                metadata=v.metadata,
                idempotency_key=v.idempotency_key,
            )
            for _, name, v in rows
            if name == "pydantic_ai.step"
        ]

    # -- snapshots --------------------------------------------------------------------------
    async def save_snapshot(self, snapshot: ContinuableSnapshot) -> None:
        """Save a snapshot; a retried one (same key, or an older ``N:`` key) is dropped."""
        snapshot = _record(snapshot, ContinuableSnapshot, "save_snapshot")
        run_id = _text(snapshot.run_id, "ContinuableSnapshot.run_id")
        key = _opt(snapshot.idempotency_key, "ContinuableSnapshot.idempotency_key")
        try:
            items = ModelMessagesTypeAdapter.dump_python(snapshot.messages, mode="json")
            parts = [_json(item) for item in items]
        except (ValidationError, TypeError, ValueError) as e:
            raise InvalidRecordError(
                "ContinuableSnapshot.messages", f"pydantic-ai cannot serialize them ({e})"
            ) from None
        fields = {
            "step_index": _int(snapshot.step_index, "ContinuableSnapshot.step_index"),
            "timestamp": _when(snapshot.timestamp, "ContinuableSnapshot.timestamp"),
            "state": _choice(
                snapshot.state, ("complete", "interrupted"), "ContinuableSnapshot.state"
            ),
            "conversation_id": _opt(
                snapshot.conversation_id, "ContinuableSnapshot.conversation_id"
            ),
            "parent_run_id": _opt(snapshot.parent_run_id, "ContinuableSnapshot.parent_run_id"),
            "agent_name": _opt(snapshot.agent_name, "ContinuableSnapshot.agent_name"),
            "idempotency_key": key,
            "keep": self._keep,
        }
        t = _stream(run_id).bytes
        hashes = [message_hash(p) for p in parts]

        def delta(txn: KVTxn) -> list[AnyEvent]:
            """The snapshot as the messages it does not share with the run's newest one."""
            raw = _get(txn, b"m" + t)
            tip = None if raw is None else _tip_dec.decode(raw)
            base, shared = None, 0
            if tip is not None and tip.depth < MAX_DEPTH:
                known = tip.hashes
                while (
                    shared < len(hashes) and known[16 * shared : 16 * shared + 16] == hashes[shared]
                ):
                    shared += 1
                if shared:
                    base = tip.seq
            return [
                msgspec.convert(
                    {**fields, "messages": parts[shared:], "base": base, "shared": shared},
                    SnapshotRecorded,
                )
            ]

        skip = None
        if key is not None:
            sequence = snapshot_key_sequence(key)
            hk = h(key)

            def skip(txn: KVTxn) -> bool:
                raw = _get(txn, b"k" + t) if sequence is not None else None
                if raw is not None:
                    high = _keys_dec.decode(raw)
                    if sequence < high.sequence or (  # type: ignore[operator]
                        sequence == high.sequence and key in high.keys
                    ):
                        return True
                return bool(_scan(txn, b"y" + t + hk))

        await self._append(run_id, delta, skip)

    async def latest_snapshot(
        self, *, run_id: str, include_interrupted: bool = False
    ) -> ContinuableSnapshot | None:
        """The newest ``complete`` snapshot (with ``include_interrupted``: the newest), or None."""
        run_id = _text(run_id, "run_id")
        sid = _stream(run_id)
        which = (b"l" if include_interrupted else b"L") + sid.bytes
        event_at = self._event_at

        def read(txn: KVTxn) -> tuple[SnapshotRecorded, bytes] | None:
            seq = _get(txn, which)
            if seq is None:
                return None
            return _history(event_at, txn, sid, int.from_bytes(seq, "big"))

        found = await self._read(read)
        return None if found is None else self._snapshot(run_id, *found)

    async def list_snapshots(
        self, *, run_id: str, include_interrupted: bool = False
    ) -> list[ContinuableSnapshot]:
        """The run's retained snapshots, oldest first (not in the protocol: as the harness's)."""
        run_id = _text(run_id, "run_id")
        sid = _stream(run_id)
        event_at = self._event_at

        def read(txn: KVTxn) -> list[tuple[SnapshotRecorded, bytes]]:
            return [
                _history(event_at, txn, sid, int.from_bytes(key[17:], "big"))
                for key, raw in _scan(txn, b"s" + sid.bytes)
                if include_interrupted or _ref_dec.decode(raw).state == "complete"
            ]

        return [self._snapshot(run_id, *found) for found in await self._read(read)]

    @staticmethod
    def _snapshot(run_id: str, s: SnapshotRecorded, history: bytes) -> ContinuableSnapshot:
        try:
            messages: list[ModelMessage] = ModelMessagesTypeAdapter.validate_json(history)
        except ValidationError as e:
            raise CorruptRecordError(
                f"step-persistence run {run_id!r}: the snapshot at step {s.step_index} does not "
                f"read as pydantic-ai messages ({e.error_count()} errors); was it written by "
                "another pydantic-ai version? pin the version that wrote it"
            ) from None
        return ContinuableSnapshot(
            run_id=run_id,
            step_index=s.step_index,
            messages=messages,
            conversation_id=s.conversation_id,
            parent_run_id=s.parent_run_id,
            agent_name=s.agent_name,
            timestamp=_time(s.timestamp),
            state=s.state,
            idempotency_key=s.idempotency_key,
        )

    # -- the tool-effect ledger -------------------------------------------------------------
    async def record_tool_effect(self, record: ToolEffectRecord) -> None:
        """Record a tool call's status (the latest record per ``tool_call_id`` stands)."""
        record = _record(record, ToolEffectRecord, "record_tool_effect")
        run_id = _text(record.run_id, "ToolEffectRecord.run_id")
        ended = record.ended_at
        event = ToolEffectRecorded(
            tool_call_id=_text(record.tool_call_id, "ToolEffectRecord.tool_call_id"),
            tool_name=_text(record.tool_name, "ToolEffectRecord.tool_name"),
            status=_choice(  # type: ignore[arg-type]  # one of the three
                record.status, ("started", "completed", "failed"), "ToolEffectRecord.status"
            ),
            started_at=_when(record.started_at, "ToolEffectRecord.started_at"),
            ended_at=None if ended is None else _when(ended, "ToolEffectRecord.ended_at"),
            idempotency_key=_opt(record.idempotency_key, "ToolEffectRecord.idempotency_key"),
            effect_summary=_opt(record.effect_summary, "ToolEffectRecord.effect_summary"),
        )
        await self._append(run_id, [event])

    async def get_tool_effect(self, *, run_id: str, tool_call_id: str) -> ToolEffectRecord | None:
        """The tool call's latest record, or None."""
        run_id = _text(run_id, "run_id")
        key = b"t" + _stream(run_id).bytes + h(_text(tool_call_id, "tool_call_id"))
        raw = await self._read(lambda txn: _get(txn, key))
        return None if raw is None else _effect(run_id, _effect_dec.decode(raw).effect)

    async def list_unresolved_tool_effects(self, *, run_id: str) -> list[ToolEffectRecord]:
        """The run's tool calls whose latest record is ``started`` (in flight at a crash)."""
        run_id = _text(run_id, "run_id")
        prefix = b"t" + _stream(run_id).bytes
        rows = await self._read(lambda txn: _scan(txn, prefix))
        stored = sorted((_effect_dec.decode(raw) for _, raw in rows), key=lambda s: s.first)
        return [_effect(run_id, s.effect) for s in stored if s.effect.status == "started"]
