"""Pydantic AI step persistence as events, and the views its step store reads (no framework import).

``eventlog.integrations.pydantic_ai.EventLogStepStore`` writes one stream per step-persistence
run (kind ``"pydantic_ai.run"``, id ``stream_id_for("pydantic_ai.run", run_id)``, the run id in
the stream's metadata): :class:`RunRegistered`, :class:`StepRecorded` (the harness's
``StepEvent``), :class:`SnapshotRecorded` (a ``ContinuableSnapshot``, its messages as
pydantic-ai's JSON) and :class:`ToolEffectRecorded` (a ``ToolEffectRecord``). Times are ISO
8601 strings, as given (their offset kept).

This projector keeps, in the same transaction as those events (keyspace ``pydantic_ai``;
``T`` = the run's stream id, 16 bytes; ``H(x)`` = blake2b-128 of ``x``; ``O`` = the run's
order: ``started_at`` in microseconds since the epoch, offset by 2**63, then the log position
of its registration, 8 + 8 bytes big-endian):

- ``r`` + T → the :class:`StoredRun`
- ``a`` + O + T, ``c`` + H(conversation_id) + O + T, ``p`` + H(parent_run_id) + O + T → ``b""``
  (the run listings, oldest first)
- ``e`` + T + H(idempotency key) → ``b""`` (the step events' keys: a retried append is dropped)
- ``s`` + T + seq → :class:`StoredSnapshotRef` (the retained snapshots, by their event's seq)
- ``y`` + T + H(idempotency key) + seq → ``b""`` (the retained snapshots' keys)
- ``k`` + T → :class:`SnapshotKeys` (the high-water mark of the ``N:...`` snapshot keys)
- ``l`` + T, ``L`` + T → the seq of the newest snapshot, and of the newest ``complete`` one
- ``m`` + T → :class:`SnapshotTip` (the newest snapshot event and its messages' hashes)
- ``t`` + T + H(tool_call_id) → :class:`StoredEffect` (the latest record of each tool call)

A :class:`SnapshotRecorded` carries the store's ``max_snapshots_per_run`` (``keep``): past that
many, the view drops the older snapshots but always keeps the newest and the newest
``complete`` one, as the harness's stores do (the events stay in the log: its history).
A snapshot event holds only the messages its history does not share with the run's previous
snapshot (the ``base`` it names, at most :data:`MAX_DEPTH` deltas deep, then a whole one): a
run's snapshots cost the log about its messages once, not its history once per step.
Deleting a run's stream clears its views in the same transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import ClassVar, Literal

import msgspec

from eventlog.engine.protocols import ProjectionReader, ProjectionTx
from eventlog.model.records import EventRecord, StreamRecord
from eventlog.model.registry import event_type

__all__ = [
    "KEYSPACE",
    "MAX_DEPTH",
    "RUN_KIND",
    "PydanticAIStepsProjector",
    "RunRegistered",
    "SnapshotKeys",
    "SnapshotRecorded",
    "StepRecorded",
    "StoredEffect",
    "StoredRun",
    "StoredSnapshotRef",
    "ToolEffectRecorded",
    "SnapshotTip",
    "h",
    "message_hash",
    "retained",
    "snapshot_key_sequence",
]

#: The stream kind of a step-persistence run.
RUN_KIND = "pydantic_ai.run"
#: The projector's name (its keyspace).
KEYSPACE = "pydantic_ai"
#: How many deltas deep a snapshot may be before the store writes a whole one.
MAX_DEPTH = 16

SnapshotState = Literal["complete", "interrupted"]
EffectStatus = Literal["started", "completed", "failed"]


@event_type("pydantic_ai.run_registered", version=1)
class RunRegistered(msgspec.Struct, frozen=True):
    """A run's lineage (the harness's ``RunRecord``)."""

    run_id: str
    started_at: str
    conversation_id: str | None = None
    parent_run_id: str | None = None
    agent_name: str | None = None
    metadata: dict[str, str] = {}
    registration_id: str | None = None


@event_type("pydantic_ai.step", version=1)
class StepRecorded(msgspec.Struct, frozen=True):
    """A boundary of the run (the harness's ``StepEvent``, without the run id: the stream's)."""

    kind: str
    step_index: int
    timestamp: str
    conversation_id: str | None = None
    parent_run_id: str | None = None
    agent_name: str | None = None
    tool_call_id: str | None = None
    tool_name: str | None = None
    error: str | None = None
    metadata: dict[str, str] = {}
    idempotency_key: str | None = None


@event_type("pydantic_ai.snapshot", version=1)
class SnapshotRecorded(msgspec.Struct, frozen=True):
    """A history the run can resume from, stored as a delta of the run's previous snapshot.

    The history is the first ``shared`` messages of the snapshot at seq ``base`` of the same
    stream (none when ``base`` is None), then ``messages``: each one pydantic-ai's JSON of one
    message. ``keep``: the writing store's ``max_snapshots_per_run`` (None: keep them all).
    """

    step_index: int
    timestamp: str
    state: SnapshotState
    messages: list[bytes]
    base: int | None = None
    shared: int = 0
    conversation_id: str | None = None
    parent_run_id: str | None = None
    agent_name: str | None = None
    idempotency_key: str | None = None
    keep: int | None = None


@event_type("pydantic_ai.tool_effect", version=1)
class ToolEffectRecorded(msgspec.Struct, frozen=True):
    """A tool call's side-effect status (the harness's ``ToolEffectRecord``, run id aside)."""

    tool_call_id: str
    tool_name: str
    status: EffectStatus
    started_at: str
    ended_at: str | None = None
    idempotency_key: str | None = None
    effect_summary: str | None = None


class StoredRun(msgspec.Struct, frozen=True, array_like=True):
    """A run as the view keeps it: the registration and its order key."""

    run: RunRegistered
    order: bytes


class StoredSnapshotRef(msgspec.Struct, frozen=True, array_like=True):
    """A retained snapshot: its state and idempotency key (the rest is its event)."""

    state: SnapshotState
    key: str | None


class SnapshotKeys(msgspec.Struct, frozen=True, array_like=True):
    """The highest ``N`` of the run's ``N:...`` snapshot keys, and the keys saved at it."""

    sequence: int
    keys: list[str]


