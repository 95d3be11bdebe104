"""The contract of atomic appends to streams of every kind, first appends and acks.

Mixed into :class:`eventlog.testing.StoreContract`; every backend runs it. ``append_many``
takes runs, sessions and streams of any kind in one transaction, each request with its own
``expected_seq`` and ``event_ids``; a request naming a stream kind with ``expected_seq=0``
creates a missing stream in that transaction (``create_run(events=)`` does the same for a
run); ``ack=`` commits a persistent consumer's position with the append. Any failure writes
nothing: no event, no new stream, no moved ack.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar
from uuid import UUID, uuid4

import pytest

from eventlog import (
    Ack,
    AckError,
    AppendRequest,
    ConcurrencyError,
    ConsumerNotFound,
    RunNotFound,
    RunStatus,
    RunStore,
    SessionNotFound,
    StreamKindError,
    StreamNotFound,
    stream_id_for,
)
from eventlog.model.events import RunStarted, TextDelta
from eventlog.testing.event_types import TicketOpened, TicketTagged
from eventlog.testing.streams import StreamLog

__all__ = ["MultiStreamContract"]

KIND = "eventlog.contract.counter"


def _snapshot(store: RunStore) -> tuple[int, list[tuple[str, int]], list[UUID]]:
    """What a failed call must leave unchanged: the log, the consumers, the streams of KIND."""
    return (
        store.last_position(),
        [(c.name, c.position) for c in store.consumers()],
        [s.id for s in store.list_streams(KIND)],
    )


class MultiStreamContract:
    """``append_many`` over every kind, create on first append, ack with an append."""

    persistent: ClassVar[bool]

    def make_store(self, path: Path, **options: object) -> RunStore:
        raise NotImplementedError

    def test_append_many_to_every_kind(self, store: RunStore) -> None:
        session = store.create_session()
        run = store.create_run(session.id, provider="p", model="m")
        sid = store.create_stream(kind=KIND).id
        e1 = uuid4()
        out = store.append_many(
            [
                AppendRequest(run.id, [TextDelta("r")], expected_seq=0, kind="run"),
                AppendRequest(session.id, [TicketTagged("s")], expected_seq=0),
                AppendRequest(sid, [TicketOpened("t"), TicketTagged("x")], event_ids=[e1, None]),
                AppendRequest(sid, [TicketTagged("y")], expected_seq=2, kind=KIND),
            ]
        )
        assert [[(r.run_id, r.seq, r.position) for r in part] for part in out] == [
            [(run.id, 1, 1)],
            [(session.id, 1, 2)],
            [(sid, 1, 3), (sid, 2, 4)],
            [(sid, 3, 5)],
        ]
        # a retry of the same request: its idempotency key returns the stored record
        [again] = store.append_many([AppendRequest(sid, [TicketOpened("t")], event_ids=[e1])])
        assert again == [out[2][0]]
        assert store.last_position() == 5
        assert [r.event for r in store.read_stream(sid)] == [
            TicketOpened("t"),
            TicketTagged("x"),
            TicketTagged("y"),
        ]
        assert store.verify() == []

    def test_first_append_creates_the_stream(self, store: RunStore) -> None:
        sid = stream_id_for(KIND, "clicks")
        records = store.append_to_stream(
            sid, [TicketOpened("a"), TicketTagged("b")], expected_seq=0, kind=KIND,
            metadata={"owner": "contract", "n": [1]},
        )  # fmt: skip
        assert [(r.seq, r.position) for r in records] == [(1, 1), (2, 2)]
        got = store.get_stream(sid)
        assert got is not None
        assert (got.kind, got.metadata) == (KIND, {"owner": "contract", "n": [1]})
        assert got.created_at <= records[0].recorded_at
        assert [s.id for s in store.list_streams(KIND)] == [sid]
        # the stream exists now: expected_seq=0 is a conflict, as with any stream
        with pytest.raises(ConcurrencyError):
            store.append_to_stream(sid, [TicketTagged("c")], expected_seq=0, kind=KIND)
        # later appends name the kind or not; the metadata is the first append's
        more = store.append_to_stream(sid, [TicketTagged("c")], expected_seq=2, kind=KIND)
        assert more[0].seq == 3
        store.append_to_stream(sid, [], expected_seq=3, kind=KIND, metadata={"ignored": 1})
        assert store.get_stream(sid).metadata == {"owner": "contract", "n": [1]}  # type: ignore[union-attr]
        # an empty first append creates the stream too
        empty = uuid4()
        assert store.append_to_stream(empty, [], expected_seq=0, kind=KIND) == []
        assert store.get_stream(empty) is not None
        assert store.verify() == []

    def test_first_appends_in_one_append_many(self, store: RunStore) -> None:
        a, b = uuid4(), uuid4()
        out = store.append_many(
            [
                AppendRequest(a, [TicketOpened("a")], expected_seq=0, kind=KIND),
                AppendRequest(b, [TicketOpened("b")], expected_seq=0, kind=KIND, metadata={"x": 1}),
                AppendRequest(a, [TicketTagged("a2")], expected_seq=1, kind=KIND),
            ]
        )
        assert [[(r.run_id, r.seq) for r in part] for part in out] == [[(a, 1)], [(b, 1)], [(a, 2)]]
        assert [s.id for s in store.list_streams(KIND)] == [a, b]
        assert [s.metadata for s in store.list_streams(KIND)] == [{}, {"x": 1}]
        assert store.verify() == []

    def test_first_append_runs_the_hooks_like_create_stream(self, store_path: Path) -> None:
        with self.make_store(store_path, projectors=[StreamLog()]) as store:
            explicit = store.create_stream(kind=KIND).id
            store.append_to_stream(explicit, [TicketTagged("1")], expected_seq=0)
            implicit = uuid4()
            store.append_to_stream(implicit, [TicketTagged("1")], expected_seq=0, kind=KIND)
            view = store.projection("contract_stream_log")
            for sid in (explicit, implicit):
                assert view.get(b"k" + sid.bytes) == KIND.encode()
                assert view.get(b"n" + sid.bytes) == b"1"  # the hook ran before the events
            before = dict(view.scan())
            store.rebuild_projections(["contract_stream_log"])
            assert dict(view.scan()) == before
            assert store.verify() == []

    def test_missing_and_wrong_kinds(self, store: RunStore) -> None:
        session = store.create_session()
        run = store.create_run(session.id, provider="p", model="m")
        sid = store.create_stream(kind=KIND).id
        unknown = uuid4()
        before = _snapshot(store)
        tagged = [TicketTagged("x")]
        cases: list[tuple[AppendRequest, type[Exception], str]] = [
            (AppendRequest(unknown, tagged, expected_seq=0), StreamNotFound, "kind="),
            (AppendRequest(unknown, tagged, kind=KIND), StreamNotFound, "expected_seq=0"),
            (AppendRequest(unknown, tagged, expected_seq=1, kind=KIND), StreamNotFound, "found"),
            (AppendRequest(unknown, tagged, expected_seq=0, kind="run"), RunNotFound, "create_run"),
            (AppendRequest(unknown, tagged, expected_seq=0, kind="session"), SessionNotFound, "s"),
            (AppendRequest(run.id, tagged, expected_seq=0, kind=KIND), StreamKindError, "'run'"),
            (AppendRequest(session.id, tagged, kind="run"), StreamKindError, "'session' stream"),
            (AppendRequest(sid, tagged, kind="session"), StreamKindError, repr(KIND)),
            (AppendRequest(sid, tagged, kind="eventlog.contract.other"), StreamKindError, "not"),
            (AppendRequest(sid, tagged, expected_seq=0, kind="eventlog.contract.other"),
             StreamKindError, "stream_id_for"),
        ]  # fmt: skip
        for req, error, match in cases:
            with pytest.raises(error, match=match):
                store.append_many([req])
        with pytest.raises(StreamKindError) as info:
            store.append_to_stream(run.id, tagged, expected_seq=0, kind=KIND)
        assert (info.value.kind, info.value.found) == (KIND, "run")
        assert isinstance(info.value, ValueError)
        with pytest.raises(ValueError, match="append_events"):
            store.append_to_stream(sid, tagged, kind="run")
        assert _snapshot(store) == before
        assert store.get_stream(unknown) is None

    def test_a_conflict_names_what_the_stream_is(self, store: RunStore) -> None:
        session = store.create_session()
        run = store.create_run(session.id, provider="p", model="m")
        sid = store.create_stream(kind=KIND).id
        for target in (run.id, session.id, sid):
            store.append_many([AppendRequest(target, [TicketTagged("1")])])
        before = _snapshot(store)
        run_text = f"run {run.id}: expected last seq 0 but it is 1"
        session_text = f"session {session.id}: expected last seq 0 but it is 1"
        stream_text = f"stream {sid} of kind {KIND!r}: expected last seq 0 but it is 1"
        tagged = [TicketTagged("late")]
        cases: list[tuple[Callable[[], object], UUID, str, str]] = [
            (lambda: store.append_event(run.id, TextDelta("x"), expected_seq=0),
             run.id, "run", run_text),
            (lambda: store.append_many([AppendRequest(run.id, tagged, expected_seq=0)]),
             run.id, "run", run_text),
            (lambda: store.append_to_stream(session.id, tagged, expected_seq=0),
             session.id, "session", session_text),
            (lambda: store.append_many(
                [AppendRequest(session.id, tagged, expected_seq=0, kind="session")]),
             session.id, "session", session_text),
            (lambda: store.append_to_stream(sid, tagged, expected_seq=0),
             sid, KIND, stream_text),
            (lambda: store.append_many(
                [AppendRequest(sid, tagged, expected_seq=0, kind=KIND, event_ids=[uuid4()])]),
             sid, KIND, stream_text),
        ]  # fmt: skip
        for call, stream_id, kind, text in cases:
            with pytest.raises(ConcurrencyError) as info:
                call()
            err = info.value
            assert (err.stream_id, err.run_id, err.kind) == (stream_id, stream_id, kind)
            assert (err.expected_seq, err.actual_seq) == (0, 1)
            assert str(err).startswith(text)
            assert str(err).endswith("retry with expected_seq=1")
        assert _snapshot(store) == before

    def test_bad_kinds_and_metadata_raise_before_anything_is_written(self, store: RunStore) -> None:
        sid = uuid4()
        tagged = [TicketTagged("x")]
        bad: list[tuple[dict[str, object], type[Exception], str]] = [
            ({"metadata": {"a": 1}}, ValueError, "give its kind="),
            (
                {"kind": "run", "metadata": {"a": 1}},
                ValueError,
                "does not (create a run|append to runs)",
            ),
            ({"kind": "session", "metadata": {}}, ValueError, "create_session"),
            ({"kind": "Bad Kind"}, ValueError, "not valid"),
            ({"kind": 3}, TypeError, "stream kind"),
            ({"kind": KIND, "metadata": [1]}, TypeError, "metadata"),
            ({"kind": KIND, "metadata": {"n": 1 << 70}}, ValueError, "cannot be stored"),
            ({"kind": KIND, "metadata": {"o": object()}}, ValueError, "cannot be stored"),
        ]
        for options, error, match in bad:
            with pytest.raises(error, match=match):
                store.append_to_stream(sid, tagged, expected_seq=0, **options)  # type: ignore[arg-type]
            with pytest.raises(error, match=match):
                store.append_many([AppendRequest(sid, tagged, expected_seq=0, **options)])  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="list of AppendRequest"):
            store.append_many(AppendRequest(sid, tagged))  # type: ignore[arg-type]
        assert store.last_position() == 0
        assert store.get_stream(sid) is None

    def test_one_bad_request_writes_nothing(self, store: RunStore) -> None:
        run = store.create_run(store.ensure_session(), provider="p", model="m")
        store.append_event(run.id, TextDelta("in"))
        store.subscribe(name="pm", after_position=0).close()
        before = _snapshot(store)
        new = uuid4()
        failing: list[AppendRequest] = [
            AppendRequest(run.id, [TextDelta("stale")], expected_seq=0),  # conflict
            AppendRequest(uuid4(), [TextDelta("x")]),  # unknown stream
            AppendRequest(run.id, [TextDelta("x")], kind=KIND),  # a run, not a KIND stream
        ]
        for bad in failing:
            with pytest.raises((ConcurrencyError, StreamNotFound, StreamKindError)):
                store.append_many(
                    [
                        AppendRequest(new, [TicketOpened("n")], expected_seq=0, kind=KIND),
                        AppendRequest(run.id, [TextDelta("out")]),
                        bad,
                    ],
                    ack=("pm", 1),
                )
            assert _snapshot(store) == before
            assert store.get_stream(new) is None
        # the same without the bad request: everything lands, the ack with it
        store.append_many(
            [
                AppendRequest(new, [TicketOpened("n")], expected_seq=0, kind=KIND),
                AppendRequest(run.id, [TextDelta("out")]),
            ],
            ack=Ack("pm", 1),
        )
        assert _snapshot(store) == (3, [("pm", 1)], [new])
        assert store.verify() == []

    def test_ack_with_an_append(self, store: RunStore) -> None:
        run = store.create_run(store.ensure_session(), provider="p", model="m")
        inputs = store.append_events(run.id, [TextDelta("a"), TextDelta("b")])
        out = uuid4()
        store.subscribe(name="pm").close()  # registers the consumer at 0
        before = _snapshot(store)
        first = AppendRequest(out, [TicketOpened("a")], expected_seq=0, kind=KIND)
        with pytest.raises(ConsumerNotFound, match="'nobody'"):
            store.append_many([first], ack=("nobody", 1))
        with pytest.raises(AckError, match="the log ends at position 2") as info:
            store.append_many([first], ack=("pm", 3))  # beyond the log before the append
        assert (info.value.name, info.value.position) == ("pm", 3)
        for bad_ack, error in [
            (("bad name", 1), ValueError),
            (("pm", -1), ValueError),
            (("pm",), TypeError),
            ("pm", TypeError),
        ]:
            with pytest.raises(error):
                store.append_many([first], ack=bad_ack)  # type: ignore[arg-type]
        assert _snapshot(store) == before
        store.append_many([first], ack=("pm", inputs[0].position))
        assert store.consumers()[0].position == 1
        with pytest.raises(AckError, match="only move forward"):
            store.append_many([AppendRequest(out, [TicketTagged("x")])], ack=("pm", 0))
        # the same position again (several outputs of one input), then the next one
        store.append_many([AppendRequest(out, [TicketTagged("a2")])], ack=("pm", 1))
        store.append_many([AppendRequest(out, [TicketOpened("b")])], ack=Ack("pm", 2))
        assert store.consumers()[0].position == 2
        assert [r.seq for r in store.read_stream(out)] == [1, 2, 3]
        # an ack alone (no request) is a plain checked ack
        assert store.append_many([], ack=("pm", 2)) == []

    def test_subscription_ack_with(self, store: RunStore) -> None:
        run = store.create_run(store.ensure_session(), provider="p", model="m")
        store.append_events(run.id, [TextDelta(str(i)) for i in range(3)])
        target = uuid4()
        seen: list[int] = []
        with store.subscribe(name="copier", ack="manual", timeout=0) as sub:
            for record in sub:
                if record.run_id != run.id:
                    continue  # its own output
                seen.append(record.position)
                request = AppendRequest(
                    target, [TicketTagged(str(record.position))],
                    expected_seq=len(seen) - 1, kind=KIND,
                )  # fmt: skip
                sub.ack_with([request])
                assert sub.acked == record.position
                assert store.consumers()[0].position == record.position
            with pytest.raises(ValueError, match="only positions up to"):
                sub.ack_with([], position=sub.position + 1)
        assert seen == [1, 2, 3]
        assert [r.event.tag for r in store.read_stream(target)] == ["1", "2", "3"]  # type: ignore[attr-defined]
        unnamed = store.subscribe(timeout=0)
        with pytest.raises(ValueError, match="name="):
            unnamed.ack_with([])
        unnamed.close()

    def test_create_run_with_its_first_events(self, store: RunStore) -> None:
        sid = store.ensure_session()
        first = [RunStarted(sid, "p", "m"), TextDelta("hi")]
        run = store.create_run(sid, provider="p", model="m", events=first, client_request_id="r1")
        assert run.status == RunStatus.SESSION_LOADED
        assert [(r.seq, r.position, r.event) for r in store.list_events(run.id)] == [
            (1, 1, first[0]),
            (2, 2, first[1]),
        ]
        # an idempotent retry returns the run and appends nothing
        again = store.create_run(sid, provider="p", model="m", events=first, client_request_id="r1")
        assert again.id == run.id
        assert store.last_position() == 2
        # a bad event: neither the run nor anything else is written
        with pytest.raises(TypeError, match="create_run"):
            store.create_run(sid, provider="p", model="m", events=[{"not": "an event"}])  # type: ignore[list-item]
        with pytest.raises(TypeError, match="list of events"):
            store.create_run(sid, provider="p", model="m", events=TextDelta("x"))  # type: ignore[arg-type]
        assert len(store.list_runs(sid)) == 1
        assert store.create_run(sid, provider="p", model="m", events=[]).status == "pending"
        assert store.verify() == []

    def test_first_appends_survive_reopen(self, store: RunStore, store_path: Path) -> None:
        if not self.persistent:
            pytest.skip("backend does not persist")
        sid = uuid4()
        store.append_to_stream(
            sid, [TicketOpened("a")], expected_seq=0, kind=KIND, metadata={"k": 1}
        )
        store.subscribe(name="pm").close()
        store.append_many([AppendRequest(sid, [TicketTagged("b")], expected_seq=1)], ack=("pm", 1))
        store.close()
        with self.make_store(store_path) as again:
            got = again.get_stream(sid)
            assert got is not None
            assert got.metadata == {"k": 1}
            assert [r.seq for r in again.read_stream(sid)] == [1, 2]
            assert [(c.name, c.position) for c in again.consumers()] == [("pm", 1)]
            assert again.verify() == []
