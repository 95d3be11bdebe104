"""LangGraph checkpoints as events, and the views a checkpointer reads (no langgraph import).

``eventlog.integrations.langgraph.EventLogSaver`` writes one stream per LangGraph thread
(kind ``"langgraph.thread"``). A ``put`` appends, in one atomic batch, a
:class:`ChannelBlobSaved` for each channel whose version changed (only those: storage grows
with the deltas, never a full copy of the state per step) and a :class:`CheckpointSaved`;
``put_writes`` appends a :class:`WritesSaved`. ``prune(strategy="keep_latest")`` and
``delete_for_runs`` append a :class:`CheckpointsRemoved`; ``prune(strategy="delete")``
deletes the thread's stream; ``delete_thread`` appends a :class:`ThreadDeleted` to the
tombstone stream (kind ``"langgraph.tombstones"``) and then deletes the thread's stream.
Values are opaque bytes written by the saver's serializer, with its type tag.

This projector keeps, in the same transaction as those events (keyspace ``langgraph``;
``T`` = the thread's stream id, 16 bytes; ``N`` = blake2b-128 of the namespace;
``C`` = the checkpoint id with every byte inverted, then ``0xff``, so a forward scan is
newest first):

- ``c`` + T + N + C → the :class:`StoredCheckpoint` (the :class:`CheckpointSaved`'s fields
  as a msgpack array; lookup by checkpoint id; the first key under ``c`` + T + N is the
  latest checkpoint of that (thread, namespace))
- ``b`` + T + N + len(channel) (2 bytes) + channel + msgpack(version) → the
  :class:`StoredBlob` (the value's type tag and bytes: the rest is in the key)
- ``w`` + T + N + C + blake2b-128(task id) + idx → :class:`StoredWrite`
- ``r`` + blake2b-128(run id) + T + N + C → ``b""`` (the checkpoints of a run, across threads)
- ``x`` + T → the deleted thread's id (a tombstone: later events for it, and recreating its
  stream, are refused with ``ThreadDeletedError``)

The values are msgpack arrays decoded by reused decoders (view version 2; version 1 kept
the events' own maps): a read decodes no field names. Opening a store whose view is of an
older version rebuilds it from the log.

Deleting a thread's stream (``delete_thread``, ``prune(strategy="delete")``, or
``store.delete_stream``) clears its views in the same transaction.

A checkpoint is stored once per id (a second ``put`` of the same id replaces it); a pending
write is stored once per (checkpoint, task, idx): a repeated regular write (idx ≥ 0) is
ignored, a special one (idx < 0: error, interrupt, …) replaces the earlier value, as
LangGraph's own savers do. Removing checkpoints drops their writes; ``prune`` also drops
every blob no remaining checkpoint of the namespace refers to (``delete_for_runs`` keeps the
blobs: a graph still running on the thread may refer to them in its next checkpoint).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterator, Sequence
from typing import ClassVar, Protocol, TypeVar
from uuid import UUID

import msgspec

from eventlog.engine.protocols import ProjectionReader, ProjectionTx
from eventlog.errors import ThreadDeletedError
from eventlog.model.records import EventRecord, StreamRecord
from eventlog.model.registry import event_type

__all__ = [
    "THREAD_KIND",
    "TOMBSTONE_KIND",
    "ChannelBlobSaved",
    "CheckpointRef",
    "CheckpointSaved",
    "CheckpointsQuery",
    "CheckpointsRemoved",
    "LangGraphCheckpointsProjector",
    "StoredBlob",
    "StoredCheckpoint",
    "StoredWrite",
    "ThreadDeleted",
    "Version",
    "WriteItem",
    "WritesSaved",
    "checkpoint_key",
    "namespace_key",
]

#: The stream kind of a LangGraph thread (its id: ``stream_id_for(THREAD_KIND, thread_id)``).
THREAD_KIND = "langgraph.thread"
#: The stream kind of the one stream that records deleted threads.
TOMBSTONE_KIND = "langgraph.tombstones"

#: A channel version as LangGraph hands it out (the saver's ``get_next_version``).
Version = str | int | float


@event_type("langgraph.blob", version=1)
class ChannelBlobSaved(msgspec.Struct, frozen=True):
    """A channel's value at a new version (``type`` ``"empty"``: the channel has no value)."""

    checkpoint_ns: str
    channel: str
    version: Version
    type: str
    value: bytes


