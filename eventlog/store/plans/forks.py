"""Plans of the fork operations: fork a run or a stream, its direct forks, its lineage.

A fork is a new run (or stream) whose events ``1..at_seq`` are its parent's - read from the
parent, not copied - and whose own events continue at ``at_seq + 1``
(:mod:`eventlog.engine.lineage`).

>>> import eventlog
>>> from eventlog.events import TextDelta
>>> store = eventlog.RunStore.in_memory()
>>> session = store.create_session(title="demo")
>>> run = store.create_run(
...     session.id, provider="openai", model="gpt-4o", events=[TextDelta("a"), TextDelta("b")]
... )
>>> fork = store.fork_run(run.id, 1)
>>> (fork.parent_run_id == run.id, fork.fork_seq)
(True, 1)
>>> _ = store.append_event(fork.id, TextDelta("c"), expected_seq=1)
>>> [e.event.delta for e in store.list_events(fork.id)]
['a', 'c']
>>> [f.id for f in store.list_forks(run.id)] == [fork.id]
True
>>> [(link.parent_id == run.id, link.fork_seq) for link in store.lineage(fork.id)]
[(True, 1)]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from uuid import UUID, uuid4

from eventlog.engine.core import Engine
from eventlog.errors import RunNotFound
from eventlog.model.artifacts import ARTIFACT_KIND
from eventlog.model.records import Fork, RunRecord, StreamRecord, check_kind
from eventlog.model.status import RunStatus
from eventlog.model.validation import check_fields, metadata, uuid_of
from eventlog.storage.kv import KVTxn
from eventlog.store.plans.records import listed_runs, run_with_status

__all__ = ["ForkPlans", "check_fork_seq"]


def check_fork_seq(at_seq: object) -> int:
    """``at_seq`` if it is an int (the range is checked against the stream's head)."""
    if not isinstance(at_seq, int) or isinstance(at_seq, bool):
        raise TypeError(f"at_seq must be an int (0 for an empty fork), got {at_seq!r}")
    return at_seq


class ForkPlans:
    """Each fork operation's input checks and its work inside one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def fork_run(
        self,
        run_id: UUID | str,
        at_seq: int,
        meta: Mapping[str, object] | None,
        new_id: UUID | str | None,
    ) -> Callable[[KVTxn], RunRecord]:
        """``fork_run``: a new run in the parent's session sharing its events ``1..at_seq``."""
        pid = uuid_of(run_id, "run_id")
        at = check_fork_seq(at_seq)
        rid = uuid4() if new_id is None else uuid_of(new_id, "run_id")
        given = None if meta is None else metadata(meta, "metadata")
        engine = self.engine

        def work(txn: KVTxn) -> RunRecord:
            parent = engine.records.get_run(txn, pid)
            if parent is None:
                raise RunNotFound(pid)
            now = datetime.now(UTC)
            record = RunRecord(
                rid,
                parent.session_id,
                RunStatus.PENDING,
                parent.provider,
                parent.model,
                dict(parent.metadata) if given is None else given,
                None,
                now,
                now,
                pid,
                at,
            )
            engine.forks.fork_run(txn, check_fields(record, "fork_run"))
            found = run_with_status(engine, txn, rid)
            assert found is not None
            return found

        return work

    def fork_stream(
        self,
        stream_id: UUID | str,
        at_seq: int,
        kind: str | None,
        meta: Mapping[str, object] | None,
        new_id: UUID | str | None,
    ) -> Callable[[KVTxn], StreamRecord]:
        """``fork_stream``: a new stream sharing the parent's events (a stream or a session's).

        ``kind`` defaults to the parent's kind (required when the parent is a session).
        """
        pid = uuid_of(stream_id, "stream_id")
        at = check_fork_seq(at_seq)
        sid = uuid4() if new_id is None else uuid_of(new_id, "stream_id")
        given = None if meta is None else metadata(meta, "metadata")
        wanted = None if kind is None else check_kind(kind)
        engine = self.engine

        def work(txn: KVTxn) -> StreamRecord:
            parent = engine.streams.stream_record(txn, pid)
            if wanted is None and parent is None:
                engine.index.check_stream(txn, pid, "stream")  # StreamNotFound
                raise TypeError(f"fork_stream of session {pid} needs kind= (e.g. 'myapp.branch')")
            if ARTIFACT_KIND in (wanted, parent.kind if parent else None):
                # its events refer to the session's blobs: a fork would count them twice, and
                # neither it nor the session could be deleted (the fork reads the parent)
                raise ValueError(
                    f"stream {pid} holds a session's artifacts (or kind {ARTIFACT_KIND!r} was "
                    "named): it cannot be forked; nothing was written - copy the artifacts "
                    "with store.artifacts.put() instead"
                )
            now = datetime.now(UTC)
            record = StreamRecord(
                sid,
                wanted or (parent.kind if parent else ""),
                (dict(parent.metadata) if parent else {}) if given is None else given,
                now,
                now,
            )
            return engine.forks.fork_stream(txn, pid, at, check_fields(record, "fork_stream"))

        return work

    def list_forks(self, run_id: UUID | str) -> Callable[[KVTxn], list[RunRecord]]:
        """``list_forks``: the run's direct forks, from the forks index."""
        rid = uuid_of(run_id, "run_id")
        engine = self.engine

        def work(txn: KVTxn) -> list[RunRecord]:
            engine.index.check_stream(txn, rid, "run")
            ids = [f for f, _ in engine.forks.list_forks(txn, rid)]
            return listed_runs(engine, txn, [(i.bytes, b"") for i in ids])

        return work

    def list_stream_forks(self, stream_id: UUID | str) -> Callable[[KVTxn], list[Fork]]:
        """``list_stream_forks``: any stream's direct forks as lineage links."""
        sid = uuid_of(stream_id, "stream_id")
        engine = self.engine

        def work(txn: KVTxn) -> list[Fork]:
            engine.index.check_stream(txn, sid, "any")
            return [Fork(f, sid, at) for f, at in engine.forks.list_forks(txn, sid)]

        return work

    def lineage(self, stream_id: UUID | str) -> Callable[[KVTxn], list[Fork]]:
        """``lineage``: the links from the run (or stream) up to its root."""
        sid = uuid_of(stream_id, "run_id")
        engine = self.engine

        def work(txn: KVTxn) -> list[Fork]:
            engine.index.check_stream(txn, sid, "any")
            out: list[Fork] = []
            child = sid
            for parent, at in engine.forks.lineage(txn, sid):
                out.append(Fork(child, parent, at))
                child = parent
            return out

        return work
