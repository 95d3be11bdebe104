"""The contract of custom event types: registered types, upcasters, aliases, raw data.

Mixed into :class:`eventlog.testing.StoreContract`; every backend runs it. The event types
below are registered when this module is imported (names under ``eventlog.contract.``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar
from uuid import UUID, uuid4

import msgspec
import pytest

from eventlog import EventRecord, ProjectionTx, RawEvent, RunRecord, RunStore, event_type
from eventlog.model.events import TextDelta
from eventlog.model.registry import register_upcaster
from eventlog.storage.codec import decode_event

__all__ = ["GappyNote", "TicketOpened", "TicketTagged", "TypesContract"]


@event_type("eventlog.contract.ticket_opened", version=2, aliases=("ContractTicketCreated",))
class TicketOpened(msgspec.Struct, frozen=True):
    """Version 2; version 1 had ``urgent: bool`` instead of ``priority``."""

    title: str
    priority: int = 0
    owner: UUID | None = None
    due: datetime | None = None


def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in data.items() if k != "urgent"}
    out["priority"] = 2 if data.get("urgent") else 0
    return out


register_upcaster("eventlog.contract.ticket_opened", from_version=1, fn=_v1_to_v2)


@event_type("eventlog.contract.ticket_tagged")
class TicketTagged(msgspec.Struct, frozen=True):
    """A tag added to a ticket."""

    tag: str


@event_type("eventlog.contract.gappy_note", version=3)
class GappyNote(msgspec.Struct, frozen=True):
    """Version 3 with an upcaster from 2 only: a stored v1 cannot be brought up to date."""

    text: str
    words: int


register_upcaster(
    "eventlog.contract.gappy_note",
    from_version=2,
    fn=lambda d: {**d, "words": len(str(d.get("text", "")).split())},
)


class _Priorities:
    """Sums ticket priorities per stream (a projector of a registered type)."""

    name: ClassVar[str] = "contract_priorities"
    version: ClassVar[int] = 1
    event_types: ClassVar[frozenset[str]] = frozenset({"eventlog.contract.ticket_opened"})

    def apply(self, tx: ProjectionTx, record: EventRecord) -> None:
        event = record.event
        assert isinstance(event, TicketOpened), event  # upcast before any projector sees it
        key = record.run_id.bytes
        tx.put(key, str(int(tx.get(key) or b"0") + event.priority).encode())


class TypesContract:
    """Registered event types behave like the built-ins on every backend."""

    persistent: ClassVar[bool]

    def make_store(self, path: Path, **options: object) -> RunStore:
        raise NotImplementedError

    @staticmethod
    def _run(store: RunStore) -> RunRecord:
        return store.create_run(store.ensure_session(), provider="p", model="m")

    @staticmethod
    def _stored_version(store: RunStore, stream_id: UUID, seq: int) -> tuple[str, int]:
        engine = store.core.engine

        def work(txn: Any) -> tuple[str, int]:
            value = txn.get("events", engine.index.event_key(txn, stream_id, seq))
            env = msgspec.msgpack.decode(value)
            return env[0], env[1]

        return store.core.backend.read(work)

    def test_registered_type_appends_and_lists_like_a_builtin(self, store: RunStore) -> None:
        run = self._run(store)
        owner = uuid4()
        due = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
        event = TicketOpened("printer on fire", 3, owner, due)
        rec = store.append_event(run.id, event)
        assert (rec.type, rec.version, rec.seq) == ("eventlog.contract.ticket_opened", 2, 1)
        more = store.append_events(run.id, [TicketTagged("hw"), TextDelta("x"), TicketTagged("p")])
        listed = store.list_events(run.id)
        assert listed == [rec, *more]
        assert listed[0].event == event
        assert [r.type for r in store.read_log()] == [
            "eventlog.contract.ticket_opened",
            "eventlog.contract.ticket_tagged",
            "TextDelta",
            "eventlog.contract.ticket_tagged",
        ]
        assert self._stored_version(store, run.id, 1) == ("eventlog.contract.ticket_opened", 2)
        state = store.get_run_state(run.id)
        assert state is not None
        assert (state.event_count, state.last_seq) == (4, 4)
        assert state.updated_at == more[-1].recorded_at  # no timestamp field: the record's time
        assert store.verify() == []

    def test_unregistered_struct_is_refused(self, store: RunStore) -> None:
        class Loose(msgspec.Struct):
            x: int

        run = self._run(store)
        with pytest.raises(TypeError, match=r"Loose is a msgspec Struct .*@eventlog.event_type"):
            store.append_event(run.id, Loose(1))
        with pytest.raises(TypeError, match="item 1"):
            store.append_events(run.id, [TicketTagged("a"), Loose(1)])
        with pytest.raises(TypeError, match="field of the wrong type"):
            store.append_event(run.id, TicketOpened("t", priority="high"))  # type: ignore[arg-type]
        assert store.list_events(run.id) == []

    def test_old_version_is_upcast_on_read_and_never_rewritten(self, store: RunStore) -> None:
        run = self._run(store)
        v1 = RawEvent("eventlog.contract.ticket_opened", 1, {"title": "old", "urgent": True})
        rec = store.append_event(run.id, v1)
        assert rec.event == TicketOpened("old", 2)  # what projectors saw, and every read returns
        assert rec.version == 1
        (listed,) = store.list_events(run.id)
        assert listed == rec
        assert store.read_log() == [rec]
        assert self._stored_version(store, run.id, 1) == ("eventlog.contract.ticket_opened", 1)

    def test_alias_reads_as_the_renamed_type(self, store: RunStore) -> None:
        run = self._run(store)
        store.append_event(run.id, RawEvent("ContractTicketCreated", 1, {"title": "t"}))
        store.append_event(
            run.id, RawEvent("ContractTicketCreated", 2, {"title": "u", "priority": 1})
        )
        events = [r.event for r in store.list_events(run.id)]
        assert events == [TicketOpened("t", 0), TicketOpened("u", 1)]
        assert {r.type for r in store.list_events(run.id)} == {"eventlog.contract.ticket_opened"}
        assert self._stored_version(store, run.id, 1) == ("ContractTicketCreated", 1)

    def test_unreadable_versions_read_raw_and_verify_says_why(self, store: RunStore) -> None:
        run = self._run(store)
        gap = RawEvent("eventlog.contract.gappy_note", 1, {"text": "a b c"})
        bad_shape = RawEvent("eventlog.contract.ticket_tagged", 1, {"tag": 42})
        store.append_events(run.id, [gap, bad_shape])
        upcast = store.append_event(
            run.id, RawEvent("eventlog.contract.gappy_note", 2, {"text": "a b"})
        )
        listed = store.list_events(run.id)
        assert [r.event for r in listed[:2]] == [gap, bad_shape]  # raw data, never an exception
        assert listed[2].event == GappyNote("a b", 2) == upcast.event
        problems = {p.seq: p for p in store.verify()}
        assert set(problems) == {1, 2}
        assert problems[1].kind == "upcast_failed"
        assert "v1 has no upcaster to v2" in problems[1].detail
        assert "register_upcaster('eventlog.contract.gappy_note', from_version=1" in (
            problems[1].detail
        )
        assert "does not fit TicketTagged" in problems[2].detail

    def test_projector_of_a_registered_type(self, store_path: Path) -> None:
        with self.make_store(store_path, projectors=[_Priorities()]) as store:
            run = self._run(store)
            store.append_events(
                run.id,
                [
                    TicketOpened("a", 1),
                    RawEvent("eventlog.contract.ticket_opened", 1, {"title": "b", "urgent": True}),
                    RawEvent("ContractTicketCreated", 2, {"title": "c", "priority": 4}),
                    TicketTagged("x"),
                ],
            )
            view = store.projection("contract_priorities")
            assert view.get(run.id.bytes) == b"7"
            assert store.verify() == []
            store.rebuild_projections(["contract_priorities"])
            assert view.get(run.id.bytes) == b"7"

    def test_subscription_filters_by_registered_name(self, store: RunStore) -> None:
        run = self._run(store)
        store.append_events(run.id, [TicketTagged("a"), TextDelta("x"), TicketOpened("t")])
        with store.subscribe(event_types=["eventlog.contract.ticket_opened"], timeout=0) as sub:
            assert [r.event for r in sub] == [TicketOpened("t")]

    def test_export_import_export_is_identical(self, store: RunStore, store_path: Path) -> None:
        run = self._run(store)
        sid = store.create_stream(kind="eventlog.contract.thread", metadata={"k": [1]}).id
        store.append_event(run.id, TicketOpened("a", 1, uuid4(), datetime(2026, 1, 2, tzinfo=UTC)))
        store.append_to_stream(
            sid,
            [
                RawEvent("eventlog.contract.ticket_opened", 1, {"title": "b", "urgent": True}),
                RawEvent("ContractTicketCreated", 1, {"title": "c"}),
                RawEvent("eventlog.contract.gappy_note", 1, {"text": "no way up"}),
                RawEvent("SomeFutureType", 7, {"n": [1, 2]}),
                TicketTagged("t"),
            ],
            event_ids=[uuid4(), None, None, None, uuid4()],
        )
        lines = list(store.export_jsonl())
        assert [json.loads(line)["kind"] for line in lines[:3]] == ["session", "run", "stream"]
        exported = [json.loads(line) for line in lines if json.loads(line)["kind"] == "event"]
        # registered types leave in their current shape and version; the rest as stored
        assert [(e["type"], e["version"]) for e in exported] == [
            ("eventlog.contract.ticket_opened", 2),
            ("eventlog.contract.ticket_opened", 2),
            ("eventlog.contract.ticket_opened", 2),
            ("eventlog.contract.gappy_note", 1),
            ("SomeFutureType", 7),
            ("eventlog.contract.ticket_tagged", 1),
        ]
        with self.make_store(store_path.parent / "copy") as copy:
            summary = copy.import_jsonl(lines)
            assert (summary.runs, summary.streams, summary.events) == (1, 1, 6)
            assert list(copy.export_jsonl()) == lines
            assert copy.read_stream(sid) == [
                msgspec.structs.replace(r, version=2) if r.seq <= 2 else r
                for r in store.read_stream(sid)
            ]
            problems = copy.verify()
            assert [(p.kind, p.seq) for p in problems] == [("upcast_failed", 3)]

    def test_decode_never_raises_for_registered_garbage(self, store: RunStore) -> None:
        run = self._run(store)
        # a payload that upcasts to a dict the class refuses: raw, not an exception
        rec = store.append_event(
            run.id, RawEvent("eventlog.contract.ticket_opened", 1, {"title": 5, "urgent": 1})
        )
        assert isinstance(rec.event, RawEvent)
        raw = store.core.backend.read(
            lambda txn: txn.get("events", store.core.engine.index.event_key(txn, run.id, 1))
        )
        assert raw is not None
        assert decode_event(run.id, 1, raw).event == rec.event
