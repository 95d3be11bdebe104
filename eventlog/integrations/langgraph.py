"""A LangGraph checkpointer on the event store: ``EventLogSaver(store)``.

One stream per LangGraph thread (kind ``"langgraph.thread"``, id
``eventlog.stream_id_for("langgraph.thread", thread_id)``). A ``put`` appends, in one atomic
batch, a blob event for each channel whose version changed and the checkpoint event (without
its channel values); ``put_writes`` appends the task's pending writes. The built-in
``langgraph`` projector (``projections/langgraph_checkpoints.py``) keeps, in the same
transaction, the latest checkpoint per (thread, namespace), the lookup by checkpoint id and
the blobs by (channel, version), so a read is one snapshot of a few keys.

Needs the optional extra: ``pip install 'agent-eventlog[langgraph]'``.

>>> import tempfile
>>> from eventlog import RunStore
>>> from langgraph.graph import StateGraph, START, END
>>> from typing_extensions import TypedDict
>>> class State(TypedDict):
...     count: int
>>> builder = StateGraph(State)
>>> _ = builder.add_node("inc", lambda s: {"count": s["count"] + 1})
>>> _ = builder.add_edge(START, "inc")
>>> _ = builder.add_edge("inc", END)
>>> with RunStore.open(tempfile.mkdtemp() + "/store") as store:
...     graph = builder.compile(checkpointer=EventLogSaver(store))
...     config = {"configurable": {"thread_id": "t-1"}}
...     graph.invoke({"count": 1}, config)["count"], graph.get_state(config).values
(2, {'count': 2})
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast
from uuid import UUID

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from eventlog.engine.lineage import forks_of
from eventlog.errors import StreamNotFound, ThreadDeletedError
from eventlog.integrations.keyspace import KeyspaceSnapshots
from eventlog.integrations.stream_writes import acommit, append_plan, both_stores, commit
from eventlog.model.events import AnyEvent
from eventlog.model.records import StreamRecord, stream_id_for
from eventlog.storage.kv import KVTxn
from eventlog.store.async_run_store import AsyncRunStore
from eventlog.store.run_store import RunStore
from projections.langgraph_checkpoints import (
    THREAD_KIND,
    TOMBSTONE_KIND,
    ChannelBlobSaved,
    CheckpointSaved,
    CheckpointsQuery,
    CheckpointsRemoved,
    Loaded,
    StoredCheckpoint,
    ThreadDeleted,
    WriteItem,
    WritesSaved,
)

__all__ = ["EventLogSaver", "ThreadDeletedError"]

#: The one stream that records deleted threads.
TOMBSTONES = stream_id_for(TOMBSTONE_KIND, "tombstones")
_MAX_ID = 256  # bytes of a thread, namespace or checkpoint id in the views' keys
_MAX_CHANNEL = 200  # bytes of a channel name, and of a str version (a blob's key holds both)


@functools.lru_cache(maxsize=4096)
def _stream(thread_id: str) -> UUID:
    """The thread's stream id (a uuid5 of its name: cached, a graph asks for it every step)."""
    return stream_id_for(THREAD_KIND, thread_id)


def _text(value: object, what: str, *, empty: bool = False, limit: int = _MAX_ID) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and what == "thread_id":
        value = str(value)  # LangGraph's own savers accept int thread ids
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__}: {value!r}")
    if not value and not empty:
        raise ValueError(f"{what} must not be empty")
    size = len(value.encode())
    if size > limit:
        raise ValueError(f"{what} is {size} bytes; keep it at most {limit}")
    if "\x00" in value:
        raise ValueError(f"{what} {value!r} contains a NUL character; remove it")
    return value


def _version(channel: str, version: object) -> str | int | float:
    if isinstance(version, bool) or not isinstance(version, str | int | float):
        raise TypeError(
            f"put: the version of channel {channel!r} must be a str, int or float (what "
            f"get_next_version returns), got {type(version).__name__}: {version!r}"
        )
    if isinstance(version, str):
        _text(version, f"the version of channel {channel!r}", limit=_MAX_CHANNEL)
    return version


