"""The event type registry: bad registrations, upcaster rules, and properties (hypothesis).

Behaviour through a store (append/list/replay/export/import/project) is in the shared
contract (eventlog/testing/event_types.py); this file checks the registry's own rules.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventlog
from eventlog import RawEvent, RunStore, event_type, register_upcaster, stream_id_for
from eventlog.events import TextDelta
from eventlog.model.registry import registered, upcast
from eventlog.storage.codec import decode_payload


@event_type("tests.evolving", version=4, aliases=("tests.OldEvolving", "TestsEvolvingV0"))
class Evolving(msgspec.Struct, frozen=True):
    """v1 {n}, v2 {n, label}, v3 {count, label}: upcasters 1->2->3->4."""

    count: int
    label: str = ""
    tags: list[str] = msgspec.field(default_factory=list)


register_upcaster("tests.evolving", 1, lambda d: {**d, "label": "v1"})
register_upcaster("tests.evolving", 2, lambda d: {"count": d["n"], "label": d["label"]})
register_upcaster("tests.evolving", 3, lambda d: {**d, "tags": [d["label"]]})


class Opaque:
    """Not a type msgspec can encode."""


def test_registered_names_and_versions() -> None:
    info = registered("tests.evolving")
    assert info is not None
    assert (info.name, info.version, info.cls) == ("tests.evolving", 4, Evolving)
    assert registered("tests.OldEvolving") is info
    assert registered("TextDelta") is None  # built-ins are not in the custom registry
    assert registered("nope") is None


def test_upcaster_chain_from_every_version() -> None:
    assert upcast("tests.evolving", 1, {"n": 3}) == {"count": 3, "label": "v1", "tags": ["v1"]}
    assert upcast("tests.evolving", 3, {"count": 3, "label": "x"}) == {
        "count": 3,
        "label": "x",
        "tags": ["x"],
    }
    enc = msgspec.msgpack.encode
    assert decode_payload("tests.OldEvolving", 2, enc({"n": 1, "label": "a"})) == Evolving(
        1, "a", ["a"]
    )
    assert decode_payload("tests.evolving", 4, enc({"count": 9})) == Evolving(9)
    # a newer version than this code knows: read as the current class when it fits
    assert decode_payload("tests.evolving", 5, enc({"count": 9, "extra": 1})) == Evolving(9)
    assert decode_payload("tests.evolving", 5, enc({"other": 1})) == RawEvent(
        "tests.evolving", 5, {"other": 1}
    )


def test_registration_rules() -> None:
    class Plain:
        pass

    with pytest.raises(TypeError, match=r"decorates msgspec\.Struct subclasses"):
        event_type("tests.bad_plain")(Plain)  # type: ignore[type-var]

    class A(msgspec.Struct):
        x: int

    class B(msgspec.Struct):
        x: int

    event_type("tests.taken")(A)
    event_type("tests.taken")(A)  # the same registration again: a no-op
    with pytest.raises(ValueError, match=r"already registered to .*A"):
        event_type("tests.taken")(B)
    with pytest.raises(ValueError, match=r"already registered as 'tests\.taken'"):
        event_type("tests.other_name")(A)
    with pytest.raises(ValueError, match="built-in event type's name"):
        event_type("TextDelta")(B)
    with pytest.raises(ValueError, match="built-in event type"):
        event_type("tests.builtin_class")(TextDelta)
    with pytest.raises(ValueError, match=r"is an alias of 'tests\.evolving'"):
        event_type("tests.OldEvolving")(B)
    with pytest.raises(ValueError, match="already a type name or an alias"):
        event_type("tests.b", aliases=("tests.taken",))(B)
    with pytest.raises(ValueError, match="already a type name or an alias"):
        event_type("tests.b", aliases=("TestsEvolvingV0",))(B)
    for bad_name in ("", "has space", "1abc", "x" * 101, None):
        with pytest.raises(ValueError, match="not a valid event type name"):
            event_type(bad_name)  # type: ignore[arg-type]
    for bad_version in (0, -1, True, "2", 1.5):
        with pytest.raises(ValueError, match="version must be an int >= 1"):
            event_type("tests.v", version=bad_version)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="aliases must be a collection"):
        event_type("tests.v", aliases="Old")

    class Arr(msgspec.Struct, array_like=True):
        x: int

    with pytest.raises(ValueError, match="array_like"):
        event_type("tests.arr")(Arr)

    class Unstorable(msgspec.Struct):
        x: list[Opaque]

    with pytest.raises(ValueError, match=r"field has type Opaque"):
        event_type("tests.unstorable")(Unstorable)
    assert registered("tests.b") is None  # failed registrations leave nothing behind


def test_upcaster_rules() -> None:
    with pytest.raises(ValueError, match=r"no event type 'tests\.unknown' is registered"):
        register_upcaster("tests.unknown", 1, lambda d: d)
    with pytest.raises(ValueError, match=r"alias of 'tests\.evolving'"):
        register_upcaster("tests.OldEvolving", 1, lambda d: d)
    for bad in (0, 4, 5):
        with pytest.raises(ValueError, match=r"from a version in 1\.\.3"):
            register_upcaster("tests.evolving", bad, lambda d: d)
    with pytest.raises(TypeError, match="from_version must be an int"):
        register_upcaster("tests.evolving", "1", lambda d: d)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="already registered"):
        register_upcaster("tests.evolving", 1, lambda d: d)
    with pytest.raises(TypeError, match="must be callable"):
        register_upcaster("tests.evolving", 2, "not a function")  # type: ignore[arg-type]

    @event_type("tests.v1_only")
    class V1Only(msgspec.Struct):
        x: int

    with pytest.raises(ValueError, match="bump the version"):
        register_upcaster("tests.v1_only", 1, lambda d: d)


def test_failing_upcasters_read_as_raw_never_raise() -> None:
    @event_type("tests.fragile", version=2)
    class Fragile(msgspec.Struct):
        x: int

    def explode(data: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("boom")

    register_upcaster("tests.fragile", 1, explode)
    store = RunStore.in_memory()
    run = store.create_run(store.ensure_session(), provider="p", model="m")
    rec = store.append_event(run.id, RawEvent("tests.fragile", 1, {"y": 1}))
    assert rec.event == RawEvent("tests.fragile", 1, {"y": 1})
    (problem,) = store.verify()
    assert "raised KeyError" in problem.detail


def test_stream_id_for_is_stable() -> None:
    # fixed forever: stored stream ids are derived from it
    assert str(stream_id_for("agents.session", "abc")) == str(
        stream_id_for("agents.session", "abc")
    )
    assert stream_id_for("agents.session", "abc") != stream_id_for("agents.session", "abd")
    assert stream_id_for("agents.session", "abc").version == 5
    with pytest.raises(ValueError, match="reserved"):
        stream_id_for("run", "x")
    with pytest.raises(TypeError, match="name must be a str"):
        stream_id_for("agents.session", 3)  # type: ignore[arg-type]


def test_public_surface_has_the_registry() -> None:
    for name in ("event_type", "register_upcaster", "stream_id_for", "StreamRecord"):
        assert name in eventlog.__all__
    assert issubclass(eventlog.StreamNotFound, LookupError)


def _text(max_size: int, min_size: int = 0) -> st.SearchStrategy[str]:
    return st.text(st.characters(exclude_categories=["Cs"]), min_size=min_size, max_size=max_size)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | _text(8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text(5), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None)
@given(
    versions=st.lists(st.integers(1, 4), min_size=1, max_size=8),
    counts=st.lists(st.integers(-(2**63), 2**63 - 1), min_size=8, max_size=8),
    extra=st.dictionaries(_text(6, min_size=1), _json, max_size=3),
)
def test_any_mix_of_versions_round_trips_export_import(
    versions: list[int], counts: list[int], extra: dict[str, Any]
) -> None:
    """Whatever versions are stored, reads upcast them, and export→import→export is stable."""
    store = RunStore.in_memory()
    sid = store.create_stream(kind="tests.prop").id
    events: list[Any] = []
    expected = []
    for version, n in zip(versions, counts, strict=False):
        payload: dict[str, Any] = {**{f"x{k}": v for k, v in extra.items()}}
        if version == 1:
            payload["n"] = n
            want = Evolving(n, "v1", ["v1"])
        elif version == 2:
            payload.update(n=n, label="two")
            want = Evolving(n, "two", ["two"])
        elif version == 3:
            payload.update(count=n, label="three")
            want = Evolving(n, "three", ["three"])
        else:
            payload.update(count=n, label="four", tags=["t"])
            want = Evolving(n, "four", ["t"])
        events.append(
            RawEvent("tests.OldEvolving" if n % 2 else "tests.evolving", version, payload)
        )
        expected.append(want)
    records = store.append_to_stream(sid, events, event_ids=[uuid4() for _ in events])
    assert [r.event for r in records] == expected
    assert [r.event for r in store.read_stream(sid)] == expected
    assert [r.version for r in store.read_stream(sid)] == versions[: len(expected)]
    lines = list(store.export_jsonl())
    copy = RunStore.in_memory()
    copy.import_jsonl(lines)
    assert list(copy.export_jsonl()) == lines
    assert [r.event for r in copy.read_stream(sid)] == expected
    assert copy.verify() == [] == store.verify()


def test_an_event_subclass_registers_too() -> None:
    """A subclass of eventlog.events.Event (tagged, with a timestamp) works like a Struct."""
    from eventlog.events import Event

    @event_type("tests.approval")
    class Approved(Event, frozen=True):
        by: str

    store = RunStore.in_memory()
    run = store.create_run(store.ensure_session(), provider="p", model="m")
    event = Approved(by="ana")
    record = store.append_event(run.id, event)
    assert record.type == "tests.approval"
    assert store.list_events(run.id)[0].event == event
    state = store.get_run_state(run.id)
    assert state is not None
    assert state.updated_at == event.timestamp  # an Event's own time, as for the built-ins
    lines = list(store.export_jsonl())
    copy = RunStore.in_memory()
    copy.import_jsonl(lines)
    assert list(copy.export_jsonl()) == lines
    assert copy.list_events(run.id)[0].event == event
