"""The contract of the views, sessions, messages, executions, verify and rebuild.

Mixed into :class:`eventlog.testing.StoreContract`; every backend runs it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar
from uuid import UUID, uuid4

import pytest

from eventlog import (
    AssistantMessage,
    EventRecord,
    ExecutionStatus,
    ImageUrlPart,
    JsonPart,
    Message,
    ProjectionError,
    ProjectionTx,
    RawEvent,
    RunNotFound,
    RunRecord,
    RunStatus,
    RunStore,
    SessionNotFound,
    SystemMessage,
    TextPart,
    ToolMessage,
    UserMessage,
)
from eventlog.engine.projectors import ProjectorMeta, ProjectorSet, reader
from eventlog.model.events import (
    DoomLoopDetected,
    Failure,
    ModelStarted,
    RunCancelled,
    RunCompleted,
    RunFailed,
    Success,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolExecutionFinished,
    ToolExecutionStarted,
    UsageRecorded,
)
from eventlog.storage.kv import KVTxn
from eventlog.tools.jsonl import ImportFileError

__all__ = ["ViewsContract"]


class _ToolLatency:
    """The README's example projector: total duration and count per tool name."""

    name = "tool_latency"
    version = 1
    event_types: ClassVar[frozenset[str]] = frozenset({"ToolExecutionFinished"})

    def apply(self, tx: ProjectionTx, record: EventRecord) -> None:
        event = record.event
        assert isinstance(event, ToolExecutionFinished)
        key = event.tool_name.encode()
        count, total = map(int, (tx.get(key) or b"0 0").split())
        tx.put(key, f"{count + 1} {total + event.duration_ms}".encode())


class _CountingProjector:
    """Counts events per type name in its keyspace."""

    name = "type_counts"
    version = 1
    event_types: ClassVar[frozenset[str]] = frozenset()

    def apply(self, tx: ProjectionTx, record: EventRecord) -> None:
        key = record.type.encode()
        tx.put(key, str(int(tx.get(key) or b"0") + 1).encode())


class _FailingProjector:
    name = "fails_on_doom"
    version = 1
    event_types: ClassVar[frozenset[str]] = frozenset({"DoomLoopDetected"})

    def apply(self, tx: ProjectionTx, record: EventRecord) -> None:
        tx.put(b"seen", b"1")
        raise RuntimeError("boom")


