"""The contract every backend must pass: subclass :class:`StoreContract` once per backend.

>>> # in tests/test_contract.py
>>> # class TestMemory(StoreContract):
>>> #     def make_store(self, path): return RunStore.in_memory()

Users can run it against their own configuration too. Requires pytest.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar
from uuid import UUID, uuid4

import msgspec
import pytest

from eventlog import (
    AlreadyExistsError,
    AppendRequest,
    ConcurrencyError,
    InvalidTransition,
    RawEvent,
    RunNotFound,
    RunRecord,
    RunState,
    RunStatus,
    RunStore,
    SessionNotFound,
    StoreClosedError,
    StreamNotFound,
)
from eventlog.model.events import (
    AssistantMessageCommitted,
    CompactionCircuitOpened,
    ContextBuilt,
    DoomLoopDetected,
    Event,
    Failure,
    ModelStarted,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunStarted,
    RunStatusChanged,
    Success,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolCallCompleted,
    ToolCallDelta,
    ToolCallStarted,
    ToolExecutionFinished,
    ToolExecutionStarted,
    ToolMessageCommitted,
    UsageRecorded,
)
from eventlog.testing.event_types import TypesContract
from eventlog.testing.forks import ForksContract
from eventlog.testing.history import HistoryContract
from eventlog.testing.listing import ListingContract
from eventlog.testing.multi_stream import MultiStreamContract
from eventlog.testing.retention import RetentionContract
from eventlog.testing.streams import StreamsContract
from eventlog.testing.subscriptions import SubscriptionsContract
from eventlog.testing.views import ViewsContract

__all__ = ["StoreContract", "sample_events"]


def sample_events(session_id: UUID) -> list[Event]:
    """One of every built-in event type, in a realistic order (ends with RunCompleted)."""
    return [
        RunStarted(session_id, "openai", "gpt-4o"),
        ContextBuilt(3),
        ModelStarted("openai", "gpt-4o", 1),
        TextDelta("Let me look"),
        ToolCallStarted("call_1", "search"),
        ToolCallDelta("call_1", '{"q": "lm'),
        ToolCallCompleted(ToolCall("call_1", "search", {"q": "lmdb"})),
        ToolExecutionStarted("call_1", "search"),
        ToolExecutionFinished("call_1", "search", Success({"hits": 3}), 12),
        ToolExecutionFinished("call_2", "fetch", Failure("timeout"), 5000),
        ToolMessageCommitted(uuid4()),
        AssistantMessageCommitted(uuid4()),
        UsageRecorded(TokenUsage(100, 20, 120)),
        DoomLoopDetected("same tool call three times"),
        CompactionCircuitOpened(3),
        RunStatusChanged(RunStatus.PERSISTING),
        UsageRecorded(TokenUsage(10, 2, 12)),
        RunCompleted("stop", 1),
    ]


class StoreContract(
    RetentionContract,
    ViewsContract,
    ListingContract,
    SubscriptionsContract,
    StreamsContract,
    MultiStreamContract,
    TypesContract,
    HistoryContract,
    ForksContract,
):
    """The behaviour every backend shares. Subclass and implement :meth:`make_store`."""

    #: False for backends whose data does not survive close (memory).
    persistent: ClassVar[bool] = True

    def make_store(self, path: Path, **options: object) -> RunStore:
        """Open a store for a test (``path`` is an empty temporary directory)."""
        raise NotImplementedError

    @pytest.fixture
    def store_path(self, tmp_path: Path) -> Path:
        return tmp_path / "store"

    @pytest.fixture
    def store(self, store_path: Path) -> Iterator[RunStore]:
        s = self.make_store(store_path)
        yield s
        s.close()

    def reopen(self, store: RunStore, path: Path, **options: object) -> RunStore:
        store.close()
        return self.make_store(path, **options)

    @staticmethod
    def new_run(store: RunStore) -> RunRecord:
        return store.create_run(store.ensure_session(), provider="openai", model="gpt-4o")

    # -- sessions ------------------------------------------------------------------------
    def test_create_and_get_session(self, store: RunStore) -> None:
        s = store.create_session(title="t", model="m", metadata={"k": [1, 2]})
        got = store.get_session(s.id)
        assert got == s
        assert (got.title, got.model, got.metadata) == ("t", "m", {"k": [1, 2]})
        assert store.get_session(str(s.id)) == s

    def test_get_unknown_session_is_none(self, store: RunStore) -> None:
        assert store.get_session(uuid4()) is None

    def test_ensure_session(self, store: RunStore) -> None:
        sid = store.ensure_session()
        assert store.get_session(sid) is not None
        assert store.ensure_session(sid) == sid
        unknown = uuid4()
        with pytest.raises(SessionNotFound, match=str(unknown)):
            store.ensure_session(unknown)

    def test_duplicate_session_id_refused(self, store: RunStore) -> None:
        s = store.create_session()
        with pytest.raises(AlreadyExistsError, match=str(s.id)):
            store.create_session(session_id=s.id)

    def test_bad_ids_are_type_errors(self, store: RunStore) -> None:
        with pytest.raises(TypeError, match="session_id"):
            store.get_session("not-a-uuid")
        with pytest.raises(TypeError, match="run_id"):
            store.get_run(42)  # type: ignore[arg-type]

    # -- runs ----------------------------------------------------------------------------
    def test_create_run(self, store: RunStore) -> None:
        sid = store.ensure_session()
        run = store.create_run(sid, provider="anthropic", model="claude", metadata={"a": 1})
        assert run.session_id == sid
        assert run.status is RunStatus.PENDING
        assert (run.provider, run.model, run.metadata) == ("anthropic", "claude", {"a": 1})
        assert store.get_run(run.id) == run
        state = store.get_run_state(run.id)
        assert state is not None
        assert (state.event_count, state.last_seq, state.status) == (0, 0, RunStatus.PENDING)
        assert store.list_events(run.id) == []

    def test_create_run_unknown_session(self, store: RunStore) -> None:
        sid = uuid4()
        with pytest.raises(SessionNotFound, match=str(sid)):
            store.create_run(sid, provider="p", model="m")

    def test_create_run_client_request_id_is_idempotent(self, store: RunStore) -> None:
        sid = store.ensure_session()
        a = store.create_run(sid, provider="p", model="m", client_request_id="req-1")
        b = store.create_run(sid, provider="p", model="m", client_request_id="req-1")
        c = store.create_run(sid, provider="p", model="m", client_request_id="req-2")
        assert a.id == b.id
        assert c.id != a.id

    def test_explicit_run_id(self, store: RunStore) -> None:
        sid = store.ensure_session()
        rid = uuid4()
        assert store.create_run(sid, provider="p", model="m", run_id=rid).id == rid
        with pytest.raises(AlreadyExistsError, match=str(rid)):
            store.create_run(sid, provider="p", model="m", run_id=rid)

    def test_get_unknown_run_is_none(self, store: RunStore) -> None:
        assert store.get_run(uuid4()) is None
        assert store.get_run_state(uuid4()) is None

    # -- appends -------------------------------------------------------------------------
    def test_append_assigns_seq_and_position(self, store: RunStore) -> None:
        a, b = self.new_run(store), self.new_run(store)
        r1 = store.append_event(a.id, TextDelta("1"))
        r2 = store.append_event(b.id, TextDelta("2"))
        r3 = store.append_event(a.id, TextDelta("3"))
        assert [(r.run_id, r.seq) for r in (r1, r2, r3)] == [(a.id, 1), (b.id, 1), (a.id, 2)]
        assert [r.position for r in (r1, r2, r3)] == [1, 2, 3]
        assert r1.recorded_at.tzinfo is not None
        assert store.list_events(a.id) == [r1, r3]
        assert store.last_position() == 3

    def test_every_event_type_round_trips(self, store: RunStore) -> None:
        run = self.new_run(store)
        events = sample_events(run.session_id)
        records = store.append_events(run.id, events)
        assert [r.seq for r in records] == list(range(1, len(events) + 1))
        listed = store.list_events(run.id)
        assert [r.event for r in listed] == events
        assert listed == records

    def test_batch_is_atomic_on_bad_item(self, store: RunStore) -> None:
        run = self.new_run(store)
        bad: list[object] = [TextDelta("ok"), {"type": "TextDelta", "delta": "x"}]
        with pytest.raises(TypeError, match="dict"):
            store.append_events(run.id, bad)  # type: ignore[arg-type]
        assert store.list_events(run.id) == []
        assert store.last_position() == 0

    def test_non_events_are_type_errors(self, store: RunStore) -> None:
        run = self.new_run(store)
        for bad in ({"delta": "x"}, "hello", 3, None):
            with pytest.raises(TypeError, match="expected an event"):
                store.append_event(run.id, bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="list of events"):
            store.append_events(run.id, TextDelta("x"))  # type: ignore[arg-type]
        assert store.list_events(run.id) == []

    def test_unknown_run(self, store: RunStore) -> None:
        rid = uuid4()
        with pytest.raises(RunNotFound, match=str(rid)):
            store.append_event(rid, TextDelta("x"))
        with pytest.raises(RunNotFound):
            store.append_events(rid, [TextDelta("x")])
        with pytest.raises(RunNotFound):
            store.list_events(rid)
        with pytest.raises(RunNotFound):
            store.update_run_status(rid, RunStatus.CALLING_MODEL)
        assert store.last_position() == 0

    def test_run_not_found_is_lookup_error(self, store: RunStore) -> None:
        with pytest.raises(LookupError):
            store.list_events(uuid4())

    # -- optimistic concurrency ----------------------------------------------------------
    def test_expected_seq(self, store: RunStore) -> None:
        run = self.new_run(store)
        assert store.append_event(run.id, TextDelta("a"), expected_seq=0).seq == 1
        assert store.append_events(run.id, [TextDelta("b")], expected_seq=1)[0].seq == 2
        with pytest.raises(ConcurrencyError) as info:
            store.append_events(run.id, [TextDelta("c"), TextDelta("d")], expected_seq=1)
        err = info.value
        assert (err.run_id, err.expected_seq, err.actual_seq) == (run.id, 1, 2)
        assert str(run.id) in str(err)
        assert [r.seq for r in store.list_events(run.id)] == [1, 2]
        assert store.last_position() == 2

    def test_empty_batch_checks_but_writes_nothing(self, store: RunStore) -> None:
        run = self.new_run(store)
        assert store.append_events(run.id, []) == []
        assert store.append_events(run.id, [], expected_seq=0) == []
        with pytest.raises(ConcurrencyError):
            store.append_events(run.id, [], expected_seq=5)
        with pytest.raises(ConcurrencyError):
            store.append_events(run.id, [], expected_seq=5, event_ids=[])
        with pytest.raises(RunNotFound):
            store.append_events(uuid4(), [])
        assert store.last_position() == 0

    def test_bad_expected_seq(self, store: RunStore) -> None:
        run = self.new_run(store)
        with pytest.raises(ValueError, match="expected_seq"):
            store.append_event(run.id, TextDelta("a"), expected_seq=-1)

    # -- idempotency ---------------------------------------------------------------------
    def test_event_id_retry_returns_stored_record(self, store: RunStore) -> None:
        run = self.new_run(store)
        eid = uuid4()
        first = store.append_event(run.id, TextDelta("a"), event_id=eid)
        again = store.append_event(run.id, TextDelta("different"), event_id=eid)
        assert again == first
        assert again.event_id == eid
        assert len(store.list_events(run.id)) == 1
        assert store.last_position() == 1
        # a retry with a stale expected_seq still returns the stored record
        assert store.append_event(run.id, TextDelta("a"), event_id=eid, expected_seq=0) == first

    def test_event_id_is_per_run(self, store: RunStore) -> None:
        a, b = self.new_run(store), self.new_run(store)
        eid = uuid4()
        ra = store.append_event(a.id, TextDelta("a"), event_id=eid)
        rb = store.append_event(b.id, TextDelta("b"), event_id=eid)
        assert (ra.run_id, rb.run_id) == (a.id, b.id)
        assert rb.position == 2

    def test_batch_event_ids(self, store: RunStore) -> None:
        run = self.new_run(store)
        e1, e2, e3 = uuid4(), uuid4(), uuid4()
        first = store.append_events(run.id, [TextDelta("1"), TextDelta("2")], event_ids=[e1, e2])
        again = store.append_events(
            run.id, [TextDelta("1"), TextDelta("2"), TextDelta("3")], event_ids=[e1, e2, e3]
        )
        assert again[:2] == first
        assert again[2].seq == 3
        dup = store.append_events(run.id, [TextDelta("4"), TextDelta("4")], event_ids=[None, None])
        assert [r.seq for r in dup] == [4, 5]
        same = uuid4()
        twice = store.append_events(
            run.id, [TextDelta("6"), TextDelta("6")], event_ids=[same, same]
        )
        assert twice[0] == twice[1]
        assert len(store.list_events(run.id)) == 6
        with pytest.raises(ValueError, match="event_ids"):
            store.append_events(run.id, [TextDelta("x")], event_ids=[uuid4(), uuid4()])

    def test_event_id_survives_reopen(self, store: RunStore, store_path: Path) -> None:
        if not self.persistent:
            pytest.skip("backend does not persist")
        run = self.new_run(store)
        eid = uuid4()
        first = store.append_event(run.id, TextDelta("a"), event_id=eid)
        store = self.reopen(store, store_path)
        try:
            assert store.append_event(run.id, TextDelta("a"), event_id=eid) == first
            assert len(store.list_events(run.id)) == 1
        finally:
            store.close()

    # -- status and transitions -----------------------------------------------------------
    def test_update_run_status_appends_an_event(self, store: RunStore) -> None:
        run = self.new_run(store)
        rec = store.update_run_status(run.id, RunStatus.BUILDING_CONTEXT)
        assert rec.status is RunStatus.BUILDING_CONTEXT
        (ev,) = store.list_events(run.id)
        assert isinstance(ev.event, RunStatusChanged)
        assert ev.event.status is RunStatus.BUILDING_CONTEXT
        assert store.update_run_status(run.id, "calling_model").status is RunStatus.CALLING_MODEL
        run_now = store.get_run(run.id)
        assert run_now is not None
        assert run_now.status is RunStatus.CALLING_MODEL

    def test_bad_status(self, store: RunStore) -> None:
        run = self.new_run(store)
        with pytest.raises(ValueError, match="unknown run status 'done'"):
            store.update_run_status(run.id, "done")
        assert store.list_events(run.id) == []

    @pytest.mark.parametrize("terminal", ["completed", "failed", "cancelled"])
    def test_terminal_is_final(self, store: RunStore, terminal: str) -> None:
        run = self.new_run(store)
        store.update_run_status(run.id, terminal)
        with pytest.raises(InvalidTransition) as info:
            store.update_run_status(run.id, RunStatus.CALLING_MODEL)
        assert (info.value.current, info.value.requested) == (terminal, "calling_model")
        assert terminal in str(info.value)
        assert "calling_model" in str(info.value)
        with pytest.raises(InvalidTransition):
            store.append_events(run.id, [TextDelta("late"), ModelStarted("p", "m", 2)])
        assert len(store.list_events(run.id)) == 1
        # staying in the terminal status, and events that do not move the status, are allowed
        assert store.update_run_status(run.id, terminal).status == terminal
        store.append_event(run.id, UsageRecorded(TokenUsage(1, 1, 2)))
        state = store.get_run_state(run.id)
        assert state is not None
        assert state.status == terminal

    def test_event_moving_terminal_run_refused(self, store: RunStore) -> None:
        run = self.new_run(store)
        store.append_event(run.id, RunFailed("provider down"))
        with pytest.raises(InvalidTransition, match="failed"):
            store.append_event(run.id, RunCompleted("stop", 1))
        with pytest.raises(InvalidTransition):
            store.append_event(run.id, RunCancelled())
        state = store.get_run_state(run.id)
        assert state is not None
        assert (state.status, state.last_error, state.event_count) == ("failed", "provider down", 1)

    # -- state ---------------------------------------------------------------------------
    def test_state_equals_fresh_fold(self, store: RunStore) -> None:
        run = self.new_run(store)
        store.append_events(run.id, sample_events(run.session_id))
        state = store.get_run_state(run.id)
        record = store.get_run(run.id)
        assert state is not None
        assert record is not None
        assert state == RunState.fold(run, store.list_events(run.id))
        assert state.status is RunStatus.COMPLETED
        assert record.status is RunStatus.COMPLETED
        assert state.total_usage == TokenUsage(110, 22, 132)
        assert (state.iteration, state.last_finish, state.event_count, state.last_seq) == (
            1,
            "stop",
            18,
            18,
        )
        assert record.updated_at == state.updated_at

    # -- reading ranges ------------------------------------------------------------------
    def test_list_events_ranges(self, store: RunStore) -> None:
        run = self.new_run(store)
        store.append_events(run.id, [TextDelta(str(i)) for i in range(1, 11)])

        def seqs(
            after_seq: int = 0, to_seq: int | None = None, limit: int | None = None
        ) -> list[int]:
            records = store.list_events(run.id, after_seq=after_seq, to_seq=to_seq, limit=limit)
            return [r.seq for r in records]

        assert seqs(after_seq=7) == [8, 9, 10]
        assert seqs(to_seq=3) == [1, 2, 3]
        assert seqs(after_seq=2, to_seq=5) == [3, 4, 5]
        assert seqs(limit=2) == [1, 2]
        assert seqs(after_seq=4, limit=3) == [5, 6, 7]
        assert seqs(limit=0) == []
        assert seqs(after_seq=10) == []
        with pytest.raises(ValueError, match="after_seq"):
            store.list_events(run.id, after_seq=-1)

    def test_read_log(self, store: RunStore) -> None:
        a, b = self.new_run(store), self.new_run(store)
        store.append_event(a.id, TextDelta("1"))
        store.append_event(b.id, TextDelta("2"))
        store.append_event(a.id, TextDelta("3"))
        assert [(r.run_id, r.seq) for r in store.read_log()] == [(a.id, 1), (b.id, 1), (a.id, 2)]
        assert [r.position for r in store.read_log(after_position=1, limit=1)] == [2]

    def test_threads_appending_to_one_run(self, store: RunStore) -> None:
        run = self.new_run(store)
        errors: list[BaseException] = []

        def writer(n: int) -> None:
            try:
                for i in range(50):
                    store.append_event(run.id, TextDelta(f"{n}:{i}"))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert errors == []
        events = store.list_events(run.id)
        assert [r.seq for r in events] == list(range(1, 401))
        assert [r.position for r in events] == list(range(1, 401))
        for n in range(8):  # each thread's events keep that thread's order
            mine = [r.event.delta for r in events if r.event.delta.startswith(f"{n}:")]  # type: ignore[attr-defined]
            assert mine == [f"{n}:{i}" for i in range(50)]

    def test_last_events(self, store: RunStore) -> None:
        a, b = self.new_run(store), self.new_run(store)
        store.append_events(a.id, [TextDelta(str(i)) for i in range(5)])
        store.append_events(b.id, [TextDelta("b")] * 3)
        assert [r.position for r in store.last_events(4)] == [5, 6, 7, 8]
        assert [r.seq for r in store.last_events(2, run_id=a.id)] == [4, 5]
        store.delete_run(b.id)
        assert [r.position for r in store.last_events(3)] == [3, 4, 5]  # events, not positions
        assert store.last_events(0) == []
        with pytest.raises(RunNotFound):
            store.last_events(1, run_id=b.id)

    # -- delete --------------------------------------------------------------------------
    def test_delete_run(self, store: RunStore) -> None:
        a, b = self.new_run(store), self.new_run(store)
        store.append_events(a.id, [TextDelta("a1"), TextDelta("a2")], event_ids=[uuid4(), None])
        store.append_event(b.id, TextDelta("b1"))
        assert store.delete_run(a.id) is True
        assert store.delete_run(a.id) is False
        assert store.get_run(a.id) is None
        assert store.get_run_state(a.id) is None
        with pytest.raises(RunNotFound):
            store.list_events(a.id)
        with pytest.raises(RunNotFound):
            store.append_event(a.id, TextDelta("late"))
        assert [r.position for r in store.read_log()] == [3]
        # positions are never reused
        assert store.append_event(b.id, TextDelta("b2")).position == 4
        assert store.last_position() == 4
        assert [r.seq for r in store.list_events(b.id)] == [1, 2]

    def test_deleting_the_newest_run_does_not_reuse_positions(
        self, store: RunStore, store_path: Path
    ) -> None:
        a, b = self.new_run(store), self.new_run(store)
        store.append_event(a.id, TextDelta("a1"))
        store.append_events(b.id, [TextDelta("b1"), TextDelta("b2")])
        assert store.delete_run(b.id)
        assert store.last_position() == 3
        assert [r.position for r in store.read_log()] == [1]
        if self.persistent:
            store = self.reopen(store, store_path)
        try:
            assert store.append_event(a.id, TextDelta("a2")).position == 4
            assert [r.position for r in store.read_log()] == [1, 4]
        finally:
            if self.persistent:
                store.close()

    def test_delete_unknown_run(self, store: RunStore) -> None:
        assert store.delete_run(uuid4()) is False

    # -- multi-run append ----------------------------------------------------------------
    def test_append_many(self, store: RunStore) -> None:
        a, b = self.new_run(store), self.new_run(store)
        out = store.append_many(
            [
                AppendRequest(a.id, [TextDelta("a1"), TextDelta("a2")], expected_seq=0),
                AppendRequest(b.id, [TextDelta("b1")], expected_seq=0),
                AppendRequest(a.id, [TextDelta("a3")], expected_seq=2),
            ]
        )
        assert [[(r.run_id, r.seq, r.position) for r in part] for part in out] == [
            [(a.id, 1, 1), (a.id, 2, 2)],
            [(b.id, 1, 3)],
            [(a.id, 3, 4)],
        ]

    def test_append_many_is_all_or_nothing(self, store: RunStore) -> None:
        a, b = self.new_run(store), self.new_run(store)
        store.append_event(b.id, TextDelta("b1"))
        with pytest.raises(ConcurrencyError):
            store.append_many(
                [
                    AppendRequest(a.id, [TextDelta("a1")], expected_seq=0),
                    AppendRequest(b.id, [TextDelta("b2")], expected_seq=0),
                ]
            )
        with pytest.raises(StreamNotFound):  # no kind named: any existing stream
            store.append_many(
                [AppendRequest(a.id, [TextDelta("a1")]), AppendRequest(uuid4(), [TextDelta("x")])]
            )
        assert store.list_events(a.id) == []
        assert store.last_position() == 1

    # -- unknown event types -------------------------------------------------------------
    def test_unknown_event_type_reads_as_raw(self, store: RunStore) -> None:
        run = self.new_run(store)
        raw = RawEvent("FutureEvent", 3, {"type": "FutureEvent", "answer": 42, "nested": [1]})
        rec = store.append_event(run.id, raw)
        (listed,) = store.list_events(run.id)
        assert listed.event == raw
        assert listed.type == "FutureEvent"
        assert rec == listed
        state = store.get_run_state(run.id)
        assert state is not None
        assert state.event_count == 1

    def test_known_type_with_incompatible_shape_reads_as_raw(self, store: RunStore) -> None:
        run = self.new_run(store)
        store.append_event(run.id, RawEvent("TextDelta", 2, {"type": "TextDelta", "delta": 5}))
        (listed,) = store.list_events(run.id)
        assert isinstance(listed.event, RawEvent)
        assert listed.event.data["delta"] == 5

    def test_raw_event_of_known_type_decodes_typed(self, store: RunStore) -> None:
        run = self.new_run(store)
        payload = msgspec.to_builtins(TextDelta("hi"))
        assert isinstance(payload, dict)
        store.append_event(run.id, RawEvent("TextDelta", 1, payload))
        (listed,) = store.list_events(run.id)
        assert isinstance(listed.event, TextDelta)
        assert listed.event.delta == "hi"

    # -- lifecycle -----------------------------------------------------------------------
    def test_data_survives_reopen(self, store: RunStore, store_path: Path) -> None:
        if not self.persistent:
            pytest.skip("backend does not persist")
        run = self.new_run(store)
        records = store.append_events(run.id, sample_events(run.session_id))
        state = store.get_run_state(run.id)
        store = self.reopen(store, store_path)
        try:
            assert store.get_run(run.id) is not None
            assert store.list_events(run.id) == records
            assert store.get_run_state(run.id) == state
            assert store.append_event(run.id, UsageRecorded(TokenUsage())).position == 19
        finally:
            store.close()

    def test_closed_store_raises(self, store: RunStore) -> None:
        run = self.new_run(store)
        store.close()
        store.close()  # idempotent
        with pytest.raises(StoreClosedError):
            store.append_event(run.id, TextDelta("x"))
        with pytest.raises(StoreClosedError):
            store.get_run(run.id)
        with pytest.raises(StoreClosedError):
            store.list_events(run.id)

    def test_context_manager_and_health(self, store_path: Path) -> None:
        with self.make_store(store_path) as store:
            store.health_check()
        with pytest.raises(StoreClosedError):
            store.health_check()
