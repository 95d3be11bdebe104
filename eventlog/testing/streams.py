"""The contract of streams of other kinds (a LangGraph thread, an Agents SDK session).

Mixed into :class:`eventlog.testing.StoreContract`; every backend runs it. Such a stream has
the guarantees of a run: seq 1..n gap-free, dense commit-ordered positions, ``expected_seq``,
durable ``event_ids``, listing by kind and deletion of everything it owns in one transaction.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import ClassVar
from uuid import uuid4

import msgspec
import pytest

from eventlog import (
    AlreadyExistsError,
    ConcurrencyError,
    EventRecord,
    ProjectionTx,
    RunNotFound,
    RunStore,
    SessionNotFound,
    StreamNotFound,
    StreamRecord,
    UserMessage,
    stream_id_for,
)
from eventlog.model.events import TextDelta
from eventlog.model.messages import (
    AssistantMessage,
    MessageAppended,
    MessageRetracted,
    MessagesCleared,
    TextPart,
)
from eventlog.testing.event_types import TicketOpened, TicketTagged

__all__ = ["StreamsContract"]

KIND = "eventlog.contract.thread"


class _TagView(msgspec.Struct):
    tag: str = ""


class StreamLog:
    """Per stream: its kind (from the hooks) and its event count (from the events)."""

    name: ClassVar[str] = "contract_stream_log"
    version: ClassVar[int] = 1
    event_types: ClassVar[frozenset[str]] = frozenset()

    def on_stream_created(self, tx: ProjectionTx, stream: StreamRecord) -> None:
        tx.put(b"k" + stream.id.bytes, stream.kind.encode())

    def on_stream_deleted(self, tx: ProjectionTx, stream: StreamRecord) -> None:
        tx.delete(b"k" + stream.id.bytes)
        tx.delete(b"n" + stream.id.bytes)

    def apply(self, tx: ProjectionTx, record: EventRecord) -> None:
        if tx.get(b"k" + record.run_id.bytes) is not None:  # only streams of other kinds
            key = b"n" + record.run_id.bytes
            tx.put(key, str(int(tx.get(key) or b"0") + 1).encode())


class StreamsContract:
    """Streams of other kinds behave like runs on every backend."""

    persistent: ClassVar[bool]

    def make_store(self, path: Path, **options: object) -> RunStore:
        raise NotImplementedError

    def reopen(self, store: RunStore, path: Path, **options: object) -> RunStore:
        raise NotImplementedError

    def test_create_get_ensure(self, store: RunStore) -> None:
        created = store.create_stream(kind=KIND, metadata={"graph": "g", "n": [1]})
        assert (created.kind, created.metadata) == (KIND, {"graph": "g", "n": [1]})
        assert created.created_at == created.updated_at
        assert store.get_stream(created.id) == created
        assert store.get_stream(str(created.id)) == created
        assert store.get_stream(uuid4()) is None
        sid = stream_id_for(KIND, "thread-1")
        first = store.ensure_stream(sid, kind=KIND, metadata={"a": 1})
        again = store.ensure_stream(str(sid), kind=KIND, metadata={"ignored": True})
        assert again == first
        assert again.metadata == {"a": 1}
        with pytest.raises(AlreadyExistsError, match=str(sid)):
            store.create_stream(sid, kind=KIND)
        with pytest.raises(AlreadyExistsError, match=r"kind 'eventlog\.contract\.thread'"):
            store.ensure_stream(sid, kind="eventlog.contract.other")
        run = store.create_run(store.ensure_session(), provider="p", model="m")
        with pytest.raises(AlreadyExistsError, match=f"run {run.id}"):
            store.ensure_stream(run.id, kind=KIND)
        assert store.list_streams("eventlog.contract.other") == []

    def test_bad_kinds_and_ids(self, store: RunStore) -> None:
        for reserved in ("run", "session"):
            with pytest.raises(ValueError, match="reserved"):
                store.create_stream(kind=reserved)
        for bad in ("", "Upper", "has space", "9lives", "x" * 65):
            with pytest.raises(ValueError, match="not valid"):
                store.create_stream(kind=bad)
        with pytest.raises(TypeError, match="stream kind"):
            store.create_stream(kind=3)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="stream_id"):
            store.get_stream("nope")
        with pytest.raises(ValueError, match="not valid"):
            store.list_streams("Bad Kind")
        with pytest.raises(TypeError, match="metadata"):
            store.create_stream(kind=KIND, metadata=[1])  # type: ignore[arg-type]
        assert store.last_position() == 0

    def test_seq_positions_and_expected_seq(self, store: RunStore) -> None:
        run = store.create_run(store.ensure_session(), provider="p", model="m")
        sid = store.create_stream(kind=KIND).id
        a = store.append_to_stream(sid, [TicketOpened("t"), TicketTagged("x")], expected_seq=0)
        r = store.append_event(run.id, TextDelta("run"))
        b = store.append_to_stream(sid, [TextDelta("plain built-in")], expected_seq=2)
        assert [(e.seq, e.position) for e in a + b] == [(1, 1), (2, 2), (3, 4)]
        assert r.position == 3
        assert {e.run_id for e in a + b} == {sid}
        with pytest.raises(ConcurrencyError) as info:
            store.append_to_stream(sid, [TicketTagged("late")], expected_seq=2)
        assert (info.value.expected_seq, info.value.actual_seq) == (2, 3)
        assert store.read_stream(sid) == a + b
        assert [e.seq for e in store.read_stream(sid, after_seq=1, to_seq=2)] == [2]
        assert [e.seq for e in store.read_stream(sid, limit=1)] == [1]
        assert store.read_stream(sid, limit=0) == []
        assert [e.run_id for e in store.read_log()] == [sid, sid, run.id, sid]
        assert store.append_to_stream(sid, [], expected_seq=3) == []
        with pytest.raises(ConcurrencyError):
            store.append_to_stream(sid, [], expected_seq=0)
        got = store.get_stream(sid)
        assert got is not None
        assert got.updated_at == b[-1].recorded_at
        state = store.get_run_state(run.id)
        assert state is not None
        assert state.event_count == 1  # run views do not see other streams
        assert store.verify() == []

    def test_event_ids_are_idempotent(self, store: RunStore, store_path: Path) -> None:
        sid = store.create_stream(kind=KIND).id
        e1, e2 = uuid4(), uuid4()
        first = store.append_to_stream(
            sid, [TicketTagged("1"), TicketTagged("2")], event_ids=[e1, e2]
        )
        again = store.append_to_stream(
            sid, [TicketTagged("1"), TicketTagged("3")], event_ids=[e1, None], expected_seq=2
        )
        assert again[0] == first[0]
        assert again[1].seq == 3
        with pytest.raises(ValueError, match="event_ids"):
            store.append_to_stream(sid, [TicketTagged("x")], event_ids=[e1, e2])
        if self.persistent:
            store = self.reopen(store, store_path)
        try:
            assert store.append_to_stream(sid, [TicketTagged("2")], event_ids=[e2]) == [first[1]]
            assert len(store.read_stream(sid)) == 3
        finally:
            if self.persistent:
                store.close()

    def test_wrong_kind_and_unknown_ids(self, store: RunStore) -> None:
        session = store.create_session()
        run = store.create_run(session.id, provider="p", model="m")
        sid = store.create_stream(kind=KIND).id
        unknown = uuid4()
        with pytest.raises(StreamNotFound, match=f"stream {unknown} not found: create it"):
            store.append_to_stream(unknown, [TicketTagged("x")])
        with pytest.raises(StreamNotFound):
            store.read_stream(unknown)
        with pytest.raises(StreamNotFound, match="it is a run: use append_event") as info:
            store.append_to_stream(run.id, [TicketTagged("x")])
        assert info.value.found == "run"
        assert isinstance(info.value, LookupError)
        with pytest.raises(StreamNotFound, match="it is a session: use append_message"):
            store.delete_stream(session.id)
        with pytest.raises(StreamNotFound, match="delete_run"):
            store.delete_stream(run.id)
        with pytest.raises(RunNotFound):
            store.append_event(sid, TextDelta("x"))
        with pytest.raises(SessionNotFound):
            store.append_message(sid, UserMessage("x"))
        assert store.delete_run(sid) is False
        with pytest.raises(TypeError, match="list of events"):
            store.append_to_stream(sid, TicketTagged("x"))  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="expected an event"):
            store.append_to_stream(sid, [{"tag": "x"}])  # type: ignore[list-item]
        assert store.last_position() == 0

    def test_read_stream_reads_any_stream_and_its_tail(self, store: RunStore) -> None:
        session = store.create_session()
        run = store.create_run(session.id, provider="p", model="m")
        sid = store.create_stream(kind=KIND).id
        store.append_to_stream(sid, [TicketTagged(str(i)) for i in range(1, 8)])
        store.append_events(run.id, [TextDelta("a"), TextDelta("b")])
        store.append_message(session.id, UserMessage("hi"))
        assert [r.seq for r in store.read_stream(run.id)] == [1, 2]
        assert [r.seq for r in store.read_stream(session.id)] == [1]

        def tail(
            limit: int | None = None, to_seq: int | None = None, after_seq: int = 0
        ) -> list[int]:
            records = store.read_stream(
                sid, reverse=True, limit=limit, to_seq=to_seq, after_seq=after_seq
            )
            views = store.read_stream_view(  # a view reads the same events, fewer fields
                sid, _TagView, reverse=True, limit=limit, to_seq=to_seq, after_seq=after_seq
            )
            assert views == [
                (r.seq, r.type, _TagView(getattr(r.event, "tag", ""))) for r in records
            ]
            return [r.seq for r in records]

        assert tail() == [7, 6, 5, 4, 3, 2, 1]
        assert tail(limit=3) == [7, 6, 5]
        assert tail(limit=3, to_seq=4) == [4, 3, 2]
        assert tail(limit=3, to_seq=2) == [2, 1]
        assert tail(limit=10, after_seq=5) == [7, 6]
        assert tail(limit=0) == []
        with pytest.raises(StreamNotFound):
            store.read_stream(uuid4(), reverse=True)
        assert [v for _, _, v in store.read_stream_view(sid, _TagView, limit=2)] == [
            _TagView("1"),
            _TagView("2"),
        ]
        assert store.read_stream_view(run.id, _TagView, limit=1) == [(1, "TextDelta", _TagView())]

        class Strict(msgspec.Struct):
            tag: int

        with pytest.raises(ValueError, match=r"seq 1: the stored payload does not fit the view"):
            store.read_stream_view(sid, Strict)
        with pytest.raises(TypeError, match=r"msgspec\.Struct subclass"):
            store.read_stream_view(sid, dict)  # type: ignore[type-var]

    def test_a_session_stream_folds_into_its_transcript(self, store: RunStore) -> None:
        session = store.create_session()
        sid = session.id
        store.append_message(sid, UserMessage("one"))
        item = {"role": "assistant", "content": [{"type": "output_text", "text": "two"}]}
        two = MessageAppended(AssistantMessage("two"), source=item)
        records = store.append_to_stream(
            sid,
            [
                two,
                TicketTagged("not a message"),
                MessageAppended(UserMessage("three")),
            ],
            expected_seq=1,
        )
        assert [r.seq for r in records] == [2, 3, 4]
        assert records[0].event == two
        assert [m.content for m in store.list_messages(sid)] == [
            [TextPart("one")],
            [TextPart("two")],
            [TextPart("three")],
        ]
        store.append_to_stream(sid, [MessageRetracted(2)])
        assert [m.content for m in store.list_messages(sid)] == [
            [TextPart("one")],
            [TextPart("three")],
        ]
        assert [m.content for m in store.list_messages(sid, after_seq=1, limit=1)] == [
            [TextPart("three")]
        ]
        store.append_to_stream(sid, [MessagesCleared()])
        store.append_message(sid, UserMessage("after"))
        assert [m.content for m in store.list_messages(sid)] == [[TextPart("after")]]
        (stored,) = [r for r in store.read_stream(sid) if r.seq == 2]
        assert stored.event == two
        with pytest.raises(StreamNotFound, match="append_event"):
            store.append_to_stream(store.create_run(sid, provider="p", model="m").id, [])
        assert store.verify() == []

    def test_list_streams_by_kind(self, store: RunStore) -> None:
        mine = [store.create_stream(kind=KIND, metadata={"i": i}) for i in range(5)]
        other = store.create_stream(kind="eventlog.contract.other")
        assert store.list_streams(KIND) == mine
        assert store.list_streams(KIND, limit=2, offset=1) == mine[1:3]
        assert store.list_streams(KIND, offset=5) == []
        assert store.list_streams(KIND, limit=0) == []
        assert store.list_streams("eventlog.contract.other") == [other]
        with pytest.raises(ValueError, match="limit"):
            store.list_streams(KIND, limit=-1)

    def test_list_stream_kinds(self, store: RunStore) -> None:
        assert store.list_stream_kinds() == []
        session = store.create_session()
        store.create_run(session.id, provider="p", model="m")
        assert store.list_stream_kinds() == []  # runs and sessions are not kinds
        # kinds that are prefixes of one another, and several streams of one kind
        kinds = ["ec.a", "ec.a.b", "ec.a-b", "ec.a_b", "ec.ab", "ec.a0", "ec.b"]
        made = {k: [store.create_stream(kind=k).id for _ in range(3)] for k in reversed(kinds)}
        store.append_to_stream(uuid4(), [TicketTagged("x")], expected_seq=0, kind="ec.new")
        assert store.list_stream_kinds() == sorted([*kinds, "ec.new"])
        for sid in made["ec.a"][:2]:
            store.delete_stream(sid)
        assert "ec.a" in store.list_stream_kinds()  # one stream of it is left
        store.delete_stream(made["ec.a"][2])
        for sid in made["ec.b"]:
            store.delete_stream(sid)
        assert store.list_stream_kinds() == sorted([*kinds[1:-1], "ec.new"])
        assert list(store.stats().streams_by_kind) == store.list_stream_kinds()

    def test_delete_stream(self, store: RunStore, store_path: Path) -> None:
        keep = store.create_stream(kind=KIND).id
        gone = store.create_stream(kind=KIND).id
        eid = uuid4()
        store.append_to_stream(keep, [TicketTagged("k")])
        store.append_to_stream(
            gone, [TicketTagged("g1"), TicketTagged("g2")], event_ids=[eid, None]
        )
        assert store.delete_stream(gone) is True
        assert store.delete_stream(gone) is False
        assert store.get_stream(gone) is None
        assert [s.id for s in store.list_streams(KIND)] == [keep]
        with pytest.raises(StreamNotFound):
            store.read_stream(gone)
        assert [r.position for r in store.read_log()] == [1]
        assert store.last_position() == 3  # positions are never reused
        # the id can be used again: a new, empty stream (its idempotency keys are gone too)
        store.ensure_stream(gone, kind=KIND)
        (again,) = store.append_to_stream(gone, [TicketTagged("new")], event_ids=[eid])
        assert (again.seq, again.position) == (1, 4)
        assert store.verify() == []

    def test_hooks_and_views_of_streams(self, store_path: Path) -> None:
        with self.make_store(store_path, projectors=[StreamLog()]) as store:
            a = store.create_stream(kind=KIND).id
            b = store.create_stream(kind="eventlog.contract.other").id
            store.append_to_stream(a, [TicketTagged("1"), TicketTagged("2")])
            store.append_to_stream(b, [TicketTagged("3")])
            run = store.create_run(store.ensure_session(), provider="p", model="m")
            store.append_event(run.id, TextDelta("not a stream of another kind"))
            view = store.projection("contract_stream_log")
            assert (view.get(b"n" + a.bytes), view.get(b"n" + b.bytes)) == (b"2", b"1")
            assert view.get(b"k" + b.bytes) == b"eventlog.contract.other"
            store.delete_stream(b)
            assert view.get(b"k" + b.bytes) is None
            assert store.verify() == []
            before = dict(view.scan())
            store.rebuild_projections(["contract_stream_log"])  # hooks replayed, then the log
            assert dict(view.scan()) == before

    def test_threads_appending_to_one_stream(self, store: RunStore) -> None:
        sid = store.create_stream(kind=KIND).id
        errors: list[BaseException] = []

        def writer(n: int) -> None:
            try:
                for i in range(25):
                    store.append_to_stream(sid, [TicketTagged(f"{n}:{i}")])
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert errors == []
        records = store.read_stream(sid)
        assert [r.seq for r in records] == list(range(1, 151))
        assert [r.position for r in records] == list(range(1, 151))

    def test_streams_survive_reopen(self, store: RunStore, store_path: Path) -> None:
        if not self.persistent:
            pytest.skip("backend does not persist")
        sid = store.create_stream(kind=KIND, metadata={"x": 1}).id
        records = store.append_to_stream(sid, [TicketOpened("t", 1), TicketTagged("x")])
        record = store.get_stream(sid)
        store = self.reopen(store, store_path)
        try:
            assert store.get_stream(sid) == record
            assert store.read_stream(sid) == records
            assert store.list_streams(KIND) == [record]
            assert store.append_to_stream(sid, [TicketTagged("y")], expected_seq=2)[0].seq == 3
        finally:
            store.close()