class SnapshotTip(msgspec.Struct, frozen=True, array_like=True):
    """The run's newest snapshot event: its seq, how many deltas deep it is, its messages' hashes.

    ``hashes``: :func:`message_hash` of each message of its history, concatenated (16 bytes
    each); the next snapshot shares the prefix whose hashes match.
    """

    seq: int
    depth: int
    hashes: bytes


class StoredEffect(msgspec.Struct, frozen=True, array_like=True):
    """A tool call's latest record; ``first``: the seq of its first record (listing order)."""

    first: int
    effect: ToolEffectRecorded


_enc = msgspec.msgpack.Encoder()
_run_dec = msgspec.msgpack.Decoder(StoredRun)
_ref_dec = msgspec.msgpack.Decoder(StoredSnapshotRef)
_keys_dec = msgspec.msgpack.Decoder(SnapshotKeys)
_effect_dec = msgspec.msgpack.Decoder(StoredEffect)
_tip_dec = msgspec.msgpack.Decoder(SnapshotTip)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def message_hash(message: bytes) -> bytes:
    """blake2b-128 of one message's JSON (a snapshot shares the prefix whose hashes match)."""
    return hashlib.blake2b(message, digest_size=16).digest()


def _read_tip(reader: ProjectionReader, t: bytes) -> SnapshotTip | None:
    """The run's :class:`SnapshotTip` (key ``m`` + T), or None."""
    raw = reader.get(b"m" + t)
    return None if raw is None else _tip_dec.decode(raw)


def h(text: str) -> bytes:
    """``H(text)``: blake2b-128 of the text (ids in keys have a fixed size)."""
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def _order(started_at: str, position: int) -> bytes:
    when = datetime.fromisoformat(started_at)
    if when.tzinfo is None:  # a naive time sorts as UTC
        when = when.replace(tzinfo=UTC)
    delta = when - _EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return (micros + (1 << 63)).to_bytes(8, "big") + position.to_bytes(8, "big")


def snapshot_key_sequence(key: str) -> int | None:
    """The ``N`` of a snapshot key ``N:...`` (the harness's keys), or None."""
    prefix, separator, _ = key.partition(":")
    if not separator:
        return None
    try:
        value = int(prefix)
    except ValueError:
        return None
    return value if value >= 0 else None


def retained(entries: Sequence[tuple[int, str]], keep: int) -> set[int]:
    """The seqs to keep of ``(seq, state)`` entries: the newest ``keep``, newest complete."""
    by_seq = sorted(entries)
    kept = {seq for seq, _ in by_seq[-keep:]}
    complete = [seq for seq, state in by_seq if state == "complete"]
    if complete:
        kept.add(complete[-1])
    return kept


def _seq(seq: int) -> bytes:
    return seq.to_bytes(8, "big")