class ViewsContract:
    """Listings, counts, sessions, messages, executions, verify and rebuild."""

    persistent: ClassVar[bool]

    def make_store(self, path: Path, **options: object) -> RunStore:
        raise NotImplementedError

    def reopen(self, store: RunStore, path: Path, **options: object) -> RunStore:
        raise NotImplementedError

    @staticmethod
    def new_run(store: RunStore) -> RunRecord:
        raise NotImplementedError

    # -- status index ----------------------------------------------------------------------
    def test_list_runs_filtered(self, store: RunStore) -> None:
        s1, s2 = store.ensure_session(), store.ensure_session()
        runs = [store.create_run(s, provider="p", model="m") for s in (s1, s2, s1, s2, s1)]
        store.update_run_status(runs[0].id, "calling_model")
        store.append_event(runs[1].id, RunCompleted("stop", 1))
        store.append_event(runs[2].id, RunFailed("boom"))

        def ids(records: list[RunRecord]) -> list[UUID]:
            return [r.id for r in records]

        newest_first = [r.id for r in reversed(runs)]
        assert ids(store.list_runs_filtered()) == newest_first
        assert ids(store.list_runs_filtered(session_id=s1)) == [runs[4].id, runs[2].id, runs[0].id]
        assert ids(store.list_runs_filtered(status="pending")) == [runs[4].id, runs[3].id]
        assert ids(store.list_runs_filtered(status=RunStatus.PENDING, session_id=s2)) == [
            runs[3].id
        ]
        assert ids(store.list_runs_filtered(status="completed")) == [runs[1].id]
        assert ids(store.list_runs_filtered(limit=2, offset=1)) == newest_first[1:3]
        assert store.list_runs_filtered(limit=0) == []
        assert store.list_runs_filtered(offset=10) == []
        assert store.list_runs_filtered(session_id=uuid4()) == []
        listed = store.list_runs_filtered(status="failed")
        assert [r.status for r in listed] == [RunStatus.FAILED]
        with pytest.raises(ValueError, match="unknown run status 'done'"):
            store.list_runs_filtered(status="done")
        with pytest.raises(ValueError, match="limit"):
            store.list_runs_filtered(limit=-1)

    def test_count_runs(self, store: RunStore) -> None:
        s1, s2 = store.ensure_session(), store.ensure_session()
        a = store.create_run(s1, provider="p", model="m")
        b = store.create_run(s1, provider="p", model="m")
        store.create_run(s2, provider="p", model="m")
        store.append_event(a.id, ModelStarted("p", "m", 1))
        assert store.count_runs() == 3
        assert store.count_runs(status="pending") == 2
        assert store.count_runs(status="calling_model", session_id=s1) == 1
        assert store.count_runs(session_id=s1) == 2
        store.delete_run(b.id)
        assert store.count_runs(session_id=s1) == 1
        assert store.count_runs(status="pending") == 1

    def test_list_runs_of_a_session(self, store: RunStore) -> None:
        sid = store.ensure_session()
        runs = [store.create_run(sid, provider="p", model="m") for _ in range(4)]
        store.delete_run(runs[1].id)
        assert [r.id for r in store.list_runs(sid)] == [runs[0].id, runs[2].id, runs[3].id]
        with pytest.raises(SessionNotFound):
            store.list_runs(uuid4())

    def test_find_by_prefix(self, store: RunStore) -> None:
        sid = store.ensure_session()
        runs = [store.create_run(sid, provider="p", model="m") for _ in range(20)]
        target = runs[7].id
        assert store.find_runs(str(target)) == [target]
        assert store.find_runs(str(target)[:13]) == [target]  # dashes are fine
        assert target in store.find_runs(target.hex[:1], limit=20)
        assert all(u.hex.startswith(target.hex[:1]) for u in store.find_runs(target.hex[:1]))
        assert store.find_runs("0123456789abcdef" * 2) == []
        assert store.find_sessions(str(sid)[:5]) == [sid]
        assert store.find_runs(str(sid)) == []
        with pytest.raises(ValueError, match="not an id"):
            store.find_runs("xyz")
        with pytest.raises(ValueError, match="not an id"):
            store.find_runs("")

    def test_export_import_round_trip(self, store: RunStore, store_path: Path) -> None:
        _, run_id = self._busy_store(store)
        store.append_event(run_id, RawEvent("FutureEvent", 3, {"type": "FutureEvent", "n": [1]}))
        lines = list(store.export_jsonl())
        assert [json.loads(line)["kind"] for line in lines[:2]] == ["session", "run"]
        with self.make_store(store_path.parent / "copy") as copy:
            summary = copy.import_jsonl(lines)
            assert (summary.sessions, summary.runs) == (1, 1)
            assert list(copy.export_jsonl()) == lines
            assert copy.verify() == []
            assert copy.list_events(run_id)[-1].event == RawEvent(
                "FutureEvent", 3, {"type": "FutureEvent", "n": [1]}
            )
            # importing the same ids again is refused, naming the line; nothing is written
            with pytest.raises(ImportFileError, match="line 1") as info:
                copy.import_jsonl(lines)
            assert isinstance(info.value, ValueError)
            assert list(copy.export_jsonl()) == lines

    def test_import_rejects_bad_lines_and_writes_nothing(self, store: RunStore) -> None:
        good = f'{{"kind":"session","id":"{uuid4()}","title":"t","model":"m","metadata":{{}},'
        good += '"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}'
        cases = [
            ("not json", 2, None),
            (f'{{"kind":"run","id":"{uuid4()}"}}', 2, "session_id"),
            (
                '{"kind":"session","id":"x","title":"t","model":"m","metadata":{},'
                '"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}',
                2,
                "id",
            ),
        ]
        for bad, line, field in cases:
            with pytest.raises(ImportFileError) as info:
                store.import_jsonl([good, bad])
            assert info.value.line == line
            assert info.value.field == field
            assert f"line {line}" in str(info.value)
        assert store.list_sessions() == []

    # -- sessions --------------------------------------------------------------------------
    def test_list_sessions_most_recently_updated_first(self, store: RunStore) -> None:
        a = store.create_session(title="a")
        b = store.create_session(title="b")
        c = store.create_session(title="c")
        assert [s.id for s in store.list_sessions()] == [c.id, b.id, a.id]
        store.append_message(a.id, UserMessage("hello"))
        assert [s.id for s in store.list_sessions()] == [a.id, c.id, b.id]
        store.create_run(b.id, provider="p", model="m")
        assert [s.id for s in store.list_sessions(limit=2)] == [b.id, a.id]
        assert [s.id for s in store.list_sessions(offset=2)] == [c.id]
        got_a = store.get_session(a.id)
        assert got_a is not None
        assert got_a.updated_at > a.updated_at
        after_b = b.created_at
        assert {s.id for s in store.list_sessions(created_after=after_b)} == {c.id}
        assert {s.id for s in store.list_sessions(created_before=b.created_at)} == {a.id}
        future = datetime.now(UTC) + timedelta(days=1)
        assert store.list_sessions(created_after=future) == []
        assert store.list_sessions(limit=0) == []

    def test_delete_session_cascades(self, store: RunStore) -> None:
        keep = store.create_session()
        gone = store.create_session()
        kept_run = store.create_run(keep.id, provider="p", model="m")
        r1 = store.create_run(gone.id, provider="p", model="m")
        r2 = store.create_run(gone.id, provider="p", model="m", client_request_id="x")
        store.append_events(r1.id, [TextDelta("a"), RunCompleted("stop", 1)])
        store.append_event(r2.id, TextDelta("b"))
        store.append_message(gone.id, UserMessage("bye"))
        store.append_event(kept_run.id, TextDelta("kept"))
        assert store.delete_session(gone.id) is True
        assert store.delete_session(gone.id) is False
        assert store.get_session(gone.id) is None
        for run in (r1, r2):
            assert store.get_run(run.id) is None
            with pytest.raises(RunNotFound):
                store.list_events(run.id)
        with pytest.raises(SessionNotFound):
            store.list_messages(gone.id)
        assert store.count_runs() == 1
        assert [s.id for s in store.list_sessions()] == [keep.id]
        assert [r.run_id for r in store.read_log()] == [kept_run.id]
        assert store.verify() == []

    # -- messages --------------------------------------------------------------------------
    def test_messages_round_trip_in_seq_order(self, store: RunStore) -> None:
        sid = store.ensure_session()
        messages: list[Message] = [
            SystemMessage("You are terse."),
            UserMessage([TextPart("Look at"), ImageUrlPart("https://x/y.png", "image/png")]),
            AssistantMessage(
                [TextPart("Calling a tool")],
                tool_calls=[ToolCall("call_1", "search", {"q": "lmdb", "n": [1, 2]})],
            ),
            ToolMessage("call_1", "search", [JsonPart({"hits": 3}), TextPart("done")]),
            AssistantMessage("It has 3 hits."),
        ]
        ids = [store.append_message(sid, m) for m in messages]
        assert len(set(ids)) == 5
        assert all(isinstance(i, UUID) for i in ids)
        assert store.list_messages(sid) == messages
        assert store.list_messages(sid, after_seq=3) == messages[3:]
        assert store.list_messages(sid, after_seq=1, limit=2) == messages[1:3]
        tool = store.list_messages(sid)[3]
        assert isinstance(tool, ToolMessage)
        assert (tool.tool_call_id, tool.name) == ("call_1", "search")

    def test_message_errors(self, store: RunStore) -> None:
        sid = store.ensure_session()
        with pytest.raises(SessionNotFound):
            store.append_message(uuid4(), UserMessage("x"))
        with pytest.raises(TypeError, match="UserMessage"):
            store.append_message(sid, {"role": "user", "content": "x"})  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="content"):
            UserMessage(42)  # type: ignore[arg-type]
        # a session's stream is not a run
        with pytest.raises(RunNotFound):
            store.append_event(sid, TextDelta("x"))
        assert store.list_messages(sid) == []
        assert store.count_runs() == 0

    # -- executions ------------------------------------------------------------------------
    def test_executions_and_session_stats(self, store: RunStore) -> None:
        sid = store.ensure_session()
        other = store.ensure_session()
        a = store.create_run(sid, provider="p", model="m")
        b = store.create_run(sid, provider="p", model="m")
        c = store.create_run(other, provider="p", model="m")
        store.append_events(
            a.id,
            [
                ToolExecutionStarted("c1", "search"),
                ToolExecutionFinished("c1", "search", Success({"hits": 1}), 120),
                ToolExecutionStarted("c2", "fetch"),
                UsageRecorded(TokenUsage(10, 5, 15)),
                RunCompleted("stop", 1),
            ],
        )
        store.append_events(
            b.id,
            [
                ToolExecutionFinished("c3", "fetch", Failure("timeout"), 3000),
                UsageRecorded(TokenUsage(1, 1, 2)),
            ],
        )
        store.append_event(c.id, ToolExecutionStarted("c9", "other"))
        execs = store.list_executions(sid)
        assert [(e.call_id, e.tool_name, e.status, e.duration_ms, e.run_id) for e in execs] == [
            ("c1", "search", ExecutionStatus.SUCCESS, 120, a.id),
            ("c2", "fetch", ExecutionStatus.PENDING, None, a.id),
            ("c3", "fetch", ExecutionStatus.FAILED, 3000, b.id),
        ]
        stats = store.session_stats(sid)
        assert stats.runs_by_status == {"completed": 1, "pending": 1}
        assert (stats.total_runs, stats.tool_calls, stats.tool_failures) == (2, 3, 1)
        assert stats.total_usage == TokenUsage(11, 6, 17)
        store.delete_run(b.id)
        stats = store.session_stats(sid)
        assert (stats.total_runs, stats.tool_calls, stats.tool_failures) == (1, 2, 0)
        assert stats.total_usage == TokenUsage(10, 5, 15)
        assert [e.call_id for e in store.list_executions(sid)] == ["c1", "c2"]
        with pytest.raises(SessionNotFound):
            store.session_stats(uuid4())

    # -- user projectors -------------------------------------------------------------------
    def test_readme_example_projector(self, store_path: Path) -> None:
        with self.make_store(store_path, projectors=[_ToolLatency()]) as store:
            run = store.create_run(store.ensure_session(), provider="p", model="m")
            store.append_events(
                run.id,
                [
                    ToolExecutionFinished("1", "search", Success(None), 100),
                    ToolExecutionFinished("2", "search", Failure("x"), 300),
                    ToolExecutionFinished("3", "fetch", Success(None), 50),
                ],
            )
            view = store.projection("tool_latency")
            assert view.get(b"search") == b"2 400"
            assert dict(view.scan()) == {b"fetch": b"1 50", b"search": b"2 400"}
            statuses = {
                s.name: (s.version, s.checkpoint, s.ready) for s in store.projector_status()
            }
            assert statuses["tool_latency"] == (1, 3, True)
            assert set(statuses) >= {"run_state", "status_index", "session_listing", "executions"}

    def test_builtin_names_are_reserved(self, store_path: Path) -> None:
        class Impostor(_ToolLatency):
            name = "run_state"

        with pytest.raises(ValueError, match="built-in"):
            self.make_store(store_path, projectors=[Impostor()])

    # -- verify and rebuild ----------------------------------------------------------------
    def _busy_store(self, store: RunStore) -> tuple[UUID, UUID]:
        sid = store.ensure_session()
        run = store.create_run(sid, provider="p", model="m")
        store.append_events(
            run.id,
            [
                ModelStarted("p", "m", 1),
                ToolExecutionStarted("c1", "search"),
                ToolExecutionFinished("c1", "search", Success(1), 5),
                UsageRecorded(TokenUsage(3, 2, 5)),
                RunCompleted("stop", 1),
            ],
        )
        store.append_message(sid, UserMessage("hi"))
        return sid, run.id

    def test_verify_clean_store(self, store: RunStore) -> None:
        self._busy_store(store)
        assert store.verify() == []

    @pytest.mark.parametrize(
        "view", ["run_state", "status_index", "session_listing", "executions", "tool_ledger"]
    )
    def test_verify_detects_a_tampered_view_and_rebuild_fixes_it(
        self, store: RunStore, view: str
    ) -> None:
        self._busy_store(store)

        def tamper(txn: object) -> None:
            tx = reader(txn, view)  # type: ignore[arg-type]
            key, _ = next(iter(tx.scan()))
            tx.put(key, b"\x00tampered")  # type: ignore[attr-defined]

        store.core.backend.write(tamper)
        problems = store.verify()
        assert problems
        assert {p.kind for p in problems} == {"view_mismatch"}
        assert all(p.projector == view for p in problems)
        assert view in problems[0].where
        store.rebuild_projections([view])
        assert store.verify() == []

    def test_verify_detects_a_removed_event(self, store: RunStore) -> None:
        _, run_id = self._busy_store(store)
        store.core.backend.write(
            lambda txn: txn.delete("events", store.core.engine.index.event_key(txn, run_id, 2))
        )
        kinds = {p.kind: p for p in store.verify()}
        assert "seq_gap" in kinds
        assert kinds["seq_gap"].run_id == run_id
        assert kinds["seq_gap"].seq == 2
        assert "dangling_position" in kinds
        assert kinds["dangling_position"].position == 2

    def test_list_events_of_a_damaged_stream_never_leaks_another_run(self, store: RunStore) -> None:
        # the replay path reads values only and checks the last key; a gap must fall back to
        # the keyed read and still return only this run's events, in seq order
        sid = store.ensure_session()
        runs = sorted(
            (store.create_run(sid, provider="p", model="m") for _ in range(3)),
            key=lambda r: r.id.bytes,
        )
        for run in runs:
            store.append_events(run.id, [TextDelta(f"{run.id}-{i}") for i in range(6)])
        damaged = runs[0].id  # the other runs' keys follow it
        store.core.backend.write(
            lambda txn: txn.delete("events", store.core.engine.index.event_key(txn, damaged, 3))
        )
        assert [r.seq for r in store.list_events(damaged)] == [1, 2, 4, 5, 6]
        assert [r.seq for r in store.list_events(damaged, after_seq=1, to_seq=5)] == [2, 4, 5]
        assert all(r.run_id == damaged for r in store.list_events(damaged, limit=6))
        assert [r.seq for r in store.list_events(runs[1].id, after_seq=2, limit=3)] == [3, 4, 5]

    def test_verify_reports_undecodable_records(self, store: RunStore) -> None:
        _, run_id = self._busy_store(store)
        store.core.backend.write(
            lambda txn: txn.put(
                "events", store.core.engine.index.event_key(txn, run_id, 3), b"\xc1junk"
            )
        )
        undecodable = [p for p in store.verify() if p.kind == "undecodable"]
        assert [(p.run_id, p.seq) for p in undecodable] == [(run_id, 3)]
        assert f"run {run_id} seq 3" in undecodable[0].where

    @pytest.mark.parametrize(
        "view", ["run_state", "status_index", "session_listing", "executions", "tool_ledger"]
    )
    def test_stale_builtin_is_rebuilt_on_open(
        self, store: RunStore, store_path: Path, view: str
    ) -> None:
        if not self.persistent:
            pytest.skip("backend does not persist")
        sid, run_id = self._busy_store(store)
        before = store.core.backend.read(lambda txn: dict(reader(txn, view).scan()))
        assert before
        version = {s.name: s.version for s in store.projector_status()}[view]

        def make_stale(txn: KVTxn) -> None:  # an older version of the view, emptied
            tx = reader(txn, view)
            for key in [k for k, _ in tx.scan()]:
                tx.delete(key)  # type: ignore[attr-defined]
            ProjectorSet.set_meta(txn, view, ProjectorMeta(version - 1, 0, True))

        store.core.backend.write(make_stale)
        assert store.verify()  # stale and empty
        store = self.reopen(store, store_path)
        try:
            after = store.core.backend.read(lambda txn: dict(reader(txn, view).scan()))
            assert after == before
            status = {s.name: s for s in store.projector_status()}[view]
            assert (status.version, status.ready) == (version, True)
            assert store.verify() == []
            assert store.get_run_state(run_id) is not None
            assert store.list_runs(sid)[0].id == run_id
        finally:
            store.close()

    def test_rebuild_reports_progress(self, store: RunStore) -> None:
        self._busy_store(store)
        calls: list[tuple[str, int, int]] = []
        store.rebuild_projections(progress=lambda *a: calls.append(a))
        last = store.last_position()
        finals = {name: (pos, end) for name, pos, end in calls}
        assert finals["status_index"] == (last, last)
        assert set(finals) >= {"run_state", "executions"}
        with pytest.raises(KeyError, match="nope"):
            store.rebuild_projections(["nope"])
        assert store.verify() == []

    # -- projectors ----------------------------------------------------------------------
    def test_user_projector_runs_inline(self, store_path: Path) -> None:
        with self.make_store(store_path, projectors=[_CountingProjector()]) as store:
            run = self.new_run(store)
            store.append_events(run.id, [TextDelta("a"), TextDelta("b"), RunCancelled()])
            view = store.projection("type_counts")
            assert view.get(b"TextDelta") == b"2"
            assert dict(view.scan()) == {b"TextDelta": b"2", b"RunCancelled": b"1"}
            with pytest.raises(KeyError, match="nope"):
                store.projection("nope")

    def test_failing_projector_aborts_append(self, store_path: Path) -> None:
        with self.make_store(store_path, projectors=[_FailingProjector()]) as store:
            run = self.new_run(store)
            store.append_event(run.id, TextDelta("fine"))
            with pytest.raises(ProjectionError) as info:
                store.append_events(run.id, [TextDelta("x"), DoomLoopDetected("loop")])
            assert info.value.projector == "fails_on_doom"
            assert (info.value.run_id, info.value.seq) == (run.id, 3)
            assert [r.seq for r in store.list_events(run.id)] == [1]
            assert store.projection("fails_on_doom").get(b"seen") is None
            assert store.last_position() == 1

    def test_new_projector_is_built_from_the_log(self, store: RunStore, store_path: Path) -> None:
        if not self.persistent:
            pytest.skip("backend does not persist")
        run = self.new_run(store)
        store.append_events(run.id, [TextDelta("a"), TextDelta("b")])
        store = self.reopen(store, store_path, projectors=[_CountingProjector()])
        try:
            assert store.projection("type_counts").get(b"TextDelta") == b"2"
            store.append_event(run.id, TextDelta("c"))
            assert store.projection("type_counts").get(b"TextDelta") == b"3"
            calls: list[tuple[str, int, int]] = []
            store.rebuild_projections(progress=lambda *a: calls.append(a))
            assert calls[-1] == ("type_counts", 3, 3)
            assert store.projection("type_counts").get(b"TextDelta") == b"3"
        finally:
            store.close()
