"""The async API: :class:`AsyncRunStore`, every ``RunStore`` operation as a coroutine.

The same names, arguments, results and errors as :class:`~eventlog.store.run_store.RunStore`.

It runs the same plans (:mod:`eventlog.store.plans`) over the same
:class:`~eventlog.store.core.StoreCore` as its sync twin, and never blocks the event loop on
storage: a write is validated in the caller's task (bad input raises at once, nothing is
written), then queued for the store's group committer and awaited; a drain thread leads the
group, so the disk flush happens off the loop and many tasks' writes share one durable commit.
Point reads (``get_run``, ``get_run_state``, ``get_session``, ``get_stream``, ``count_runs``,
``last_position``) take microseconds and run inline on an embedded store (in the pool on
PostgreSQL, where each is a round trip); reads that scan (listing, replay, export, verify) run
in a small thread pool. On PostgreSQL, :meth:`AsyncRunStore.projection` returns a query object
whose reads are coroutines (each runs in the pool).

A write whose task is cancelled after it was queued may still be committed (like a request
whose client went away); the result is then discarded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from functools import partial
from os import PathLike
from types import TracebackType
from typing import Any, ParamSpec, TypeVar
from uuid import UUID

import msgspec

from eventlog.engine.appends import AppendRequest
from eventlog.engine.protocols import Projector
from eventlog.live.consumers import Ack, ConsumerInfo
from eventlog.live.subscriptions import AckMode, Subscription
from eventlog.model.artifacts import DEFAULT_MAX_ARTIFACT_BYTES
from eventlog.model.events import AnyEvent
from eventlog.model.messages import Message
from eventlog.model.records import (
    EventRecord,
    Execution,
    Fork,
    RunRecord,
    Session,
    SessionStats,
    StreamRecord,
)
from eventlog.model.retention import PruneReport
from eventlog.model.state import RunState
from eventlog.model.status import TERMINAL_STATUSES, RunStatus
from eventlog.model.tool_calls import ToolCallEntry
from eventlog.storage.config import DEFAULT_MAP_SIZE, DEFAULT_MAX_MAP_SIZE, Durability
from eventlog.storage.kv import KVTxn
from eventlog.store.async_artifacts import AsyncArtifacts
from eventlog.store.async_query import AsyncQuery
from eventlog.store.core import StoreCore
from eventlog.store.embeddings import AsyncEmbeddings
from eventlog.store.group_commit import loop_waker
from eventlog.store.plans import ProjectorStatus, StoreStats
from eventlog.store.run_store import RunStore
from eventlog.tools.jsonl import ImportSummary
from eventlog.tools.verify import Problem

__all__ = ["AsyncRunStore"]

T = TypeVar("T")
P = ParamSpec("P")
V = TypeVar("V", bound=msgspec.Struct)


class AsyncRunStore:
    """An event store for asyncio programs (the same store as :class:`RunStore`).

    >>> import asyncio, tempfile
    >>> from eventlog import AsyncRunStore
    >>> from eventlog.events import TextDelta
    >>> async def main() -> list[int]:
    ...     async with await AsyncRunStore.open(tempfile.mkdtemp() + "/s") as store:
    ...         sid = await store.ensure_session()
    ...         run = await store.create_run(sid, provider="openai", model="gpt-4o")
    ...         # 10 tasks append at once: their appends share durable commits
    ...         await asyncio.gather(*(store.append_event(run.id, TextDelta(str(i)))
    ...                                for i in range(10)))
    ...         return [r.seq for r in await store.list_events(run.id)]
    >>> asyncio.run(main())
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    """

    def __init__(self, store: RunStore, *, reader_threads: int = 4) -> None:
        core = store.core
        self._store = store
        self._core = core
        self._plans = core.plans
        self._read = core.backend.read  # a read plan, in one short read transaction
        self._reader_threads = reader_threads
        self._readers: ThreadPoolExecutor | None = None  # started on the first scan
        # a server round trip must not block the loop: point reads go to the pool too
        self._inline = not core.remote
        self._closed = False
        #: files of sessions, with awaitable methods (see AsyncArtifacts)
        self.artifacts = AsyncArtifacts(store.artifacts, self._commit)
        self._embeddings: AsyncEmbeddings | None = None

    # -- opening and closing ----------------------------------------------------------------
    @classmethod
    async def open(
        cls,
        path: str | PathLike[str],
        *,
        durability: Durability = "durable",
        map_size: int = DEFAULT_MAP_SIZE,
        max_map_size: int = DEFAULT_MAX_MAP_SIZE,
        projectors: Sequence[Projector] = (),
        readonly: bool = False,
        create: bool = True,
        schema: str | None = None,
        migrate: bool = False,
        max_artifact_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES,
        **options: int,
    ) -> AsyncRunStore:
        """Open the LMDB store in ``path`` or a PostgreSQL URL; see :meth:`RunStore.open`."""
        opener = partial(
            RunStore.open,
            path,
            durability=durability,
            map_size=map_size,
            max_map_size=max_map_size,
            projectors=projectors,
            readonly=readonly,
            create=create,
            schema=schema,
            migrate=migrate,
            max_artifact_bytes=max_artifact_bytes,
            **options,
        )
        return cls(await asyncio.to_thread(opener))  # opening may rebuild views: off the loop

    @classmethod
    def in_memory(
        cls,
        *,
        projectors: Sequence[Projector] = (),
        max_artifact_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES,
    ) -> AsyncRunStore:
        """A store with the same contract and no disk: for your own unit tests."""
        return cls(RunStore.in_memory(projectors=projectors, max_artifact_bytes=max_artifact_bytes))

    @property
    def sync(self) -> RunStore:
        """The same store with the blocking API (for threads, scripts and the CLI)."""
        return self._store

    @property
    def core(self) -> StoreCore:
        """The store's shared core (internal use; see :attr:`RunStore.core`)."""
        return self._core

    @property
    def path(self) -> str | None:
        """The store directory (None in memory)."""
        return self._core.backend.path

    async def close(self) -> None:
        """Close the store (idempotent): queued writes finish first."""
        self._closed = True
        await asyncio.to_thread(self._store.close)  # saves the embeddings index too
        readers, self._readers = self._readers, None
        if readers is not None:
            readers.shutdown(wait=False)

    async def __aenter__(self) -> AsyncRunStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- plumbing ---------------------------------------------------------------------------
    async def _commit(self, plan: Callable[[KVTxn], T]) -> T:
        """Queue a write plan for the group committer and await its commit."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        # woken from the committing thread, one loop wake-up per group
        pending = self._core.committer.submit_nowait(plan, partial(loop_waker(loop).wake, done))
        await done
        return pending.outcome()

    async def _point(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """A point read: inline on an embedded store (microseconds), else in the pool."""
        if self._inline:
            return fn(*args, **kwargs)
        return await self._off_loop(fn, *args, **kwargs)

    async def _off_loop(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` in a reader thread (a scan, or any read on a remote store)."""
        if self._closed:  # the store raises StoreClosedError at once
            return fn(*args, **kwargs)
        if self._readers is None:
            self._readers = ThreadPoolExecutor(
                self._reader_threads, thread_name_prefix="eventlog-read"
            )
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, partial(fn, *args, **kwargs))

    async def flush(self) -> None:
        """Make every committed append durable (needed only with ``durability="fast"``)."""
        await asyncio.to_thread(self._core.backend.flush)

    async def health_check(self) -> None:
        """Raise ``StoreError`` (or a subclass) when the store cannot serve requests."""
        await self._point(self._core.backend.health_check)

    # -- sessions -------------------------------------------------------------------------
    async def create_session(
        self,
        *,
        title: str = "Agent Run",
        model: str = "default",
        metadata: Mapping[str, object] | None = None,
        session_id: UUID | str | None = None,
    ) -> Session:
        """Create a session; see :meth:`RunStore.create_session`."""
        plan = self._plans.sessions.create_session(title, model, metadata, session_id)
        return await self._commit(plan)

    async def ensure_session(self, session_id: UUID | str | None = None) -> UUID:
        """Return ``session_id`` if it exists (else ``SessionNotFound``); create one for None."""
        if session_id is None:
            return (await self.create_session()).id
        return await self._point(self._read, self._plans.sessions.existing_session(session_id))

    async def get_session(self, session_id: UUID | str) -> Session | None:
        """The session, or None; see :meth:`RunStore.get_session`."""
        return await self._point(self._read, self._plans.sessions.get_session(session_id))

    async def list_sessions(
        self,
        *,
        limit: int = 100,
        offset: int = 0,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> list[Session]:
        """Sessions, most recently updated first; see :meth:`RunStore.list_sessions`."""
        plan = self._plans.sessions.list_sessions(limit, offset, created_after, created_before)
        return await self._off_loop(self._read, plan)

    async def delete_session(self, session_id: UUID | str) -> bool:
        """Delete the session, its runs and messages; see :meth:`RunStore.delete_session`."""
        plan = self._plans.sessions.delete_session(session_id)
        return await self.artifacts.delete_session(session_id, plan)

    async def append_message(self, session_id: UUID | str, message: Message) -> UUID:
        """Append ``message`` to the session's stream; returns the message id."""
        return await self._commit(self._plans.sessions.append_message(session_id, message))

    async def list_messages(
        self, session_id: UUID | str, *, after_seq: int = 0, limit: int | None = None
    ) -> list[Message]:
        """The session's messages in seq order; see :meth:`RunStore.list_messages`."""
        plan = self._plans.sessions.list_messages(session_id, after_seq, limit)
        return await self._off_loop(self._read, plan)

    async def list_executions(self, session_id: UUID | str) -> list[Execution]:
        """The session's tool executions; see :meth:`RunStore.list_executions`."""
        return await self._off_loop(self._read, self._plans.sessions.list_executions(session_id))

    async def session_stats(self, session_id: UUID | str) -> SessionStats:
        """Runs by status, tool calls, failures, token usage of the session."""
        return await self._off_loop(self._read, self._plans.sessions.session_stats(session_id))

    # -- runs -----------------------------------------------------------------------------
    async def create_run(
        self,
        session_id: UUID | str,
        *,
        provider: str,
        model: str,
        metadata: Mapping[str, object] | None = None,
        client_request_id: str | None = None,
        run_id: UUID | str | None = None,
        events: Iterable[AnyEvent] | None = None,
    ) -> RunRecord:
        """Create a run (with its first ``events``, one commit); see :meth:`RunStore.create_run`."""
        plan = self._plans.runs.create_run(
            session_id, provider, model, metadata, client_request_id, run_id, events
        )
        return await self._commit(plan)

    async def get_run(self, run_id: UUID | str) -> RunRecord | None:
        """The run record with its current status, or None."""
        return await self._point(self._read, self._plans.runs.get_run(run_id))

    async def get_run_state(self, run_id: UUID | str) -> RunState | None:
        """The materialized fold of the run's events, or None."""
        return await self._point(self._plans.runs.get_run_state(run_id))

    async def update_run_status(self, run_id: UUID | str, status: RunStatus | str) -> RunRecord:
        """Append ``RunStatusChanged(status)``; see :meth:`RunStore.update_run_status`."""
        return await self._commit(self._plans.runs.update_run_status(run_id, status))

    async def delete_run(self, run_id: UUID | str) -> bool:
        """Delete the run with its events, indexes and views; True if it existed."""
        return await self._commit(self._plans.runs.delete_run(run_id))

    async def prune(
        self,
        *,
        older_than: timedelta | datetime | None = None,
        statuses: Iterable[RunStatus | str] = TERMINAL_STATUSES,
        keep_last_per_session: int | None = None,
        kinds: Iterable[str] | None = None,
        dry_run: bool = False,
        progress: Callable[[int, int], None] | None = None,
        batch_size: int = 100,
    ) -> PruneReport:
        """:meth:`RunStore.prune`: the selection in a reader thread, each batch one commit."""
        job = self._plans.retention.job(
            older_than, statuses, keep_last_per_session, kinds, dry_run, batch_size, progress
        )
        selection = await self._off_loop(self._read, job.select)
        for plan in job.plans(selection):
            job.done(await self._commit(plan))
        return job.report

    async def fork_run(
        self,
        run_id: UUID | str,
        at_seq: int,
        *,
        metadata: Mapping[str, object] | None = None,
        new_run_id: UUID | str | None = None,
    ) -> RunRecord:
        """A zero-copy fork of the run at ``at_seq``; see :meth:`RunStore.fork_run`."""
        return await self._commit(self._plans.forks.fork_run(run_id, at_seq, metadata, new_run_id))

    async def list_forks(self, run_id: UUID | str) -> list[RunRecord]:
        """The run's direct forks; see :meth:`RunStore.list_forks`."""
        return await self._off_loop(self._read, self._plans.forks.list_forks(run_id))

    async def lineage(self, run_id: UUID | str) -> list[Fork]:
        """The run's ancestors up to the root; see :meth:`RunStore.lineage`."""
        return await self._off_loop(self._read, self._plans.forks.lineage(run_id))

    async def fork_stream(
        self,
        stream_id: UUID | str,
        at_seq: int,
        *,
        kind: str | None = None,
        metadata: Mapping[str, object] | None = None,
        new_stream_id: UUID | str | None = None,
    ) -> StreamRecord:
        """A zero-copy fork of a stream; see :meth:`RunStore.fork_stream`."""
        return await self._commit(
            self._plans.forks.fork_stream(stream_id, at_seq, kind, metadata, new_stream_id)
        )

    async def list_stream_forks(self, stream_id: UUID | str) -> list[Fork]:
        """Any stream's direct forks; see :meth:`RunStore.list_stream_forks`."""
        return await self._off_loop(self._read, self._plans.forks.list_stream_forks(stream_id))

    async def list_runs(self, session_id: UUID | str) -> list[RunRecord]:
        """The session's runs in created order."""
        return await self._off_loop(self._read, self._plans.sessions.list_runs(session_id))

    async def list_runs_filtered(
        self,
        *,
        session_id: UUID | str | None = None,
        status: RunStatus | str | None = None,
        limit: int = 100,
        offset: int = 0,
        unresolved: bool = False,
        after: UUID | str | None = None,
    ) -> list[RunRecord]:
        """Runs newest first from the status index; see :meth:`RunStore.list_runs_filtered`."""
        plan = self._plans.runs.list_runs_filtered(
            session_id, status, limit, offset, unresolved, after
        )
        return await self._off_loop(self._read, plan)

    async def tool_calls(self, run_id: UUID | str) -> list[ToolCallEntry]:
        """Every tool call of the run; see :meth:`RunStore.tool_calls`."""
        plan = self._plans.history.tool_calls(run_id, unresolved_only=False)
        return await self._off_loop(self._read, plan)

    async def unresolved_tool_calls(self, run_id: UUID | str) -> list[ToolCallEntry]:
        """Calls executing with no result; see :meth:`RunStore.unresolved_tool_calls`."""
        plan = self._plans.history.tool_calls(run_id, unresolved_only=True)
        return await self._off_loop(self._read, plan)

    async def replay(
        self,
        run_id: UUID | str,
        *,
        to_seq: int | None = None,
        replace: Mapping[int, AnyEvent] | None = None,
        drop: Iterable[int] | None = None,
        insert: Mapping[int, Sequence[AnyEvent]] | None = None,
    ) -> RunState:
        """The run's state with its history edited, nothing written; see :meth:`RunStore.replay`."""
        plan = self._plans.history.replay(run_id, to_seq, replace, drop, insert)
        return await self._off_loop(self._read, plan)

    async def count_runs(
        self, status: RunStatus | str | None = None, session_id: UUID | str | None = None
    ) -> int:
        """How many runs match (from the index's counters)."""
        return await self._point(self._read, self._plans.runs.count_runs(status, session_id))

    async def find_runs(self, prefix: str, *, limit: int = 10) -> list[UUID]:
        """Run ids starting with a hex ``prefix`` (git-style short ids)."""
        return await self._off_loop(self._read, self._plans.runs.find_runs(prefix, limit))

    async def find_sessions(self, prefix: str, *, limit: int = 10) -> list[UUID]:
        """Session ids starting with a hex ``prefix``."""
        return await self._off_loop(self._read, self._plans.sessions.find_sessions(prefix, limit))

    # -- events ---------------------------------------------------------------------------
    async def append_event(
        self,
        run_id: UUID | str,
        event: AnyEvent,
        *,
        expected_seq: int | None = None,
        event_id: UUID | str | None = None,
    ) -> EventRecord:
        """Append one event; see :meth:`RunStore.append_event`."""
        plan = self._plans.events.append_event(run_id, event, expected_seq, event_id)
        return await self._commit(plan)

    async def append_events(
        self,
        run_id: UUID | str,
        events: Iterable[AnyEvent],
        *,
        expected_seq: int | None = None,
        event_ids: Sequence[UUID | str | None] | None = None,
    ) -> list[EventRecord]:
        """Append a batch atomically; see :meth:`RunStore.append_events`."""
        plan = self._plans.events.append_events(run_id, events, expected_seq, event_ids)
        return await self._commit(plan)

    async def append_many(
        self, requests: Iterable[AppendRequest], *, ack: Ack | tuple[str, int] | None = None
    ) -> list[list[EventRecord]]:
        """Append to several streams (and ``ack``) atomically; see :meth:`RunStore.append_many`."""
        return await self._commit(self._plans.events.append_many(requests, ack))

    async def list_events(
        self,
        run_id: UUID | str,
        *,
        after_seq: int = 0,
        to_seq: int | None = None,
        limit: int | None = None,
    ) -> list[EventRecord]:
        """The run's events in seq order; see :meth:`RunStore.list_events`."""
        plan = self._plans.events.list_events(run_id, after_seq, to_seq, limit)
        return await self._off_loop(self._read, plan)

    async def read_log(
        self, *, after_position: int = 0, limit: int | None = None
    ) -> list[EventRecord]:
        """Events of every stream in position order; see :meth:`RunStore.read_log`."""
        return await self._off_loop(self._read, self._plans.events.read_log(after_position, limit))

    async def last_events(self, n: int, *, run_id: UUID | str | None = None) -> list[EventRecord]:
        """The last ``n`` events of the log (or of one run), oldest first."""
        return await self._off_loop(self._read, self._plans.events.last_events(n, run_id))

    async def last_position(self) -> int:
        """The highest position ever assigned (0 for an empty log)."""
        return await self._point(self._read, self._plans.events.last_position())

    # -- streams of other kinds -----------------------------------------------------------
    async def create_stream(
        self,
        stream_id: UUID | str | None = None,
        *,
        kind: str,
        metadata: Mapping[str, object] | None = None,
    ) -> StreamRecord:
        """Create a stream of ``kind``; see :meth:`RunStore.create_stream`."""
        plan = self._plans.streams.create_stream(stream_id, kind, metadata, ensure=False)
        return await self._commit(plan)

    async def ensure_stream(
        self,
        stream_id: UUID | str,
        *,
        kind: str,
        metadata: Mapping[str, object] | None = None,
    ) -> StreamRecord:
        """The stream, created if absent; see :meth:`RunStore.ensure_stream`."""
        plan = self._plans.streams.create_stream(stream_id, kind, metadata, ensure=True)
        return await self._commit(plan)

    async def get_stream(self, stream_id: UUID | str) -> StreamRecord | None:
        """The stream's record, or None; see :meth:`RunStore.get_stream`."""
        return await self._point(self._read, self._plans.streams.get_stream(stream_id))

    async def append_to_stream(
        self,
        stream_id: UUID | str,
        events: Sequence[AnyEvent],
        *,
        expected_seq: int | None = None,
        event_ids: Sequence[UUID | str | None] | None = None,
        kind: str | None = None,
        metadata: Mapping[str, object] | None = None,
    ) -> list[EventRecord]:
        """Append a batch to a stream atomically; see :meth:`RunStore.append_to_stream`."""
        plan = self._plans.streams.append_to_stream(
            stream_id, events, expected_seq, event_ids, kind, metadata
        )
        return await self._commit(plan)

    async def read_stream(
        self,
        stream_id: UUID | str,
        *,
        after_seq: int = 0,
        to_seq: int | None = None,
        limit: int | None = None,
        reverse: bool = False,
    ) -> list[EventRecord]:
        """A stream's events (or its tail); see :meth:`RunStore.read_stream`."""
        plan = self._plans.streams.read_stream(stream_id, after_seq, to_seq, limit, reverse)
        return await self._off_loop(self._read, plan)

    async def read_stream_view(
        self,
        stream_id: UUID | str,
        view: type[V],
        *,
        after_seq: int = 0,
        to_seq: int | None = None,
        limit: int | None = None,
        reverse: bool = False,
    ) -> list[tuple[int, str, V]]:
        """Payload views of a stream's events; see :meth:`RunStore.read_stream_view`."""
        plan = self._plans.streams.read_stream_view(
            stream_id, view, after_seq, to_seq, limit, reverse
        )
        return await self._off_loop(self._read, plan)

    async def list_streams(
        self, kind: str, *, limit: int = 100, offset: int = 0
    ) -> list[StreamRecord]:
        """Streams of ``kind`` in created order; see :meth:`RunStore.list_streams`."""
        return await self._off_loop(
            self._read, self._plans.streams.list_streams(kind, limit, offset)
        )

    async def list_stream_kinds(self) -> list[str]:
        """The kinds that have streams, sorted; see :meth:`RunStore.list_stream_kinds`."""
        return await self._off_loop(self._read, self._plans.streams.list_stream_kinds())

    async def delete_stream(self, stream_id: UUID | str) -> bool:
        """Delete the stream with its events and views; see :meth:`RunStore.delete_stream`."""
        return await self._commit(self._plans.streams.delete_stream(stream_id))

    # -- export, import, checks -----------------------------------------------------------
    async def export_jsonl(self, run_ids: Iterable[UUID | str] | None = None) -> list[str]:
        """The export lines (JSON Lines); see :meth:`RunStore.export_jsonl`."""
        tools = self._plans.tools
        return await self._off_loop(lambda: list(tools.export_jsonl(run_ids)))

    async def import_jsonl(
        self, lines: Iterable[str | bytes], *, require_trailer: bool = False
    ) -> ImportSummary:
        """Import an export, all or nothing; see :meth:`RunStore.import_jsonl`."""
        plan = self._plans.tools.import_jsonl
        return await asyncio.to_thread(plan, lines, require_trailer=require_trailer)

    @property
    def embeddings(self) -> AsyncEmbeddings:
        """The store's embeddings for asyncio (see :attr:`RunStore.embeddings`)."""
        if self._embeddings is None:
            self._embeddings = AsyncEmbeddings(self._store.embeddings, self._commit, self._off_loop)
        return self._embeddings

    async def stats(self) -> StoreStats:
        """Counts, sizes and projector checkpoints."""
        return await self._off_loop(self._plans.tools.stats)

    async def verify(self) -> list[Problem]:
        """Refold everything and compare with every view; ``[]`` when consistent."""
        return await self._off_loop(self._store.verify)

    async def rebuild_projections(
        self,
        names: Iterable[str] | None = None,
        *,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        """Rebuild views from the log; see :meth:`RunStore.rebuild_projections`."""
        await asyncio.to_thread(self._core.rebuild_projections, names, progress)

    async def projector_status(self) -> list[ProjectorStatus]:
        """Projectors' versions and checkpoints."""
        return await self._off_loop(self._read, self._plans.projections.projector_status())

    def projection(self, name: str) -> Any:
        """A projector's query object (its reads are synchronous and short).

        On a remote store (PostgreSQL), where every read is a round trip, its methods are
        coroutines instead - ``await store.projection("run_state").get(run_id)`` - each run in
        the reader pool, so no read blocks the event loop (see
        :class:`~eventlog.store.async_query.AsyncQuery`).
        """
        query = self._plans.projections.query(name)
        return query if self._inline else AsyncQuery(query, self._off_loop)

    # -- subscriptions --------------------------------------------------------------------
    async def subscribe(
        self,
        *,
        after_position: int = 0,
        run_id: UUID | str | None = None,
        event_types: Iterable[str] | None = None,
        name: str | None = None,
        ack: AckMode = "auto",
        batch_size: int = 256,
        timeout: float | None = None,
    ) -> Subscription:
        """A subscription to iterate with ``async for``; see :meth:`RunStore.subscribe`.

        Made off the loop (a named consumer's registration is a write); its reads, acks and
        waits never block the event loop.

        >>> import asyncio
        >>> from eventlog.events import TextDelta
        >>> async def main() -> list[int]:
        ...     store = AsyncRunStore.in_memory()
        ...     run = await store.create_run(await store.ensure_session(), provider="p", model="m")
        ...     await store.append_event(run.id, TextDelta("hi"))
        ...     async with await store.subscribe(timeout=0) as sub:
        ...         return [r.position async for r in sub]
        >>> asyncio.run(main())
        [1]
        """
        make = partial(
            self._core.live.subscribe,
            after_position=after_position,
            run_id=run_id,
            event_types=event_types,
            name=name,
            ack=ack,
            batch_size=batch_size,
            timeout=timeout,
        )
        return await asyncio.to_thread(make)

    async def consumers(self) -> list[ConsumerInfo]:
        """Persistent consumers with their acknowledged position and lag."""
        return await self._off_loop(self._core.live.consumers)

    async def delete_consumer(self, name: str) -> bool:
        """Forget persistent consumer ``name``; True if it existed."""
        return await asyncio.to_thread(self._core.live.delete_consumer, name)

    async def wait_for_projections(self, position: int | None = None, timeout: float = 5.0) -> None:
        """Wait (in a worker thread) until async projectors reach ``position``.

        See :meth:`RunStore.wait_for_projections`.
        """
        await asyncio.to_thread(self._core.live.wait_for_projections, position, timeout)
