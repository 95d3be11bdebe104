"""The public facade: :class:`RunStore` (behest's RunStore + RuntimeStore operations).

Every public method builds its operation's plan (:mod:`eventlog.store.plans`: the input
checked, the work inside one transaction) and runs it: a write through the store's group
committer, a read in one short read transaction of the backend. The asyncio facade
(:class:`~eventlog.store.async_run_store.AsyncRunStore`) runs the same plans; both share one
:class:`~eventlog.store.core.StoreCore` (backend, engine with the built-in projectors, group
committer, wake-up, live side). Nothing here touches lmdb directly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from os import PathLike
from types import TracebackType
from typing import Any, TypeVar
from uuid import UUID

import msgspec

from eventlog.engine.appends import AppendRequest
from eventlog.engine.protocols import Projector
from eventlog.errors import EmbeddingsUnavailableError
from eventlog.live.consumers import Ack, ConsumerInfo
from eventlog.live.subscriptions import AckMode, Subscription
from eventlog.model.artifacts import DEFAULT_MAX_ARTIFACT_BYTES, check_max_artifact_bytes
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
from eventlog.storage.kv import KVBackend
from eventlog.storage.memory import MemoryBackend
from eventlog.storage.opening import open_backend
from eventlog.store.artifacts import Artifacts
from eventlog.store.builtins import BUILTIN_PROJECTORS
from eventlog.store.core import StoreCore
from eventlog.store.embeddings import Embeddings
from eventlog.store.plans import ProjectorStatus, StoreStats
from eventlog.tools.jsonl import ImportSummary
from eventlog.tools.verify import Problem

__all__ = ["BUILTIN_PROJECTORS", "RunStore"]

V = TypeVar("V", bound=msgspec.Struct)


class RunStore:
    """An event store for agent runs. Open it on a directory (LMDB) or in memory.

    >>> from eventlog import RunStore
    >>> from eventlog.events import ModelStarted, TextDelta, RunCompleted
    >>> store = RunStore.in_memory()
    >>> session = store.create_session(title="demo")
    >>> run = store.create_run(session.id, provider="openai", model="gpt-4o")
    >>> store.append_event(run.id, ModelStarted("openai", "gpt-4o", 1)).seq
    1
    >>> [r.seq for r in store.append_events(run.id, [TextDelta("Hi"), RunCompleted("stop", 1)])]
    [2, 3]
    >>> store.get_run_state(run.id).status
    <RunStatus.COMPLETED: 'completed'>
    >>> store.close()
    """

    def __init__(
        self,
        backend: KVBackend,
        projectors: Sequence[Projector] = (),
        *,
        group_max_requests: int = 256,
        group_max_bytes: int = 8 << 20,
        max_artifact_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES,
    ) -> None:
        check_max_artifact_bytes(max_artifact_bytes)
        core = StoreCore(
            backend,
            projectors,
            group_max_requests=group_max_requests,
            group_max_bytes=group_max_bytes,
        )
        self._core = core
        self._plans = core.plans
        self._write = core.committer.submit  # a write plan, committed with its neighbours
        self._read = backend.read  # a read plan, in one short read transaction
        #: files of sessions: put, get, read, open, list_by_session, delete (see Artifacts)
        self.artifacts = Artifacts(core, max_artifact_bytes)
        self._embeddings: Embeddings | None = None  # built on first use (numpy, usearch)

    # -- opening and closing ----------------------------------------------------------------
    @classmethod
    def open(
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
    ) -> RunStore:
        """Open (creating if needed) the LMDB store in directory ``path``, or a PostgreSQL store.

        ``durability="durable"`` (default): a returned append is on disk (fsync per commit).
        ``durability="fast"``: no fsync per commit; call :meth:`flush`. ``map_size`` is the
        initial LMDB map (it grows automatically up to ``max_map_size``). ``projectors`` adds
        your projectors to the built-ins. ``readonly=True`` opens an existing store for reading
        only (it never blocks a writer; views are not rebuilt); ``create=False`` refuses to
        create a missing store. Extra options (``max_readers``, ``max_dbs``) go to
        :class:`~eventlog.storage.config.StoreConfig`.

        ``path`` may be a PostgreSQL URL (``postgresql://user@host:5432/db``, needs the
        ``postgres`` extra): the same store on a server that many machines share. ``schema``
        (or the URL's ``?schema=`` parameter) names the PostgreSQL schema that holds it
        (default ``eventlog``); ``create=True`` creates a missing schema, ``migrate=True``
        upgrades an older one (else ``eventlog migrate`` does); ``pool_size`` and
        ``connect_timeout`` go to :class:`~eventlog.storage.config.PostgresConfig`.
        ``max_artifact_bytes`` limits the size of one artifact (default 4 GiB).

        >>> import tempfile
        >>> with RunStore.open(tempfile.mkdtemp() + "/store") as store:
        ...     store.health_check()
        """
        opened = open_backend(
            path,
            durability=durability,
            map_size=map_size,
            max_map_size=max_map_size,
            readonly=readonly,
            create=create,
            schema=schema,
            migrate=migrate,
            **options,
        )
        try:
            return cls(
                opened.backend,
                projectors,
                group_max_requests=opened.group_max_requests,
                group_max_bytes=opened.group_max_bytes,
                max_artifact_bytes=max_artifact_bytes,
            )
        except BaseException:
            opened.backend.close()
            raise

    @classmethod
    def in_memory(
        cls,
        *,
        projectors: Sequence[Projector] = (),
        max_artifact_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES,
    ) -> RunStore:
        """A store with the same contract and no disk: for your own unit tests."""
        return cls(MemoryBackend(), projectors, max_artifact_bytes=max_artifact_bytes)

    def close(self) -> None:
        """Close the store (idempotent). Later calls raise ``StoreClosedError``.

        Async projectors finish their current batch and stop; subscriptions end.
        """
        if self._embeddings is not None:
            self._embeddings.close()  # its derived index file, when it moved
        self._core.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def core(self) -> StoreCore:
        """The store's shared core: backend, engine, group committer, wake-up, plans.

        Internal use - tools, tests and the contract suite's tamper tests reach the store's
        insides through it (``store.core.backend``, ``store.core.engine``); applications
        should not need it.
        """
        return self._core

    @property
    def path(self) -> str | None:
        """The store directory (None in memory)."""
        return self._core.backend.path

    def flush(self) -> None:
        """Make every committed append durable (needed only with ``durability="fast"``)."""
        self._core.backend.flush()

    def health_check(self) -> None:
        """Raise ``StoreError`` (or a subclass) when the store cannot serve requests."""
        self._core.backend.health_check()

    # -- sessions -------------------------------------------------------------------------
    def create_session(
        self,
        *,
        title: str = "Agent Run",
        model: str = "default",
        metadata: Mapping[str, object] | None = None,
        session_id: UUID | str | None = None,
    ) -> Session:
        """Create a session; ``AlreadyExistsError`` if ``session_id`` is taken."""
        return self._write(self._plans.sessions.create_session(title, model, metadata, session_id))

    def ensure_session(self, session_id: UUID | str | None = None) -> UUID:
        """Return ``session_id`` if it exists (else ``SessionNotFound``); create one for None."""
        if session_id is None:
            return self.create_session().id
        return self._read(self._plans.sessions.existing_session(session_id))

    def get_session(self, session_id: UUID | str) -> Session | None:
        """The session (``updated_at`` = its last activity), or None when it does not exist."""
        return self._read(self._plans.sessions.get_session(session_id))

    def list_sessions(
        self,
        *,
        limit: int = 100,
        offset: int = 0,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> list[Session]:
        """Sessions, most recently updated first, optionally created in a time window."""
        plan = self._plans.sessions.list_sessions(limit, offset, created_after, created_before)
        return self._read(plan)

    def delete_session(self, session_id: UUID | str) -> bool:
        """Delete the session, its runs, messages, artifacts and embeddings in one transaction.

        Idempotent (False when it did not exist). Its embeddings are deleted as
        ``EmbeddingDeleted`` events, as ``store.embeddings.delete_by_session`` does.
        """
        plan = self._plans.sessions.delete_session(session_id)
        return self.artifacts.delete_session(session_id, plan)

    def append_message(self, session_id: UUID | str, message: Message) -> UUID:
        """Append ``message`` to the session's stream; returns the message id."""
        return self._write(self._plans.sessions.append_message(session_id, message))

    def list_messages(
        self, session_id: UUID | str, *, after_seq: int = 0, limit: int | None = None
    ) -> list[Message]:
        """The session's messages in seq order (the first message is seq 1).

        The transcript is the fold of the session's stream: ``MessageAppended`` adds a
        message, ``MessageRetracted(seq)`` withdraws one, ``MessagesCleared`` empties it;
        other events in the stream are skipped. ``after_seq``: only messages appended after
        that seq; ``limit``: the first ``limit`` of them.
        """
        return self._read(self._plans.sessions.list_messages(session_id, after_seq, limit))

    def list_executions(self, session_id: UUID | str) -> list[Execution]:
        """Tool executions of the session's runs, in log order."""
        return self._read(self._plans.sessions.list_executions(session_id))

    def session_stats(self, session_id: UUID | str) -> SessionStats:
        """Runs by status, tool calls, tool failures and total token usage of a session."""
        return self._read(self._plans.sessions.session_stats(session_id))

    def find_sessions(self, prefix: str, *, limit: int = 10) -> list[UUID]:
        """Sessions whose id starts with ``prefix`` (hex, dashes optional)."""
        return self._read(self._plans.sessions.find_sessions(prefix, limit))

    # -- runs -----------------------------------------------------------------------------
    def create_run(
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
        """Create a run in ``session_id`` (status ``pending``), with its first ``events``.

        ``events`` are appended in the same transaction (seq 1..n; one durable commit for a
        new run and its ``RunStarted``); the returned record has the status they lead to.
        With ``client_request_id``, creating again with the same id in the same session
        returns the run created the first time and appends nothing (an idempotent retry).

        >>> from eventlog.events import RunStarted
        >>> store = RunStore.in_memory()
        >>> sid = store.ensure_session()
        >>> run = store.create_run(sid, provider="p", model="m",
        ...                        events=[RunStarted(sid, "p", "m")])
        >>> run.status, [r.seq for r in store.list_events(run.id)]
        (<RunStatus.SESSION_LOADED: 'session_loaded'>, [1])
        """
        plan = self._plans.runs.create_run(
            session_id, provider, model, metadata, client_request_id, run_id, events
        )
        return self._write(plan)

    def get_run(self, run_id: UUID | str) -> RunRecord | None:
        """The run record (with its current status), or None when it does not exist."""
        return self._read(self._plans.runs.get_run(run_id))

    def get_run_state(self, run_id: UUID | str) -> RunState | None:
        """The materialized fold of the run's events, or None when the run does not exist."""
        return self._plans.runs.get_run_state(run_id)()

    def update_run_status(self, run_id: UUID | str, status: RunStatus | str) -> RunRecord:
        """Append ``RunStatusChanged(status)``; ``InvalidTransition`` out of a terminal status."""
        return self._write(self._plans.runs.update_run_status(run_id, status))

    def delete_run(self, run_id: UUID | str) -> bool:
        """Delete the run, its events, indexes and views in one transaction; True if it existed.

        Positions of deleted events are never reused; log readers skip them.
        """
        return self._write(self._plans.runs.delete_run(run_id))

    def prune(
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
        """Remove the runs (and streams) a retention policy names, in atomic batches.

        A run goes when its status is in ``statuses`` (terminal ones only), its last activity
        is before ``older_than`` (a timedelta back from now, or an aware datetime; None: any
        age), it is not among its session's ``keep_last_per_session`` newest runs and no fork
        reads it. ``kinds`` (default: runs only) names what to prune: ``"run"`` and/or stream
        kinds, whose streams go when idle since ``older_than``; a ``"langgraph.thread"``
        keeps its latest checkpoint per namespace (and all it needs to resume) and loses
        the older ones. Each batch of ``batch_size`` is one transaction that checks every
        candidate again (a run appended to meanwhile stays); ``progress(done, total)`` is
        called after each. Subscriptions crossing removed positions can tell
        (:attr:`Subscription.pruned`). See docs/how-to/retention.md.

        >>> from eventlog import RunStore
        >>> store = RunStore.in_memory()
        >>> run = store.create_run(store.ensure_session(), provider="p", model="m")
        >>> _ = store.update_run_status(run.id, "completed")
        >>> store.prune(dry_run=True).run_ids == [run.id]
        True
        >>> report = store.prune()
        >>> (report.runs, store.get_run(run.id))
        (1, None)
        """
        job = self._plans.retention.job(
            older_than, statuses, keep_last_per_session, kinds, dry_run, batch_size, progress
        )
        selection = self._read(job.select)
        for plan in job.plans(selection):
            job.done(self._write(plan))
        return job.report

    def fork_run(
        self,
        run_id: UUID | str,
        at_seq: int,
        *,
        metadata: Mapping[str, object] | None = None,
        new_run_id: UUID | str | None = None,
    ) -> RunRecord:
        """A new run in the same session whose events ``1..at_seq`` are ``run_id``'s.

        Zero-copy: the shared events are read from the parent; the fork's own events continue
        at ``at_seq + 1`` (its head is ``at_seq``, so ``expected_seq=at_seq`` appends after
        it). Its state is the fold of its events. ``0 <= at_seq <= head``, else
        ``ForkPointError``; ``metadata`` defaults to the parent's. See
        :mod:`eventlog.store.plans.forks` for an example.
        """
        return self._write(self._plans.forks.fork_run(run_id, at_seq, metadata, new_run_id))

    def list_forks(self, run_id: UUID | str) -> list[RunRecord]:
        """The run's direct forks (from the forks index), in id order."""
        return self._read(self._plans.forks.list_forks(run_id))

    def lineage(self, run_id: UUID | str) -> list[Fork]:
        """The run's (or stream's) ancestors up to the root: one link per fork, nearest first."""
        return self._read(self._plans.forks.lineage(run_id))

    def fork_stream(
        self,
        stream_id: UUID | str,
        at_seq: int,
        *,
        kind: str | None = None,
        metadata: Mapping[str, object] | None = None,
        new_stream_id: UUID | str | None = None,
    ) -> StreamRecord:
        """A new stream sharing ``stream_id``'s events ``1..at_seq`` (zero-copy).

        ``stream_id`` is a stream of another kind or a session (its messages); the fork is a
        stream of ``kind`` (default: the parent's kind; required for a session). A session's
        artifact stream is not forked (``ValueError``): its events refer to the session's blobs.
        """
        return self._write(
            self._plans.forks.fork_stream(stream_id, at_seq, kind, metadata, new_stream_id)
        )

    def list_stream_forks(self, stream_id: UUID | str) -> list[Fork]:
        """Any stream's direct forks, as lineage links."""
        return self._read(self._plans.forks.list_stream_forks(stream_id))

    def list_runs(self, session_id: UUID | str) -> list[RunRecord]:
        """The session's runs in created order (``SessionNotFound`` for an unknown session)."""
        return self._read(self._plans.sessions.list_runs(session_id))

    def list_runs_filtered(
        self,
        *,
        session_id: UUID | str | None = None,
        status: RunStatus | str | None = None,
        limit: int = 100,
        offset: int = 0,
        unresolved: bool = False,
        after: UUID | str | None = None,
    ) -> list[RunRecord]:
        """Runs newest first (by created_at), filtered by session and/or status.

        Served from the status index: the cost grows with ``limit + offset``, not with the
        number of runs. ``limit=0`` returns ``[]``. ``unresolved=True``: only runs with tool
        calls that started executing and have no result (:meth:`unresolved_tool_calls`),
        from the tool ledger's index of such runs. ``after``: keyset pagination, the runs
        that follow this one (the last of the previous page) in the same listing, at the cost
        of a first page however deep (an unknown run: ``[]``).

        >>> from eventlog import RunStore
        >>> store = RunStore.in_memory()
        >>> sid = store.ensure_session()
        >>> ids = [store.create_run(sid, provider="p", model="m").id for _ in range(3)]
        >>> first = store.list_runs_filtered(limit=2)
        >>> rest = store.list_runs_filtered(limit=2, after=first[-1].id)
        >>> [r.id for r in first + rest] == ids[::-1]
        True
        """
        plan = self._plans.runs.list_runs_filtered(
            session_id, status, limit, offset, unresolved, after
        )
        return self._read(plan)

    def count_runs(
        self, status: RunStatus | str | None = None, session_id: UUID | str | None = None
    ) -> int:
        """How many runs match (read from the index's counters, not by scanning runs)."""
        return self._read(self._plans.runs.count_runs(status, session_id))

    def find_runs(self, prefix: str, *, limit: int = 10) -> list[UUID]:
        """Runs whose id starts with ``prefix`` (hex, dashes optional), like git's short ids."""
        return self._read(self._plans.runs.find_runs(prefix, limit))

    # -- history: the tool-effect ledger, what-if replay (eventlog.store.plans.history) ------
    def tool_calls(self, run_id: UUID | str) -> list[ToolCallEntry]:
        """Every tool call of the run with its lifecycle phase, from the tool-effect ledger."""
        return self._read(self._plans.history.tool_calls(run_id, unresolved_only=False))

    def unresolved_tool_calls(self, run_id: UUID | str) -> list[ToolCallEntry]:
        """The run's tool calls that started executing and have no result (effects unknown).

        After a crash, these are the calls a resuming runtime must check before running them
        again: call id, tool name, arguments, ``started_seq`` and ``started_at``.

        >>> from eventlog.events import ToolCall, ToolCallCompleted, ToolExecutionStarted
        >>> store = RunStore.in_memory()
        >>> run = store.create_run(store.ensure_session(), provider="p", model="m")
        >>> _ = store.append_events(run.id, [
        ...     ToolCallCompleted(ToolCall("c1", "send_mail", {"to": "ops"})),
        ...     ToolExecutionStarted("c1", "send_mail"),
        ... ])
        >>> [(c.call_id, c.tool_name, c.arguments, c.started_seq)
        ...  for c in store.unresolved_tool_calls(run.id)]
        [('c1', 'send_mail', {'to': 'ops'}, 2)]
        >>> [r.id for r in store.list_runs_filtered(unresolved=True)] == [run.id]
        True
        """
        return self._read(self._plans.history.tool_calls(run_id, unresolved_only=True))

    def replay(
        self,
        run_id: UUID | str,
        *,
        to_seq: int | None = None,
        replace: Mapping[int, AnyEvent] | None = None,
        drop: Iterable[int] | None = None,
        insert: Mapping[int, Sequence[AnyEvent]] | None = None,
    ) -> RunState:
        """The run's state as if its history had been different: nothing written or executed.

        Folds events ``1..to_seq`` with ``replace={seq: event}`` swapped in, ``drop={seq}``
        left out and ``insert={after_seq: [events]}`` added after ``after_seq`` (0: before
        the first). The edited history is renumbered from 1. Events are checked like appends
        (``TypeError`` naming the bad one); a seq outside the replayed range is a
        :class:`~eventlog.errors.ReplayEditError`. See :mod:`eventlog.model.what_if`.

        >>> from eventlog.events import ModelStarted, RunCompleted, RunFailed
        >>> store = RunStore.in_memory()
        >>> run = store.create_run(store.ensure_session(), provider="p", model="m")
        >>> _ = store.append_events(run.id, [ModelStarted("p", "m", 1), RunCompleted("stop", 1)])
        >>> store.replay(run.id, replace={2: RunFailed("quota")}).status
        <RunStatus.FAILED: 'failed'>
        >>> store.get_run_state(run.id).status
        <RunStatus.COMPLETED: 'completed'>
        """
        return self._read(self._plans.history.replay(run_id, to_seq, replace, drop, insert))

    # -- events ---------------------------------------------------------------------------
    def append_event(
        self,
        run_id: UUID | str,
        event: AnyEvent,
        *,
        expected_seq: int | None = None,
        event_id: UUID | str | None = None,
    ) -> EventRecord:
        """Append one event; returns its record (seq, position, recorded_at).

        ``expected_seq=N``: the run's last seq must be N, else ``ConcurrencyError`` and nothing
        is written. ``event_id``: if this id is already stored for the run, the stored record is
        returned and nothing is written (safe retries).
        """
        return self._write(self._plans.events.append_event(run_id, event, expected_seq, event_id))

    def append_events(
        self,
        run_id: UUID | str,
        events: Iterable[AnyEvent],
        *,
        expected_seq: int | None = None,
        event_ids: Sequence[UUID | str | None] | None = None,
    ) -> list[EventRecord]:
        """Append a batch atomically (all or nothing), seq numbers consecutive."""
        plan = self._plans.events.append_events(run_id, events, expected_seq, event_ids)
        return self._write(plan)

    def append_many(
        self, requests: Iterable[AppendRequest], *, ack: Ack | tuple[str, int] | None = None
    ) -> list[list[EventRecord]]:
        """Append to several streams of any kind in one transaction: all requests or none.

        Each :class:`AppendRequest` has its own ``expected_seq``, ``event_ids`` and ``kind``
        (a stream kind with ``expected_seq=0`` creates a missing stream). ``ack=(name,
        position)`` (an :class:`~eventlog.Ack`) stores persistent consumer ``name``'s position
        in the same transaction. Any failure (a conflict, an unknown stream, a terminal run,
        a bad ack) writes nothing: no event, no new stream, no ack.

        >>> from eventlog import AppendRequest, stream_id_for
        >>> from eventlog.events import TextDelta
        >>> store = RunStore.in_memory()
        >>> run = store.create_run(store.ensure_session(), provider="p", model="m")
        >>> out = store.append_many([
        ...     AppendRequest(run.id, [TextDelta("a")], expected_seq=0),
        ...     AppendRequest(stream_id_for("doc.note", "n1"), [TextDelta("b")],
        ...                   expected_seq=0, kind="doc.note", metadata={"by": "docs"}),
        ... ])
        >>> [[r.position for r in part] for part in out]
        [[1], [2]]
        """
        return self._write(self._plans.events.append_many(requests, ack))

    def list_events(
        self,
        run_id: UUID | str,
        *,
        after_seq: int = 0,
        to_seq: int | None = None,
        limit: int | None = None,
    ) -> list[EventRecord]:
        """The run's events in seq order: ``after_seq < seq <= to_seq``, at most ``limit``."""
        return self._read(self._plans.events.list_events(run_id, after_seq, to_seq, limit))

    def read_log(self, *, after_position: int = 0, limit: int | None = None) -> list[EventRecord]:
        """Events of every stream in log position order, after ``after_position``.

        Positions of deleted runs are absent and skipped; the reader never waits for them.
        """
        return self._read(self._plans.events.read_log(after_position, limit))

    def last_events(self, n: int, *, run_id: UUID | str | None = None) -> list[EventRecord]:
        """The last ``n`` events of the log (or of one run), oldest first (``tail -n``)."""
        return self._read(self._plans.events.last_events(n, run_id))

    def last_position(self) -> int:
        """The highest position ever assigned (0 for an empty log)."""
        return self._read(self._plans.events.last_position())

    # -- streams of other kinds (see eventlog.store.plans.streams) ------------------------
    def create_stream(
        self,
        stream_id: UUID | str | None = None,
        *,
        kind: str,
        metadata: Mapping[str, object] | None = None,
    ) -> StreamRecord:
        """Create a stream of ``kind`` (``AlreadyExistsError`` if the id is taken)."""
        plan = self._plans.streams.create_stream(stream_id, kind, metadata, ensure=False)
        return self._write(plan)

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
        plan = self._plans.streams.create_stream(stream_id, kind, metadata, ensure=True)
        return self._write(plan)

    def get_stream(self, stream_id: UUID | str) -> StreamRecord | None:
        """The stream's record (``updated_at`` = its last event's time), or None."""
        return self._read(self._plans.streams.get_stream(stream_id))

    def append_to_stream(
        self,
        stream_id: UUID | str,
        events: Sequence[AnyEvent],
        *,
        expected_seq: int | None = None,
        event_ids: Sequence[UUID | str | None] | None = None,
        kind: str | None = None,
        metadata: Mapping[str, object] | None = None,
    ) -> list[EventRecord]:
        """Append a batch to a stream atomically (all or nothing), seq numbers consecutive.

        ``expected_seq=N``: the stream's last seq must be N, else ``ConcurrencyError`` and
        nothing is written. ``kind``: the stream must be of that kind (``StreamKindError``);
        with ``expected_seq=0`` a missing stream is created with ``metadata`` in the same
        transaction (one commit for a new stream's first events). ``event_ids``: one UUID
        (or None) per event; an id already stored for the stream returns the stored record
        and writes nothing for it (safe retries).
        A session's id is accepted too (its stream may hold other events than messages, which
        ``list_messages`` skips); a run's id is a ``StreamNotFound`` that says to use
        ``append_event`` (runs have their status rules); an unknown id, ``StreamNotFound``.
        """
        plan = self._plans.streams.append_to_stream(
            stream_id, events, expected_seq, event_ids, kind, metadata
        )
        return self._write(plan)

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
        plan = self._plans.streams.read_stream(stream_id, after_seq, to_seq, limit, reverse)
        return self._read(plan)

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
        >>> from eventlog.events import TextDelta
        >>> class Delta(msgspec.Struct):
        ...     delta: str = ""
        >>> store = RunStore.in_memory()
        >>> run = store.create_run(store.ensure_session(), provider="p", model="m")
        >>> _ = store.append_events(run.id, [TextDelta("a"), TextDelta("b")])
        >>> store.read_stream_view(run.id, Delta, reverse=True, limit=1)
        [(2, 'TextDelta', Delta(delta='b'))]
        """
        plan = self._plans.streams.read_stream_view(
            stream_id, view, after_seq, to_seq, limit, reverse
        )
        return self._read(plan)

    def list_streams(self, kind: str, *, limit: int = 100, offset: int = 0) -> list[StreamRecord]:
        """Streams of ``kind`` in created order (oldest first), ``limit`` from ``offset``."""
        return self._read(self._plans.streams.list_streams(kind, limit, offset))

    def list_stream_kinds(self) -> list[str]:
        """The kinds that have at least one stream, sorted (runs and sessions are not kinds).

        Cheap on any store size: one seek per kind, not a walk of every stream (use
        :meth:`stats` for how many streams each kind has). Then :meth:`list_streams` per kind.

        >>> from eventlog import RunStore
        >>> store = RunStore.in_memory()
        >>> for kind in ("doc.thread", "doc.counter", "doc.thread"):
        ...     _ = store.create_stream(kind=kind)
        >>> store.list_stream_kinds()
        ['doc.counter', 'doc.thread']
        """
        return self._read(self._plans.streams.list_stream_kinds())

    def delete_stream(self, stream_id: UUID | str) -> bool:
        """Delete the stream, its events, idempotency keys and views in one transaction.

        True if it existed (idempotent: False afterwards). Positions of deleted events are
        never reused. A run's or session's id is a ``StreamNotFound`` naming what it is.
        """
        return self._write(self._plans.streams.delete_stream(stream_id))

    # -- export / import, statistics, checks ----------------------------------------------
    def export_jsonl(self, run_ids: Iterable[UUID | str] | None = None) -> Iterator[str]:
        """The store (or the given runs, sessions and streams) as JSON Lines.

        Session lines, run lines, stream lines, then event lines in log order; see
        :mod:`eventlog.tools.jsonl`. Exporting everything also exports every session's messages
        and every stream of another kind. Given ids export only those: a run with its session's
        record, a session with its messages (not its runs), a stream of another kind with its
        record. The last
        line is the trailer (the count of each kind of line and the SHA-256 of all before it),
        which proves on import that the export is whole.
        """
        return self._plans.tools.export_jsonl(run_ids)

    def import_jsonl(
        self, lines: Iterable[str | bytes], *, require_trailer: bool = False
    ) -> ImportSummary:
        """Validate every line, then write everything in one transaction - or nothing.

        A bad line raises :class:`~eventlog.tools.jsonl.ImportFileError` naming the 1-based line
        number and the field; the store is unchanged. Ids that already exist are refused. A
        trailer line (the last line of every export) is checked when there is one: lines lost,
        added or changed raise :class:`~eventlog.tools.jsonl.IncompleteExportError`;
        ``require_trailer=True`` (for a file: what ``eventlog import`` does) also refuses
        lines without a trailer, such as an export cut short.

        >>> from eventlog import RunStore
        >>> source = RunStore.in_memory()
        >>> _ = source.create_session(title="demo")
        >>> lines = list(source.export_jsonl())  # the last one is the trailer
        >>> RunStore.in_memory().import_jsonl(lines, require_trailer=True).sessions
        1
        """
        return self._plans.tools.import_jsonl(lines, require_trailer=require_trailer)

    def stats(self) -> StoreStats:
        """Counts (runs by status, sessions, events), sizes and projector checkpoints.

        Counting sessions and events walks their keys (no values are decoded).
        """
        return self._plans.tools.stats()

    def verify(self) -> list[Problem]:
        """Refold everything from the log and compare with every view; ``[]`` when consistent.

        Reports seq gaps, undecodable records, broken position entries, orphan streams, view
        keys that differ from a fresh replay (run state, status index, session listing,
        executions and your projectors), and stale projectors - each naming where.
        """
        problems: list[Problem] = self._read(self._plans.tools.verify())
        problems += self.artifacts.verify()
        if self._embeddings is not None or self._read(self._plans.embeddings.summary())[0]:
            # without numpy the view was still checked above; only the search index is not
            with contextlib.suppress(EmbeddingsUnavailableError):
                problems += self.embeddings.verify()
        return problems

    # -- embeddings -----------------------------------------------------------------------
    @property
    def embeddings(self) -> Embeddings:
        """The store's embeddings: upsert, get, delete, cosine search (see :class:`Embeddings`).

        Needs the ``embeddings`` extra (numpy, usearch); without it this raises
        :class:`~eventlog.errors.EmbeddingsUnavailableError` naming it.
        """
        if self._embeddings is None:
            self._embeddings = Embeddings(self._core)
        return self._embeddings

    # -- projections ----------------------------------------------------------------------
    def projection(self, name: str) -> Any:
        """The query object of projector ``name``.

        A projector with a ``query(reader)`` method returns what it builds (the built-ins do);
        any other returns a read-only view of its keyspace with ``get`` and ``scan``. Each call
        on it reads one fresh snapshot.
        """
        return self._plans.projections.query(name)

    def projector_status(self) -> list[ProjectorStatus]:
        """Every registered projector with its stored version and checkpoint."""
        return self._read(self._plans.projections.projector_status())

    def rebuild_projections(
        self,
        names: Iterable[str] | None = None,
        *,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        """Rebuild projectors (all, or ``names``) from the log, in one transaction.

        ``progress(name, position, last_position)`` is called as the replay advances. An async
        projector is reset instead and catches up in the background (its thread restarts if it
        had stopped on an error): use :meth:`wait_for_projections` to wait for it.
        """
        self._core.rebuild_projections(names, progress)

    # -- subscriptions --------------------------------------------------------------------
    def subscribe(
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
        """Every event after ``after_position`` in log order, then new ones as they commit.

        The result iterates (``for``, or ``async for``) the :class:`EventRecord` of every
        stream in position order with no gap and no duplicate, including what other processes
        append; ``run_id`` and ``event_types`` filter it. It reads in short transactions of
        ``batch_size`` positions and sleeps between commits (no transaction is held while
        waiting). It ends after ``timeout`` idle seconds (None: never), on ``close()`` from any
        thread, or when the store closes.

        ``name="indexer"`` makes it a persistent consumer: its position is stored, and a
        restarted consumer resumes after its last acknowledged position (``after_position``
        only applies to a consumer that does not exist yet). ``ack="auto"`` acknowledges what
        was delivered each time the loop asks for the next batch, before waiting idle and on a
        clean exit of a ``with`` block, so a crash redelivers at most the batch in hand;
        ``ack="manual"``: call ``sub.ack(position)`` yourself. Read-only stores can subscribe
        (but not as a named consumer).

        >>> from eventlog import RunStore
        >>> from eventlog.events import TextDelta
        >>> store = RunStore.in_memory()
        >>> run = store.create_run(store.ensure_session(), provider="p", model="m")
        >>> _ = store.append_event(run.id, TextDelta("hi"))
        >>> with store.subscribe(name="indexer", timeout=0) as sub:
        ...     print([r.position for r in sub])
        [1]
        >>> [(c.name, c.position, c.lag) for c in store.consumers()]
        [('indexer', 1, 0)]
        """
        return self._core.live.subscribe(
            after_position=after_position,
            run_id=run_id,
            event_types=event_types,
            name=name,
            ack=ack,
            batch_size=batch_size,
            timeout=timeout,
        )

    def consumers(self) -> list[ConsumerInfo]:
        """The persistent consumers by name: acknowledged position, lag, last update."""
        return self._core.live.consumers()

    def delete_consumer(self, name: str) -> bool:
        """Forget persistent consumer ``name`` (a new subscribe starts over); True if it existed."""
        return self._core.live.delete_consumer(name)

    def wait_for_projections(self, position: int | None = None, timeout: float = 5.0) -> None:
        """Block until every async projector has applied the log up to ``position``.

        ``position=None``: the log's last position now (read your own writes). Returns at once
        without async projectors. Raises :class:`~eventlog.errors.ProjectionTimeoutError` after
        ``timeout`` seconds, :class:`~eventlog.errors.ProjectorFailedError` if one stopped on
        an error.
        """
        self._core.live.wait_for_projections(position, timeout)