@event_type("langgraph.checkpoint", version=1)
class CheckpointSaved(msgspec.Struct, frozen=True):
    """A checkpoint without its channel values (those are blobs, by ``channel_versions``).

    ``checkpoint`` is the serialized checkpoint minus ``channel_values`` and
    ``channel_versions``; ``metadata`` the serialized metadata. ``run_id`` is the metadata's
    ``run_id``, kept readable for ``delete_for_runs``.
    """

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    parent_checkpoint_id: str | None
    checkpoint_type: str
    checkpoint: bytes
    metadata_type: str
    metadata: bytes
    channel_versions: dict[str, Version]
    run_id: str | None = None


class WriteItem(msgspec.Struct, frozen=True, array_like=True):
    """One pending write of a task: its index (negative for special channels) and value."""

    idx: int
    channel: str
    type: str
    value: bytes


@event_type("langgraph.writes", version=1)
class WritesSaved(msgspec.Struct, frozen=True):
    """A task's pending writes against a checkpoint."""

    checkpoint_ns: str
    checkpoint_id: str
    task_id: str
    task_path: str
    writes: list[WriteItem]


class CheckpointRef(msgspec.Struct, frozen=True, array_like=True):
    """A checkpoint of a thread: its namespace and id."""

    checkpoint_ns: str
    checkpoint_id: str


@event_type("langgraph.checkpoints_removed", version=1)
class CheckpointsRemoved(msgspec.Struct, frozen=True):
    """Checkpoints removed from the thread's views (``reason``: ``prune``, ``delete_for_runs``)."""

    checkpoints: list[CheckpointRef]
    reason: str


@event_type("langgraph.thread_deleted", version=1)
class ThreadDeleted(msgspec.Struct, frozen=True):
    """A thread was deleted; it stays deleted (appended to the tombstone stream)."""

    thread_id: str
    stream_id: UUID


class StoredWrite(msgspec.Struct, frozen=True, array_like=True):
    """A pending write as the view keeps it."""

    task_id: str
    task_path: str
    idx: int
    channel: str
    type: str
    value: bytes


class StoredCheckpoint(CheckpointSaved, frozen=True, array_like=True):
    """A checkpoint as the view keeps it: :class:`CheckpointSaved`'s fields, as an array."""

    def saved(self, **changes: object) -> CheckpointSaved:
        """The :class:`CheckpointSaved` event of this checkpoint (with ``changes``)."""
        event = CheckpointSaved(*msgspec.structs.astuple(self))
        return msgspec.structs.replace(event, **changes) if changes else event


class StoredBlob(msgspec.Struct, frozen=True, array_like=True):
    """A channel's value as the view keeps it (namespace, channel and version: in the key)."""

    type: str
    value: bytes


_enc = msgspec.msgpack.Encoder()
_checkpoint_dec = msgspec.msgpack.Decoder(StoredCheckpoint)
_blob_dec = msgspec.msgpack.Decoder(StoredBlob)
_write_dec = msgspec.msgpack.Decoder(StoredWrite)
_version_enc = msgspec.msgpack.Encoder()
_INVERT = bytes(255 - i for i in range(256))


