"""The contract of forks: zero-copy prefixes, lineage, deletes, rebuilds, on every backend.

Mixed into :class:`eventlog.testing.StoreContract`. A fork of a run (or stream) at ``at_seq``
reads events ``1..at_seq`` from its parent and continues at ``at_seq + 1``; only its own
events are in the log; a parent that forks read cannot be deleted.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar
from uuid import uuid4

import pytest

from eventlog import (
    ConcurrencyError,
    EventRecord,
    ExecutionStatus,
    ForkPointError,
    RunHasForks,
    RunNotFound,
    RunRecord,
    RunStatus,
    RunStore,
    StreamHasForks,
)
from eventlog.engine.projectors import reader
from eventlog.model.artifacts import ARTIFACT_KIND, artifact_stream_id
from eventlog.model.events import (
    Failure,
    ModelStarted,
    RunCompleted,
    RunStarted,
    RunStatusChanged,
    Success,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolCallCompleted,
    ToolExecutionFinished,
    ToolExecutionStarted,
    UsageRecorded,
)
from eventlog.model.messages import TextPart, UserMessage
from eventlog.model.records import stream_id_for
from eventlog.storage.kv import KVTxn
from eventlog.store.builtins import BUILTIN_PROJECTORS
from eventlog.testing.subscriptions import DEADLINE, InlineTally, Tally
from projections.adk_sessions import (
    APP_KIND,
    SESSION_KIND,
    AdkEventAppended,
    AdkSessionCreated,
    AdkStateUpdated,
    app_key,
    decode_session,
    decode_state,
    session_key,
)

__all__ = ["ForksContract"]

KIND = "eventlog.contract.forked"


def _texts(records: list[EventRecord]) -> list[str]:
    return [r.event.delta for r in records if isinstance(r.event, TextDelta)]


def _same(record: EventRecord) -> tuple[int, object, object, object]:
    """What an import keeps of an event (positions are the target store's own)."""
    return (record.seq, record.event, record.recorded_at, record.event_id)


def _key(record: EventRecord) -> tuple[int, int, object]:
    return (record.seq, record.position, record.event)


def _views(store: RunStore) -> dict[str, dict[bytes, bytes]]:
    """Every built-in view, key by key (one snapshot)."""

    def read(txn: KVTxn) -> dict[str, dict[bytes, bytes]]:
        return {name: dict(reader(txn, name).scan()) for name in BUILTIN_PROJECTORS}

    return store.core.backend.read(read)


def _as_a_replay(store: RunStore) -> None:
    """``verify`` finds nothing, and a rebuild leaves every built-in view as it was."""
    assert store.verify() == []
    before = _views(store)
    store.rebuild_projections()
    assert _views(store) == before


def _rich(session_id: object) -> list[object]:
    """A run's first 9 events: a model call, a tool call done, one executing, one not started."""
    return [
        RunStarted(session_id, "p", "m"),  # type: ignore[arg-type]
        ModelStarted("p", "m", 1),
        ToolCallCompleted(ToolCall("c1", "search", {"q": 1})),
        ToolExecutionStarted("c1", "search"),
        ToolExecutionFinished("c1", "search", Success("found"), 12),
        UsageRecorded(TokenUsage(10, 5, 15)),
        ToolCallCompleted(ToolCall("c2", "rm", {"path": "x"})),
        ToolExecutionStarted("c2", "rm"),
        RunStatusChanged(RunStatus.WAITING_FOR_TOOLS),
    ]


class ForksContract:
    """Forks of runs and streams (see the module docstring)."""

    persistent: ClassVar[bool]

    def make_store(self, path: Path, **options: object) -> RunStore:
        raise NotImplementedError

    def reopen(self, store: RunStore, path: Path, **options: object) -> RunStore:
        raise NotImplementedError

    @staticmethod
    def _parent(store: RunStore, n: int = 5) -> RunRecord:
        session = store.create_session(title="forks")
        return store.create_run(
            session.id,
            provider="p",
            model="m",
            metadata={"who": "parent"},
            events=[TextDelta(f"p{i}") for i in range(1, n + 1)],
        )

    def _shares_the_prefix(self, store: RunStore) -> None:
        parent = self._parent(store)
        fork = store.fork_run(parent.id, 3)
        assert (fork.parent_run_id, fork.fork_seq, fork.session_id) == (
            parent.id,
            3,
            parent.session_id,
        )
        assert fork.metadata == {"who": "parent"}
        with pytest.raises(ConcurrencyError):  # the fork's head is its fork seq
            store.append_event(fork.id, TextDelta("x"), expected_seq=0)
        own = store.append_events(fork.id, [TextDelta("f4"), TextDelta("f5")], expected_seq=3)
        assert [r.seq for r in own] == [4, 5]
        store.append_event(parent.id, TextDelta("p6"), expected_seq=5)  # the parent moves on
        events = store.list_events(fork.id)
        assert _texts(events) == ["p1", "p2", "p3", "f4", "f5"]
        assert [r.seq for r in events] == [1, 2, 3, 4, 5]
        assert all(r.run_id == fork.id for r in events)
        shared = store.list_events(parent.id, to_seq=3)
        assert [_key(r) for r in events[:3]] == [_key(r) for r in shared]  # the same events
        # ranges across the fork point, forward and from the end
        assert _texts(store.list_events(fork.id, after_seq=1, limit=3)) == ["p2", "p3", "f4"]
        assert _texts(store.list_events(fork.id, after_seq=2, to_seq=4)) == ["p3", "f4"]
        assert _texts(store.list_events(fork.id, to_seq=2)) == ["p1", "p2"]
        assert _texts(store.last_events(3, run_id=fork.id)) == ["p3", "f4", "f5"]
        # the log holds the fork's own events only
        logged = [r for r in store.read_log() if r.run_id == fork.id]
        assert [r.seq for r in logged] == [4, 5]
        state = store.get_run_state(fork.id)
        assert state is not None
        assert (state.event_count, state.last_seq) == (5, 5)

    def _forks_of_forks(self, store: RunStore) -> None:
        parent = self._parent(store, 4)
        first = store.fork_run(parent.id, 2, metadata={"who": "first"})
        store.append_events(first.id, [TextDelta("a3"), TextDelta("a4")], expected_seq=2)
        second = store.fork_run(first.id, 3, new_run_id=uuid4())
        store.append_event(second.id, TextDelta("b4"), expected_seq=3)
        empty = store.fork_run(second.id, 0)
        assert _texts(store.list_events(second.id)) == ["p1", "p2", "a3", "b4"]
        assert _texts(store.list_events(second.id, after_seq=1, to_seq=3)) == ["p2", "a3"]
        assert store.list_events(empty.id) == []
        assert [(f.id, f.parent_id, f.fork_seq) for f in store.lineage(empty.id)] == [
            (empty.id, second.id, 0),
            (second.id, first.id, 3),
            (first.id, parent.id, 2),
        ]
        assert store.lineage(parent.id) == []
        assert [r.id for r in store.list_forks(parent.id)] == [first.id]
        assert [(r.id, r.fork_seq) for r in store.list_forks(first.id)] == [(second.id, 3)]
        assert store.list_forks(empty.id) == []
        listed = {r.id: r for r in store.list_runs_filtered(session_id=parent.session_id)}
        assert listed[second.id].parent_run_id == first.id
        assert listed[parent.id].parent_run_id is None
        assert store.get_run(second.id) == listed[second.id]
        assert store.verify() == []

    def _fork_point_out_of_range(self, store: RunStore) -> None:
        parent = self._parent(store, 2)
        runs = store.count_runs()
        for bad in (-1, 3):
            with pytest.raises(ForkPointError) as info:
                store.fork_run(parent.id, bad)
            assert str(parent.id) in str(info.value)
            assert "1..2" in str(info.value)
        with pytest.raises(RunNotFound):
            store.fork_run(uuid4(), 0)
        with pytest.raises(TypeError):
            store.fork_run(parent.id, "1")  # type: ignore[arg-type]
        assert store.count_runs() == runs
        assert store.list_forks(parent.id) == []

    def _state_is_the_fold(self, store: RunStore) -> None:
        session = store.create_session(title="fold")
        parent = store.create_run(
            session.id,
            provider="p",
            model="m",
            events=[RunStarted(session.id, "p", "m"), TextDelta("t"), RunCompleted("stop", 1)],
        )
        assert store.get_run(parent.id).status == RunStatus.COMPLETED  # type: ignore[union-attr]
        running = store.fork_run(parent.id, 2)
        done = store.fork_run(parent.id, 3)
        assert running.status == RunStatus.SESSION_LOADED
        assert done.status == RunStatus.COMPLETED
        assert store.count_runs(status=RunStatus.COMPLETED, session_id=session.id) == 2
        store.append_event(running.id, RunCompleted("stop", 1), expected_seq=2)
        assert store.count_runs(status=RunStatus.COMPLETED, session_id=session.id) == 3
        before = {r.id: store.get_run_state(r.id) for r in (running, done)}
        store.rebuild_projections()
        assert {r.id: store.get_run_state(r.id) for r in (running, done)} == before
        assert store.verify() == []

    def _deletes(self, store: RunStore) -> None:
        parent = self._parent(store, 3)
        fork = store.fork_run(parent.id, 2)
        grand = store.fork_run(fork.id, 1)
        with pytest.raises(RunHasForks) as info:
            store.delete_run(parent.id)
        assert info.value.forks == [fork.id]
        assert str(fork.id) in str(info.value)
        assert len(store.list_events(parent.id)) == 3  # nothing deleted
        assert store.delete_run(grand.id) is True
        assert store.list_forks(fork.id) == []
        grand = store.fork_run(fork.id, 2)
        assert store.verify() == []
        assert store.delete_session(parent.session_id) is True
        assert [store.get_run(r.id) for r in (parent, fork, grand)] == [None, None, None]
        assert store.verify() == []

    def _rich_prefixes(self, store: RunStore) -> None:
        """Forks whose prefixes hold every kind of event the built-in views fold."""
        session = store.create_session(title="rich")
        parent = store.create_run(session.id, provider="p", model="m")
        store.append_events(parent.id, _rich(session.id))  # type: ignore[arg-type]
        executing = store.fork_run(parent.id, 8)  # c2 executing, no result: stays so
        redo = store.fork_run(parent.id, 9)
        store.append_message(session.id, UserMessage([TextPart("try again")]))
        store.append_events(
            parent.id,
            [
                ToolExecutionFinished("c2", "rm", Failure("denied"), 3),
                UsageRecorded(TokenUsage(1, 1, 2)),
                RunCompleted("stop", 2),
            ],
        )
        # the fork finishes the shared execution its own way, and goes on
        store.append_events(
            redo.id,
            [
                ToolExecutionFinished("c2", "rm", Success("gone"), 4),
                ModelStarted("p", "m", 2),
                ToolCallCompleted(ToolCall("c3", "ls")),
                ToolExecutionStarted("c3", "ls"),
            ],
        )
        grand = store.fork_run(redo.id, 13)  # a fork of a fork, through its own events
        done = store.fork_run(parent.id, 12)  # the whole parent, completed
        early = store.fork_run(parent.id, 5)
        store.append_events(grand.id, [ToolExecutionFinished("c3", "ls", Success([]), 1)])
        _as_a_replay(store)
        runs = (parent, executing, redo, grand, done, early)
        status = {r.id: store.get_run(r.id).status for r in runs}  # type: ignore[union-attr]
        assert [status[r.id] for r in runs] == [  # the fold of each one's events
            RunStatus.COMPLETED,
            RunStatus.CALLING_MODEL,
            RunStatus.CALLING_MODEL,
            RunStatus.CALLING_MODEL,
            RunStatus.COMPLETED,
            RunStatus.CALLING_MODEL,
        ]
        assert store.count_runs(status=RunStatus.COMPLETED, session_id=session.id) == 2
        # every run lists its own executions, the shared ones included, each its own way
        found = sorted(
            (str(e.run_id), e.call_id, e.status) for e in store.list_executions(session.id)
        )
        ok, failed, pending = (
            ExecutionStatus.SUCCESS,
            ExecutionStatus.FAILED,
            ExecutionStatus.PENDING,
        )
        want = {
            parent.id: [("c1", ok), ("c2", failed)],
            executing.id: [("c1", ok), ("c2", pending)],
            redo.id: [("c1", ok), ("c2", ok), ("c3", pending)],
            grand.id: [("c1", ok), ("c2", ok), ("c3", ok)],
            done.id: [("c1", ok), ("c2", failed)],
            early.id: [("c1", ok)],
        }
        assert found == sorted((str(r), c, st) for r, calls in want.items() for c, st in calls)
        stats = store.session_stats(session.id)
        assert (stats.tool_calls, stats.tool_failures) == (13, 2)
        # 15 tokens in every prefix but the earliest, 2 more in the parent's and its full fork
        assert stats.total_usage == TokenUsage(52, 27, 79)
        # the ledger folds the prefix: a fork of a run with a call executing has it too
        unresolved = {
            r.id for r in store.list_runs_filtered(session_id=session.id, unresolved=True)
        }
        assert unresolved == {executing.id, redo.id}  # (redo: c3 executing)
        assert [c.call_id for c in store.unresolved_tool_calls(executing.id)] == ["c2"]
        # deleting forks leaves the others' views as a replay builds them
        for gone in (early, grand):
            assert store.delete_run(gone.id) is True
            _as_a_replay(store)
        assert {e.run_id for e in store.list_executions(session.id)} == {
            parent.id,
            executing.id,
            redo.id,
            done.id,
        }
        assert [
            (e.call_id, e.status)
            for e in store.list_executions(session.id)
            if e.run_id == parent.id
        ] == [("c1", ok), ("c2", failed)]
        assert store.delete_session(session.id) is True
        _as_a_replay(store)

    def _adk_streams_fork(self, store: RunStore) -> None:
        """A fork of an ADK session's (or app's) stream writes none of their views."""
        name = "app\x00u\x00s1"
        session, app = stream_id_for(SESSION_KIND, name), stream_id_for(APP_KIND, "app")
        store.create_stream(session, kind=SESSION_KIND)
        store.create_stream(app, kind=APP_KIND)
        store.append_to_stream(app, [AdkStateUpdated("app", None, {"k": 1})])
        store.append_to_stream(
            session,
            [AdkSessionCreated("app", "u", "s1", {"a": 1}, 1.0), AdkEventAppended({}, "e2", 2.0)],
        )
        forks = [store.fork_stream(session, 2).id, store.fork_stream(app, 1).id]
        store.append_to_stream(forks[0], [AdkEventAppended({}, "f3", 3.0, {"a": 3})])
        store.append_to_stream(app, [AdkStateUpdated("app", None, {"k": 2})])
        store.append_to_stream(forks[1], [AdkStateUpdated("app", None, {"k": 3})])
        view = store.projection("adk")
        assert decode_session(view.get(session_key("app", "u", "s1"))).last_event_id == "e2"
        assert decode_state(view.get(app_key("app"))) == {"k": 2}
        _as_a_replay(store)
        for fork in forks:
            assert store.delete_stream(fork) is True
        assert decode_session(view.get(session_key("app", "u", "s1"))).state == {"a": 1}
        _as_a_replay(store)

    def _streams_fork(self, store: RunStore) -> None:
        sid = uuid4()
        store.create_stream(sid, kind=KIND, metadata={"n": 1})
        store.append_to_stream(sid, [TextDelta("s1"), TextDelta("s2")], expected_seq=0)
        fork = store.fork_stream(sid, 1)
        assert fork.kind == KIND
        assert fork.metadata == {"n": 1}
        store.append_to_stream(fork.id, [TextDelta("f2")], expected_seq=1)
        assert _texts(store.read_stream(fork.id)) == ["s1", "f2"]
        assert [(f.id, f.fork_seq) for f in store.list_stream_forks(sid)] == [(fork.id, 1)]
        assert [f.parent_id for f in store.lineage(fork.id)] == [sid]
        with pytest.raises(StreamHasForks):
            store.delete_stream(sid)
        assert store.delete_stream(fork.id) is True
        assert store.delete_stream(sid) is True
        assert store.verify() == []
        # a session's artifacts are not forked (the fork would wedge the session's deletes)
        session = store.ensure_session()
        art = artifact_stream_id(session)
        store.create_stream(art, kind=ARTIFACT_KIND, metadata={"session_id": str(session)})
        store.append_to_stream(art, [TextDelta("a")], expected_seq=0)
        for parent, at, kind in ((art, 1, None), (session, 0, ARTIFACT_KIND)):
            with pytest.raises(ValueError, match="cannot be forked"):
                store.fork_stream(parent, at, kind=kind)
        assert [r.id for r in store.list_streams(ARTIFACT_KIND)] == [art]
        assert store.list_stream_forks(art) == []
        assert store.delete_session(session) is True

    # each test runs on every backend, sync and async: fewer, broader tests keep setup cheap
    def test_fork_shares_the_prefix_and_checks_the_fork_point(self, store: RunStore) -> None:
        """A fork reads its parent's prefix and continues after it; bad seqs write nothing."""
        self._shares_the_prefix(store)
        self._fork_point_out_of_range(store)

    def test_forks_of_forks_lineage_and_streams(self, store: RunStore) -> None:
        """Forks of forks, lineage and the forks index, for runs and streams."""
        self._forks_of_forks(store)
        self._streams_fork(store)

    def test_fork_state_and_deletes(self, store: RunStore) -> None:
        """A fork's state is the fold of its events; a parent forks read is not deleted."""
        self._state_is_the_fold(store)
        self._deletes(store)

    def test_forks_of_rich_prefixes_keep_every_view_as_a_replay(self, store: RunStore) -> None:
        """Tool calls, usage and statuses in a prefix: views equal a rebuild, verify is clean."""
        self._rich_prefixes(store)
        self._adk_streams_fork(store)

    def test_async_projectors_see_a_forks_own_events_also_in_a_rebuild(
        self, store_path: Path
    ) -> None:
        """The prefix is folded into inline projectors only, at fork time and in a replay."""
        with self.make_store(store_path, projectors=[Tally(), InlineTally()]) as store:
            parent = self._parent(store, 3)
            fork = store.fork_run(parent.id, 2)
            store.append_events(fork.id, [TextDelta("f3"), UsageRecorded(TokenUsage(1, 1, 2))])
            store.wait_for_projections(timeout=DEADLINE)
            tally, inline = store.projection("tally"), store.projection("tally_inline")
            assert (tally.get(fork.id.bytes), inline.get(fork.id.bytes)) == (b"2 2", b"4 2")
            assert store.verify() == []
            before = dict(tally.scan()), dict(inline.scan())
            store.rebuild_projections()
            store.wait_for_projections(timeout=DEADLINE)
            assert (dict(tally.scan()), dict(inline.scan())) == before
            assert store.verify() == []

    def test_export_and_import_keep_lineage(self, store: RunStore) -> None:
        parent = self._parent(store, 3)
        fork = store.fork_run(parent.id, 2)
        store.append_event(fork.id, TextDelta("f3"), expected_seq=2)
        quiet = store.fork_run(fork.id, 3)  # no events of its own
        deep = store.fork_run(quiet.id, 2)
        store.append_event(deep.id, TextDelta("d3"), expected_seq=2)
        sid = uuid4()
        store.create_stream(sid, kind=KIND)
        store.append_to_stream(sid, [TextDelta("s1")], expected_seq=0)
        sfork = store.fork_stream(sid, 1)
        store.append_to_stream(sfork.id, [TextDelta("s2")], expected_seq=1)
        everything = list(store.export_jsonl())
        only_deep = list(store.export_jsonl([deep.id]))  # takes its ancestors along
        for lines, runs in ((everything, (parent, fork, quiet, deep)), (only_deep, (deep,))):
            with RunStore.in_memory() as copy:
                copy.import_jsonl(lines, require_trailer=True)
                for run in runs:
                    assert list(map(_same, copy.list_events(run.id))) == list(
                        map(_same, store.list_events(run.id))
                    )
                    assert copy.lineage(run.id) == store.lineage(run.id)
                    assert copy.get_run(run.id) == store.get_run(run.id)
                assert copy.verify() == []
        with RunStore.in_memory() as copy:
            copy.import_jsonl(everything)
            assert _texts(copy.read_stream(sfork.id)) == ["s1", "s2"]
            assert copy.list_stream_forks(sid) == store.list_stream_forks(sid)

    def test_forks_survive_a_reopen(self, store: RunStore, store_path: Path) -> None:
        if not self.persistent:
            pytest.skip("the memory backend keeps nothing after close")
        parent = self._parent(store, 3)
        fork = store.fork_run(parent.id, 2)
        store.append_event(fork.id, TextDelta("f3"), expected_seq=2)
        store = self.reopen(store, store_path)
        try:
            assert _texts(store.list_events(fork.id)) == ["p1", "p2", "f3"]
            assert [f.parent_id for f in store.lineage(fork.id)] == [parent.id]
            assert store.verify() == []
        finally:
            store.close()