def _configurable(config: object, what: str) -> Mapping[str, Any]:
    conf = config.get("configurable") if isinstance(config, dict | Mapping) else None
    if not isinstance(conf, dict | Mapping) or "thread_id" not in conf:
        raise ValueError(
            f"{what}: config needs config['configurable']['thread_id'], got {config!r}; "
            "pass {'configurable': {'thread_id': '...'}}"
        )
    return conf


class EventLogSaver(BaseCheckpointSaver[str]):
    """A LangGraph ``BaseCheckpointSaver`` over an open ``RunStore`` or ``AsyncRunStore``.

    Sync methods (``graph.invoke``) and async ones (``graph.ainvoke``) work with either store:
    an ``AsyncRunStore``'s writes never block the event loop. ``serde`` defaults to
    LangGraph's ``JsonPlusSerializer``. A deleted thread stays deleted: a later write to it
    raises :class:`~eventlog.errors.ThreadDeletedError` and writes nothing.

    >>> from eventlog import RunStore
    >>> store = RunStore.in_memory()
    >>> saver = EventLogSaver(store)
    >>> saver.get_tuple({"configurable": {"thread_id": "nobody"}}) is None
    True
    >>> store.close()
    """

    def __init__(
        self, store: RunStore | AsyncRunStore, *, serde: SerializerProtocol | None = None
    ) -> None:
        self._store, self._astore = both_stores(store, "EventLogSaver")
        super().__init__(serde=serde)
        self._views = CheckpointsQuery(KeyspaceSnapshots(self._store, "langgraph"))

    # -- building events and tuples -------------------------------------------------------
    def _dumps(self, value: object) -> tuple[str, bytes]:
        """``serde.dumps_typed(value)``, checked: a ``(str, bytes)`` pair."""
        type_, data = self.serde.dumps_typed(value)
        if not isinstance(type_, str) or not isinstance(data, bytes):
            raise TypeError(
                f"the serializer {type(self.serde).__name__}.dumps_typed returned "
                f"({type(type_).__name__}, {type(data).__name__}); it must return (str, bytes)"
            )
        return type_, data

    def _put_events(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> tuple[str, list[AnyEvent], RunnableConfig]:
        conf = _configurable(config, "put")
        thread_id = _text(conf["thread_id"], "thread_id")
        ns = _text(conf.get("checkpoint_ns", ""), "checkpoint_ns", empty=True)
        parent = conf.get("checkpoint_id")
        if parent is not None:
            parent = _text(parent, "parent checkpoint_id")
        if not isinstance(checkpoint, Mapping) or "id" not in checkpoint:
            raise TypeError(
                f"put: checkpoint must be a Checkpoint dict with an 'id', got {checkpoint!r}"
            )
        if not isinstance(new_versions, Mapping):
            raise TypeError(f"put: new_versions must be a dict, got {type(new_versions).__name__}")
        checkpoint_id = _text(checkpoint["id"], "checkpoint id")
        rest: dict[str, Any] = dict(checkpoint)
        values: dict[str, Any] = rest.pop("channel_values", None) or {}
        versions = {
            _text(c, "channel name", limit=_MAX_CHANNEL): _version(c, v)
            for c, v in (rest.pop("channel_versions", None) or {}).items()
        }
        events: list[AnyEvent] = []
        for channel, version in new_versions.items():
            channel = _text(channel, "channel name", limit=_MAX_CHANNEL)
            version = _version(channel, version)
            type_, data = self._dumps(values[channel]) if channel in values else ("empty", b"")
            events.append(ChannelBlobSaved(ns, channel, version, type_, data))
        md = get_serializable_checkpoint_metadata(config, metadata)
        run_id = md.get("run_id")
        cp_type, cp_data = self._dumps(rest)
        md_type, md_data = self._dumps(md)
        events.append(
            CheckpointSaved(
                thread_id=thread_id,
                checkpoint_ns=ns,
                checkpoint_id=checkpoint_id,
                parent_checkpoint_id=parent,
                checkpoint_type=cp_type,
                checkpoint=cp_data,
                metadata_type=md_type,
                metadata=md_data,
                channel_versions=versions,
                run_id=None if run_id is None else str(run_id),
            )
        )
        out: RunnableConfig = {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": ns,
                "checkpoint_id": checkpoint_id,
            }
        }
        return thread_id, events, out

    def _writes_event(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str,
    ) -> tuple[str, WritesSaved | None]:
        conf = _configurable(config, "put_writes")
        thread_id = _text(conf["thread_id"], "thread_id")
        ns = _text(conf.get("checkpoint_ns", ""), "checkpoint_ns", empty=True)
        if conf.get("checkpoint_id") is None:
            raise ValueError(
                "put_writes: config['configurable']['checkpoint_id'] is missing; pass the "
                "config that put() returned"
            )
        checkpoint_id = _text(conf["checkpoint_id"], "checkpoint_id")
        task_id = _text(task_id, "task_id")
        task_path = _text(task_path, "task_path", empty=True)
        items = []
        for idx, write in enumerate(writes):
            if not isinstance(write, tuple | list) or len(write) != 2:
                raise TypeError(
                    f"put_writes: write {idx} must be a (channel, value) pair, got {write!r}"
                )
            channel = _text(write[0], f"write {idx}'s channel")
            idx_ = WRITES_IDX_MAP.get(channel, idx)
            items.append(WriteItem(idx_, channel, *self._dumps(write[1])))
        if not items:
            return thread_id, None
        stream = _stream(thread_id)
        if all(i.idx >= 0 for i in items) and self._views.has_writes(
            stream, ns, checkpoint_id, task_id, [i.idx for i in items]
        ):
            return thread_id, None  # a retried task: its writes are stored already
        return thread_id, WritesSaved(ns, checkpoint_id, task_id, task_path, items)

    def _tuple(self, loaded: Loaded, thread_id: str | None = None) -> CheckpointTuple:
        cp = loaded.checkpoint
        tid = thread_id if thread_id is not None else cp.thread_id
        checkpoint = self.serde.loads_typed((cp.checkpoint_type, cp.checkpoint))
        checkpoint["channel_versions"] = dict(cp.channel_versions)
        checkpoint["channel_values"] = {
            channel: self.serde.loads_typed((blob.type, blob.value))
            for channel, blob in loaded.blobs.items()
            if blob.type != "empty"
        }
        parent = None
        if cp.parent_checkpoint_id is not None:
            parent = {
                "configurable": {
                    "thread_id": tid,
                    "checkpoint_ns": cp.checkpoint_ns,
                    "checkpoint_id": cp.parent_checkpoint_id,
                }
            }
        return CheckpointTuple(
            config={
                "configurable": {
                    "thread_id": tid,
                    "checkpoint_ns": cp.checkpoint_ns,
                    "checkpoint_id": cp.checkpoint_id,
                }
            },
            checkpoint=cast(Checkpoint, checkpoint),
            metadata=cast(
                CheckpointMetadata, self.serde.loads_typed((cp.metadata_type, cp.metadata))
            ),
            parent_config=cast(RunnableConfig | None, parent),
            pending_writes=[
                (w.task_id, w.channel, self.serde.loads_typed((w.type, w.value)))
                for w in loaded.writes
            ],
        )

    def _lookup(self, config: RunnableConfig) -> tuple[str, Loaded | None]:
        conf = _configurable(config, "get_tuple")
        thread_id = _text(conf["thread_id"], "thread_id")
        ns = _text(conf.get("checkpoint_ns", ""), "checkpoint_ns", empty=True)
        stream = _stream(thread_id)
        checkpoint_id = get_checkpoint_id(config)
        if checkpoint_id:
            return thread_id, self._views.get(stream, ns, _text(checkpoint_id, "checkpoint_id"))
        return thread_id, self._views.latest(stream, ns)

    def _search(
        self,
        config: RunnableConfig | None,
        filter: Mapping[str, Any] | None,
        before: RunnableConfig | None,
        limit: int | None,
    ) -> list[CheckpointTuple]:
        if limit is not None and (
            not isinstance(limit, int) or isinstance(limit, bool) or limit < 0
        ):
            raise ValueError(f"list: limit must be an int >= 0 or None, got {limit!r}")
        if filter is not None and not isinstance(filter, Mapping):
            raise TypeError(f"list: filter must be a dict of metadata keys, got {filter!r}")
        stream: UUID | None = None
        ns: str | None = None
        wanted: str | None = None
        if config is not None:
            conf = _configurable(config, "list")
            stream = _stream(_text(conf["thread_id"], "thread_id"))
            if conf.get("checkpoint_ns") is not None:
                ns = _text(conf["checkpoint_ns"], "checkpoint_ns", empty=True)
            wanted = get_checkpoint_id(config)
        before_id = get_checkpoint_id(before) if before is not None else None

        def accept(cp: StoredCheckpoint) -> bool:
            if wanted and cp.checkpoint_id != wanted:
                return False
            if before_id and cp.checkpoint_id >= before_id:
                return False
            if filter:
                md = self.serde.loads_typed((cp.metadata_type, cp.metadata))
                return all(md.get(k) == v for k, v in filter.items())
            return True

        found = self._views.search(stream, ns, accept=accept, limit=limit, before=before_id)
        # a copied thread's shared checkpoints name the source: the config names the thread
        tid = (
            None
            if config is None
            else _text(_configurable(config, "list")["thread_id"], "thread_id")
        )
        return [self._tuple(item, tid) for item in found]

    # -- writes through the store -----------------------------------------------------------
    def _plan(self, thread_id: str, events: Sequence[AnyEvent]) -> Callable[[KVTxn], object]:
        """One transaction: the thread's stream created if missing, then ``events`` appended.

        Every event was built from values checked here (ids, channel names, versions, the
        serializer's ``(str, bytes)`` pairs), so the store's round trip check is skipped.
        """
        stream = _stream(thread_id)
        streams = self._store.core.plans.streams

        def create(txn: KVTxn) -> object:  # built only for a thread's first write
            meta = {"thread_id": thread_id}
            return streams.create_stream(stream, THREAD_KIND, meta, ensure=True)(txn)

        return append_plan(self._store, stream, events, create=create, checked=True)

    def _append(self, thread_id: str, events: Sequence[AnyEvent]) -> None:
        commit(self._store, self._plan(thread_id, events))

    async def _aappend(self, thread_id: str, events: Sequence[AnyEvent]) -> None:
        await acommit(self._astore, self._plan(thread_id, events))

    def _deletion(self, thread_id: str) -> tuple[UUID, ThreadDeleted] | None:
        thread_id = _text(thread_id, "thread_id")
        stream = _stream(thread_id)
        if self._store.get_stream(stream) is None:
            return None  # never written, or deleted already
        return stream, ThreadDeleted(thread_id, stream)

    def _removals(
        self, thread_ids: Sequence[str], strategy: str
    ) -> list[tuple[str, CheckpointsRemoved | None]]:
        """What ``prune`` does per thread: remove some checkpoints, or (None) the stream."""
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"prune: strategy must be 'keep_latest' or 'delete', got {strategy!r}")
        if isinstance(thread_ids, str) or not isinstance(thread_ids, Sequence):
            raise TypeError(f"prune: thread_ids must be a list of thread ids, got {thread_ids!r}")
        out: list[tuple[str, CheckpointsRemoved | None]] = []
        for tid in thread_ids:
            tid = _text(tid, "thread_id")
            if strategy == "delete":
                out.append((tid, None))
                continue
            refs = self._views.refs(_stream(tid))
            seen: set[str] = set()
            doomed = []
            for ref in refs:  # newest first within each namespace
                if ref.checkpoint_ns not in seen:
                    seen.add(ref.checkpoint_ns)
                    continue
                doomed.append(ref)
            if doomed:
                out.append((tid, CheckpointsRemoved(doomed, "prune")))
        return out

    def _run_removals(self, run_ids: Sequence[str]) -> list[tuple[UUID, CheckpointsRemoved]]:
        if isinstance(run_ids, str) or not isinstance(run_ids, Sequence):
            raise TypeError(f"delete_for_runs: run_ids must be a list of run ids, got {run_ids!r}")
        ids = [_text(str(r) if isinstance(r, UUID) else r, "run_id") for r in run_ids]
        return [
            (stream, CheckpointsRemoved(refs, "delete_for_runs"))
            for stream, refs in self._views.runs(ids).items()
        ]

    def _copy_events(self, source: str, target: str) -> list[AnyEvent]:
        source = _text(source, "source thread_id")
        target = _text(target, "target thread_id")
        events: list[AnyEvent] = []
        blobs: set[tuple[str, str, str]] = set()
        for loaded in self._views.thread(_stream(source)):
            cp = loaded.checkpoint
            for blob in loaded.blob_events():
                key = (blob.checkpoint_ns, blob.channel, repr(blob.version))
                if key not in blobs:
                    blobs.add(key)
                    events.append(blob)
            events.append(cp.saved(thread_id=target))
            tasks: dict[tuple[str, str], list[WriteItem]] = {}
            for w in loaded.writes:
                tasks.setdefault((w.task_id, w.task_path), []).append(
                    WriteItem(w.idx, w.channel, w.type, w.value)
                )
            for (task_id, task_path), items in tasks.items():
                events.append(
                    WritesSaved(cp.checkpoint_ns, cp.checkpoint_id, task_id, task_path, items)
                )
        return events

    # -- the sync API -----------------------------------------------------------------------
    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint ``config`` names (its ``checkpoint_id``), else the thread's latest."""
        thread_id, loaded = self._lookup(config)
        return None if loaded is None else self._tuple(loaded, thread_id)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first: of ``config``'s thread (and namespace, if given), or all.

        ``filter`` keeps those whose metadata has these values, ``before`` those older than
        its checkpoint, ``limit`` the first N.
        """
        yield from self._search(config, filter, before, limit)

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint and the values of the channels in ``new_versions``."""
        thread_id, events, out = self._put_events(config, checkpoint, metadata, new_versions)
        self._append(thread_id, events)
        return out

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's pending writes against the checkpoint ``config`` names."""
        thread_id, event = self._writes_event(config, writes, task_id, task_path)
        if event is not None:
            self._append(thread_id, [event])

    def delete_thread(self, thread_id: str) -> None:
        """Delete the thread's checkpoints and writes, for good (later writes are refused)."""
        found = self._deletion(thread_id)
        if found is not None:
            commit(self._store, self._delete_plan(*found))

    def _delete_plan(self, stream: UUID, event: ThreadDeleted) -> Callable[[KVTxn], object]:
        """One transaction: the tombstone appended, then the thread's stream deleted."""
        streams = self._store.core.plans.streams
        ensure = streams.create_stream(TOMBSTONES, TOMBSTONE_KIND, None, ensure=True)
        append = streams.append_to_stream(TOMBSTONES, [event], None, [event.stream_id])
        delete = streams.delete_stream(stream)

        def work(txn: KVTxn) -> object:
            ensure(txn)
            append(txn)  # the tombstone clears the thread's views and refuses later writes
            if forks_of(txn, stream):  # copies (zero-copy forks) still read its checkpoints
                return False
            return delete(txn)

        return work

    def _drop_plan(self, thread_id: str) -> Callable[[KVTxn], object]:
        """``prune(strategy="delete")``: the thread's stream deleted, or its views cleared.

        While copies of it (zero-copy forks) read its checkpoints the stream is kept and
        every checkpoint is removed from its views instead.
        """
        stream = _stream(thread_id)
        delete = self._store.core.plans.streams.delete_stream(stream)
        refs = self._views.refs(stream)
        clear = self._plan(thread_id, [CheckpointsRemoved(refs, "prune")]) if refs else None

        def work(txn: KVTxn) -> object:
            if not forks_of(txn, stream):
                return delete(txn)
            return None if clear is None else clear(txn)

        return work

    def _fork_plan(self, source: str, target: str) -> Callable[[KVTxn], bool]:
        """One transaction: ``target`` made a zero-copy fork of ``source`` at its head.

        False (nothing written) when the target thread exists already: its checkpoints are
        then copied in (:meth:`_copy_events`), as LangGraph's savers do.
        """
        source = _text(source, "source thread_id")
        target = _text(target, "target thread_id")
        src, dst = _stream(source), _stream(target)
        engine = self._store.core.engine

        def work(txn: KVTxn) -> bool:
            if engine.index.stream_kind(txn, dst) is not None:
                return False
            number = engine.index.stream_number(txn, src)
            if number is None:
                return True  # nothing to copy
            now = datetime.now(UTC)
            record = StreamRecord(dst, THREAD_KIND, {"thread_id": target}, now, now)
            engine.forks.fork_stream(txn, src, engine.index.last_seq(txn, number), record)
            return True

        return work

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Remove every checkpoint (and its writes) whose metadata ``run_id`` is listed.

        The channel values stay (a graph still running on the thread may refer to them in
        its next checkpoint); ``prune`` or ``delete_thread`` frees them.
        """
        for stream, event in self._run_removals(run_ids):
            # the thread went away meanwhile: nothing left to remove
            with contextlib.suppress(StreamNotFound, ThreadDeletedError):
                self._store.append_to_stream(stream, [event])

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint and pending write of one thread to a new thread, zero-copy.

        The target becomes a fork of the source's stream at its head: nothing is copied, its
        reads of the shared checkpoints go to the source, and its own writes follow. A target
        that exists already gets the source's checkpoints appended (copied) instead.
        """
        if not commit(self._store, self._fork_plan(source_thread_id, target_thread_id)):
            events = self._copy_events(source_thread_id, target_thread_id)
            if events:
                self._append(target_thread_id, events)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Keep only the latest checkpoint per namespace (``"keep_latest"``), or none.

        ``"delete"`` deletes the thread's stream (its storage is freed; the thread may be
        written again). ``"keep_latest"`` removes the older checkpoints, their writes and the
        blobs only they used from the views; the log keeps them until the thread is deleted.
        """
        for thread_id, event in self._removals(thread_ids, strategy):
            if event is None:
                commit(self._store, self._drop_plan(thread_id))
            else:
                self._append(thread_id, [event])

    def get_next_version(self, current: str | None, channel: None) -> str:
        """The next channel version: a zero-padded counter and a random tie-breaker."""
        if current is None:
            n = 0
        elif isinstance(current, int):
            n = current
        else:
            n = int(str(current).split(".")[0])
        return f"{n + 1:032}.{random.random():016}"

    # -- the async API ----------------------------------------------------------------------
    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Async :meth:`get_tuple` (a few point reads: inline, microseconds)."""
        return self.get_tuple(config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Async :meth:`list` (the scan runs in a worker thread)."""
        found = await asyncio.to_thread(self._search, config, filter, before, limit)
        for item in found:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Async :meth:`put`: the commit is awaited, never blocking the loop."""
        thread_id, events, out = self._put_events(config, checkpoint, metadata, new_versions)
        await self._aappend(thread_id, events)
        return out

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Async :meth:`put_writes`."""
        thread_id, event = self._writes_event(config, writes, task_id, task_path)
        if event is not None:
            await self._aappend(thread_id, [event])

    async def adelete_thread(self, thread_id: str) -> None:
        """Async :meth:`delete_thread`."""
        found = self._deletion(thread_id)
        if found is not None:
            await acommit(self._astore, self._delete_plan(*found))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Async :meth:`delete_for_runs`."""
        removals = await asyncio.to_thread(self._run_removals, run_ids)
        for stream, event in removals:
            with contextlib.suppress(StreamNotFound, ThreadDeletedError):
                await self._astore.append_to_stream(stream, [event])

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Async :meth:`copy_thread` (zero-copy for a new target thread)."""
        if not await acommit(self._astore, self._fork_plan(source_thread_id, target_thread_id)):
            events = await asyncio.to_thread(self._copy_events, source_thread_id, target_thread_id)
            if events:
                await self._aappend(target_thread_id, events)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Async :meth:`prune`."""
        removals = await asyncio.to_thread(self._removals, thread_ids, strategy)
        for thread_id, event in removals:
            if event is None:
                plan = await asyncio.to_thread(self._drop_plan, thread_id)
                await acommit(self._astore, plan)
            else:
                await self._aappend(thread_id, [event])