def _h(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


_ns_hash = functools.lru_cache(maxsize=1024)(_h)  # a graph has few namespaces


def namespace_key(stream_id: UUID, checkpoint_ns: str) -> bytes:
    """``T + N``: the key part of a (thread, namespace)."""
    return stream_id.bytes + _ns_hash(checkpoint_ns)


def checkpoint_key(checkpoint_id: str) -> bytes:
    """``C``: the checkpoint id's bytes inverted, then ``0xff`` (newest first in key order)."""
    return checkpoint_id.encode().translate(_INVERT) + b"\xff"


def _blob_key(tn: bytes, channel: str, version: Version) -> bytes:
    name = channel.encode()
    return b"b" + tn + len(name).to_bytes(2, "big") + name + _version_enc.encode(version)


def _write_key(tn: bytes, ckey: bytes, task_id: str, idx: int) -> bytes:
    return b"w" + tn + ckey + _h(task_id) + (idx + (1 << 63)).to_bytes(8, "big")


def _run_key(run_id: str, tn: bytes, ckey: bytes) -> bytes:
    return b"r" + _h(run_id) + tn + ckey


class LangGraphCheckpointsProjector:
    """Maintains the LangGraph checkpoint views (see the module docstring)."""

    name: ClassVar[str] = "langgraph"
    version: ClassVar[int] = 2
    event_types: ClassVar[frozenset[str]] = frozenset(
        {
            "langgraph.blob",
            "langgraph.checkpoint",
            "langgraph.writes",
            "langgraph.checkpoints_removed",
            "langgraph.thread_deleted",
        }
    )

    def apply(self, tx: ProjectionTx, record: EventRecord) -> None:
        self.apply_batch(tx, (record,))

    def apply_batch(self, tx: ProjectionTx, records: Sequence[EventRecord]) -> None:
        """One append's records (one stream): the tombstone is checked once."""
        first = records[0].event
        if isinstance(first, ThreadDeleted):
            for record in records:
                event = record.event
                if isinstance(event, ThreadDeleted):
                    _delete_thread(tx, event)
            return
        stream = records[0].run_id
        deleted = tx.get(b"x" + stream.bytes)
        if deleted is not None:
            raise ThreadDeletedError(deleted.decode(), stream)
        for record in records:
            event = record.event
            if isinstance(event, ChannelBlobSaved):
                tn = namespace_key(stream, event.checkpoint_ns)
                blob = StoredBlob(event.type, event.value)
                tx.put(_blob_key(tn, event.channel, event.version), _enc.encode(blob))
            elif isinstance(event, CheckpointSaved):
                _put_checkpoint(tx, stream, event)
            elif isinstance(event, WritesSaved):
                _put_writes(tx, stream, event)
            elif isinstance(event, CheckpointsRemoved):
                _remove(tx, stream, event.checkpoints, blobs=event.reason == "prune")

    def on_stream_created(self, tx: ProjectionTx, stream: StreamRecord) -> None:
        """Refuse to recreate the stream of a deleted thread (nothing is written)."""
        if stream.kind == THREAD_KIND:
            deleted = tx.get(b"x" + stream.id.bytes)
            if deleted is not None:
                raise ThreadDeletedError(deleted.decode(), stream.id)

    def on_stream_deleted(self, tx: ProjectionTx, stream: StreamRecord) -> None:
        """A thread's stream was deleted: so are its views (its tombstone, if any, stays).

        Deleting the tombstone stream itself forgets every tombstone (as a rebuild would).
        """
        if stream.kind == THREAD_KIND:
            _clear_thread(tx, stream.id)
        elif stream.kind == TOMBSTONE_KIND:
            for key, _ in list(tx.scan(b"x")):
                tx.delete(key)

    def query(self, reader: ProjectionReader) -> CheckpointsQuery:
        """The query object ``store.projection("langgraph")`` returns."""
        return CheckpointsQuery(reader)


def _put_checkpoint(tx: ProjectionTx, stream: UUID, event: CheckpointSaved) -> None:
    tn = namespace_key(stream, event.checkpoint_ns)
    ckey = checkpoint_key(event.checkpoint_id)
    key = b"c" + tn + ckey
    old = tx.get(key)
    if old is not None:
        old_run = _checkpoint_dec.decode(old).run_id
        if old_run is not None and old_run != event.run_id:
            tx.delete(_run_key(old_run, tn, ckey))
    tx.put(key, _enc.encode(StoredCheckpoint(*msgspec.structs.astuple(event))))
    if event.run_id is not None:
        tx.put(_run_key(event.run_id, tn, ckey), b"")


def _put_writes(tx: ProjectionTx, stream: UUID, event: WritesSaved) -> None:
    tn = namespace_key(stream, event.checkpoint_ns)
    ckey = checkpoint_key(event.checkpoint_id)
    for item in event.writes:
        key = _write_key(tn, ckey, event.task_id, item.idx)
        if item.idx >= 0 and tx.get(key) is not None:
            continue  # a retried task: the first write stands
        stored = StoredWrite(
            event.task_id, event.task_path, item.idx, item.channel, item.type, item.value
        )
        tx.put(key, _enc.encode(stored))


def _remove(tx: ProjectionTx, stream: UUID, refs: Sequence[CheckpointRef], *, blobs: bool) -> None:
    """Drop the checkpoints and their writes; with ``blobs``, the blobs no longer used too.

    Only ``prune`` drops blobs: a graph still running on the thread (``delete_for_runs`` of
    another run, say) may put a checkpoint that refers to a version written before.
    """
    namespaces: set[str] = set()
    for ref in refs:
        tn = namespace_key(stream, ref.checkpoint_ns)
        ckey = checkpoint_key(ref.checkpoint_id)
        raw = tx.get(b"c" + tn + ckey)
        if raw is None:
            continue
        run_id = _checkpoint_dec.decode(raw).run_id
        if run_id is not None:
            tx.delete(_run_key(run_id, tn, ckey))
        tx.delete(b"c" + tn + ckey)
        for key, _ in list(tx.scan(b"w" + tn + ckey)):
            tx.delete(key)
        namespaces.add(ref.checkpoint_ns)
    for ns in namespaces if blobs else ():  # blobs no remaining checkpoint refers to
        tn = namespace_key(stream, ns)
        used = {
            _blob_key(tn, channel, version)
            for _, raw in tx.scan(b"c" + tn)
            for channel, version in _checkpoint_dec.decode(raw).channel_versions.items()
        }
        for key, _ in list(tx.scan(b"b" + tn)):
            if key not in used:
                tx.delete(key)


def _delete_thread(tx: ProjectionTx, event: ThreadDeleted) -> None:
    _clear_thread(tx, event.stream_id)
    tx.put(b"x" + event.stream_id.bytes, event.thread_id.encode())


def _clear_thread(tx: ProjectionTx, stream: UUID) -> None:
    t = stream.bytes
    for key, raw in list(tx.scan(b"c" + t)):
        run_id = _checkpoint_dec.decode(raw).run_id
        if run_id is not None:
            tx.delete(_run_key(run_id, key[1:33], key[33:]))
        tx.delete(key)
    for prefix in (b"b", b"w"):
        for key, _ in list(tx.scan(prefix + t)):
            tx.delete(key)


# -- reads ------------------------------------------------------------------------------------

R = TypeVar("R")


class SnapshotReader(ProjectionReader, Protocol):
    """A projection reader that can run several reads in one snapshot."""

    def read(self, fn: Callable[[ProjectionReader], R]) -> R:
        """Run ``fn(reader)`` in one read snapshot of the keyspace."""
        ...


class Loaded(msgspec.Struct, frozen=True):
    """A checkpoint as read from the views: the checkpoint, its blobs and its pending writes.

    ``blobs`` maps each channel whose version has a stored value to that value.
    """

    checkpoint: StoredCheckpoint
    blobs: dict[str, StoredBlob]
    writes: list[StoredWrite]

    def blob_events(self) -> list[ChannelBlobSaved]:
        """The :class:`ChannelBlobSaved` events that wrote this checkpoint's blobs."""
        cp = self.checkpoint
        return [
            ChannelBlobSaved(cp.checkpoint_ns, ch, cp.channel_versions[ch], b.type, b.value)
            for ch, b in self.blobs.items()
        ]


def _load(
    reader: ProjectionReader,
    stream: UUID,
    cp: StoredCheckpoint,
    seen: dict[bytes, StoredBlob | None] | None = None,
) -> Loaded:
    """The checkpoint with its blobs and writes.

    ``seen`` keeps the blobs one listing has read: the checkpoints of a thread share the
    versions of the channels that did not change.
    """
    tn = namespace_key(stream, cp.checkpoint_ns)
    blobs: dict[str, StoredBlob] = {}
    get, decode = reader.get, _blob_dec.decode
    for channel, version in cp.channel_versions.items():
        key = _blob_key(tn, channel, version)
        if seen is not None and key in seen:
            blob = seen[key]
        else:
            raw = get(key)
            blob = None if raw is None else decode(raw)
            if seen is not None:
                seen[key] = blob
        if blob is not None:
            blobs[channel] = blob
    writes = [
        _write_dec.decode(v) for _, v in reader.scan(b"w" + tn + checkpoint_key(cp.checkpoint_id))
    ]
    if len(writes) > 1:
        writes.sort(key=lambda w: (w.task_path, w.task_id, w.idx))
    return Loaded(cp, blobs, writes)


class CheckpointsQuery:
    """Reads of the LangGraph views; each method reads one snapshot.

    >>> import tempfile
    >>> from eventlog import RunStore
    >>> with RunStore.open(tempfile.mkdtemp() + "/s") as store:
    ...     store.projection("langgraph").latest(UUID(int=1), "") is None
    True
    """

    def __init__(self, reader: ProjectionReader) -> None:
        self._reader = reader

    def _snapshot(self, fn: Callable[[ProjectionReader], R]) -> R:
        read = getattr(self._reader, "read", None)
        return read(fn) if callable(read) else fn(self._reader)

    def latest(self, stream: UUID, checkpoint_ns: str) -> Loaded | None:
        """The newest checkpoint of (thread, namespace), or None."""

        def work(reader: ProjectionReader) -> Loaded | None:
            for _, raw in reader.scan(b"c" + namespace_key(stream, checkpoint_ns)):
                return _load(reader, stream, _checkpoint_dec.decode(raw))
            return None

        return self._snapshot(work)

    def get(self, stream: UUID, checkpoint_ns: str, checkpoint_id: str) -> Loaded | None:
        """The checkpoint with this id in (thread, namespace), or None."""

        def work(reader: ProjectionReader) -> Loaded | None:
            key = b"c" + namespace_key(stream, checkpoint_ns) + checkpoint_key(checkpoint_id)
            raw = reader.get(key)
            return None if raw is None else _load(reader, stream, _checkpoint_dec.decode(raw))

        return self._snapshot(work)

    def search(
        self,
        stream: UUID | None,
        checkpoint_ns: str | None,
        *,
        accept: Callable[[StoredCheckpoint], bool],
        limit: int | None = None,
        before: str | None = None,
    ) -> list[Loaded]:
        """Checkpoints newest first (by id) that ``accept`` takes, up to ``limit``.

        ``stream`` None: every thread; ``checkpoint_ns`` None: every namespace of the thread.
        ``before``: only checkpoints whose id sorts before it. One snapshot; with a thread and
        a namespace the scan stops after ``limit`` matches, and the newer checkpoints that
        ``before`` skips are passed over by key, without decoding them.
        """

        def work(reader: ProjectionReader) -> list[Loaded]:
            if stream is not None and checkpoint_ns is not None:
                prefix = b"c" + namespace_key(stream, checkpoint_ns)
                after = None if before is None else prefix + checkpoint_key(before)
                found: list[Loaded] = []
                seen: dict[bytes, StoredBlob | None] = {}
                for key, raw in reader.scan(prefix):
                    if after is not None and key <= after:
                        continue  # newer than `before` (or it)
                    if limit is not None and len(found) >= limit:
                        break
                    cp = _checkpoint_dec.decode(raw)
                    if accept(cp):
                        found.append(_load(reader, stream, cp, seen))
                return found
            prefix = b"c" if stream is None else b"c" + stream.bytes
            chosen: list[tuple[UUID, StoredCheckpoint]] = []
            for key, raw in reader.scan(prefix):
                cp = _checkpoint_dec.decode(raw)
                if checkpoint_ns is None or cp.checkpoint_ns == checkpoint_ns:
                    chosen.append((UUID(bytes=key[1:17]), cp))
            chosen.sort(key=lambda item: item[1].checkpoint_id, reverse=True)
            out: list[Loaded] = []
            shared: dict[bytes, StoredBlob | None] = {}
            for sid, cp in chosen:
                if limit is not None and len(out) >= limit:
                    break
                if accept(cp):
                    out.append(_load(reader, sid, cp, shared))
            return out

        return self._snapshot(work)

    def refs(self, stream: UUID) -> list[CheckpointRef]:
        """Every checkpoint of the thread, newest first within each namespace."""
        return [
            CheckpointRef(cp.checkpoint_ns, cp.checkpoint_id)
            for cp in self._decoded(b"c" + stream.bytes)
        ]

    def _decoded(self, prefix: bytes) -> Iterator[StoredCheckpoint]:
        for _, raw in self._reader.scan(prefix):
            yield _checkpoint_dec.decode(raw)

    def runs(self, run_ids: Sequence[str]) -> dict[UUID, list[CheckpointRef]]:
        """The checkpoints whose metadata names one of ``run_ids``, by thread stream."""

        def work(reader: ProjectionReader) -> dict[UUID, list[CheckpointRef]]:
            out: dict[UUID, list[CheckpointRef]] = {}
            for run_id in run_ids:
                for key, _ in reader.scan(b"r" + _h(run_id)):
                    tn, ckey = key[17:49], key[49:]
                    raw = reader.get(b"c" + tn + ckey)
                    if raw is not None:
                        cp = _checkpoint_dec.decode(raw)
                        ref = CheckpointRef(cp.checkpoint_ns, cp.checkpoint_id)
                        out.setdefault(UUID(bytes=tn[:16]), []).append(ref)
            return out

        return self._snapshot(work)

    def has_writes(
        self, stream: UUID, checkpoint_ns: str, checkpoint_id: str, task_id: str, idxs: list[int]
    ) -> bool:
        """Whether every (task, idx) write of the checkpoint is stored already."""
        tn = namespace_key(stream, checkpoint_ns)
        ckey = checkpoint_key(checkpoint_id)

        def work(reader: ProjectionReader) -> bool:
            return all(reader.get(_write_key(tn, ckey, task_id, idx)) is not None for idx in idxs)

        return self._snapshot(work)

    def deleted(self, stream: UUID) -> str | None:
        """The thread id if the thread was deleted (its tombstone), else None."""
        raw = self._reader.get(b"x" + stream.bytes)
        return None if raw is None else raw.decode()

    def thread(self, stream: UUID) -> list[Loaded]:
        """Every checkpoint of the thread with its blobs and writes, oldest first."""

        def work(reader: ProjectionReader) -> list[Loaded]:
            loaded = [
                _load(reader, stream, _checkpoint_dec.decode(raw))
                for _, raw in reader.scan(b"c" + stream.bytes)
            ]
            loaded.sort(key=lambda item: item.checkpoint.checkpoint_id)
            return loaded

        return self._snapshot(work)