class PydanticAIStepsProjector:
    """Maintains the step-persistence views (see the module docstring)."""

    name: ClassVar[str] = KEYSPACE
    version: ClassVar[int] = 1
    event_types: ClassVar[frozenset[str]] = frozenset(
        {
            "pydantic_ai.run_registered",
            "pydantic_ai.step",
            "pydantic_ai.snapshot",
            "pydantic_ai.tool_effect",
        }
    )

    def apply(self, tx: ProjectionTx, record: EventRecord) -> None:
        t = record.run_id.bytes
        event = record.event
        if isinstance(event, StepRecorded):
            if event.idempotency_key is not None:
                tx.put(b"e" + t + h(event.idempotency_key), b"")
        elif isinstance(event, SnapshotRecorded):
            _put_snapshot(tx, t, record.seq, event)
        elif isinstance(event, ToolEffectRecorded):
            key = b"t" + t + h(event.tool_call_id)
            old = tx.get(key)
            first = record.seq if old is None else _effect_dec.decode(old).first
            tx.put(key, _enc.encode(StoredEffect(first, event)))
        elif isinstance(event, RunRegistered):
            _put_run(tx, t, record.position, event)

    def on_stream_deleted(self, tx: ProjectionTx, stream: StreamRecord) -> None:
        """A run's stream was deleted: so are its views."""
        if stream.kind != RUN_KIND:
            return
        t = stream.id.bytes
        raw = tx.get(b"r" + t)
        if raw is not None:
            for key in _listing_keys(t, _run_dec.decode(raw)):
                tx.delete(key)
            tx.delete(b"r" + t)
        for prefix in (b"e", b"s", b"y", b"t"):
            for key, _ in list(tx.scan(prefix + t)):
                tx.delete(key)
        for prefix in (b"k", b"l", b"L", b"m"):
            tx.delete(prefix + t)

    def query(self, reader: ProjectionReader) -> ProjectionReader:
        """``store.projection("pydantic_ai")``: the keyspace's reader (keys as above)."""
        return reader


def _listing_keys(t: bytes, stored: StoredRun) -> list[bytes]:
    run = stored.run
    keys = [b"a" + stored.order + t]
    if run.conversation_id is not None:
        keys.append(b"c" + h(run.conversation_id) + stored.order + t)
    if run.parent_run_id is not None:
        keys.append(b"p" + h(run.parent_run_id) + stored.order + t)
    return keys


def _put_run(tx: ProjectionTx, t: bytes, position: int, event: RunRegistered) -> None:
    old = tx.get(b"r" + t)
    if old is not None:  # the store refuses a second registration; an import may not
        for key in _listing_keys(t, _run_dec.decode(old)):
            tx.delete(key)
    stored = StoredRun(event, _order(event.started_at, position))
    tx.put(b"r" + t, _enc.encode(stored))
    for key in _listing_keys(t, stored):
        tx.put(key, b"")


def _put_snapshot(tx: ProjectionTx, t: bytes, seq: int, event: SnapshotRecorded) -> None:
    key = event.idempotency_key
    tip = _read_tip(tx, t)
    own = b"".join(message_hash(m) for m in event.messages)
    if event.base is None:
        tx.put(b"m" + t, _enc.encode(SnapshotTip(seq, 0, own)))
    elif tip is not None and tip.seq == event.base and len(tip.hashes) >= 16 * event.shared:
        hashes = tip.hashes[: 16 * event.shared] + own
        tx.put(b"m" + t, _enc.encode(SnapshotTip(seq, tip.depth + 1, hashes)))
    else:  # a base that is not the tip (not written by the store): the next one is whole
        tx.put(b"m" + t, _enc.encode(SnapshotTip(seq, 1 << 30, b"")))
    tx.put(b"s" + t + _seq(seq), _enc.encode(StoredSnapshotRef(event.state, key)))
    tx.put(b"l" + t, _seq(seq))
    if event.state == "complete":
        tx.put(b"L" + t, _seq(seq))
    if key is not None:
        tx.put(b"y" + t + h(key) + _seq(seq), b"")
        sequence = snapshot_key_sequence(key)
        if sequence is not None:
            raw = tx.get(b"k" + t)
            high = None if raw is None else _keys_dec.decode(raw)
            if high is None or sequence > high.sequence:
                tx.put(b"k" + t, _enc.encode(SnapshotKeys(sequence, [key])))
            elif sequence == high.sequence and key not in high.keys:
                tx.put(b"k" + t, _enc.encode(SnapshotKeys(sequence, [*high.keys, key])))
    if event.keep is None:
        return
    refs = {int.from_bytes(k[17:], "big"): _ref_dec.decode(v) for k, v in tx.scan(b"s" + t)}
    if len(refs) <= event.keep:
        return
    kept = retained([(s, ref.state) for s, ref in refs.items()], event.keep)
    for s, ref in refs.items():
        if s not in kept:
            tx.delete(b"s" + t + _seq(s))
            if ref.key is not None:
                tx.delete(b"y" + t + h(ref.key) + _seq(s))
