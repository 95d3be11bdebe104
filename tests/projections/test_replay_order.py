"""A rebuild feeds a ``replay_order = "stream"`` projector stream by stream, others in log order.

Both kinds are rebuilt in one ``rebuild_projections()`` over a log where runs, a session's
messages and a stream of another kind interleave, and a run was deleted (tombstones in
``positions``): each sees every live event exactly once; the stream-ordered one each stream's
events in a row, in seq order; the other in position order. The built-in views (all stream
ordered) rebuilt that way equal what the appends built, and ``verify()`` - which replays in log
order - agrees for them.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import ClassVar
from uuid import uuid4

import pytest
from pg_support import url_for

import eventlog.engine.projectors
import eventlog.engine.rebuild
import eventlog.storage.kv
from eventlog import AppendRequest, RunStore
from eventlog.engine.protocols import ProjectionTx, Projector
from eventlog.events import ModelStarted, RunCompleted, TextDelta, ToolExecutionStarted
from eventlog.messages import TextPart, UserMessage
from eventlog.model.records import EventRecord

_U64 = struct.Struct(">Q")
_SEEN = struct.Struct(">16sQQ")  # stream id, seq, position
BUILTIN = ("run_state", "status_index", "session_listing", "executions")


class _Recorder:
    """Writes each event it is fed under the next number: the order it was fed in."""

    name: ClassVar[str] = "recorder"
    version: ClassVar[int] = 1
    event_types: ClassVar[frozenset[str]] = frozenset()

    def apply(self, tx: ProjectionTx, record: EventRecord) -> None:
        n = _U64.unpack(tx.get(b"n") or _U64.pack(0))[0] + 1
        tx.put(b"n", _U64.pack(n))
        tx.put(b"e" + _U64.pack(n), _SEEN.pack(record.run_id.bytes, record.seq, record.position))


class InLog(_Recorder):
    name: ClassVar[str] = "in_log"


class ByStream(_Recorder):
    name: ClassVar[str] = "by_stream"
    replay_order: ClassVar[str] = "stream"


def _open(
    backend: str, projectors: list[Projector], request: pytest.FixtureRequest, tmp_path: Path
) -> RunStore:
    if backend == "memory":
        return RunStore.in_memory(projectors=projectors)
    if backend == "postgres":
        request.getfixturevalue("pg_schemas")  # a real server, the schema dropped after
        return RunStore.open(url_for(tmp_path), projectors=projectors)
    return RunStore.open(tmp_path / "store", projectors=projectors)


def _views(store: RunStore, names: tuple[str, ...]) -> dict[str, dict[bytes, bytes]]:
    def read(txn: eventlog.storage.kv.KVTxn) -> dict[str, dict[bytes, bytes]]:
        return {n: dict(eventlog.engine.projectors.reader(txn, n).scan()) for n in names}

    return store.core.backend.read(read)


def _fed(view: dict[bytes, bytes]) -> list[tuple[bytes, int, int]]:
    """What a recorder was fed, in the order it was fed."""
    return [_SEEN.unpack(v) for k, v in sorted(view.items()) if k.startswith(b"e")]


@pytest.mark.parametrize("backend", ["memory", "lmdb", "postgres"])
def test_stream_ordered_and_log_ordered_projectors_rebuilt_in_one_pass(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    with _open(backend, [InLog(), ByStream()], request, tmp_path) as store:
        session = store.create_session()
        runs = [store.create_run(session.id, provider="p", model="m").id for _ in range(4)]
        other = uuid4()
        store.create_stream(other, kind="test.other")
        for k in range(3):  # the runs, the session's messages and the other stream interleave
            store.append_many(
                [
                    AppendRequest(r, [ModelStarted("p", "m", k + 1), TextDelta(f"{i}-{k}")])
                    for i, r in enumerate(runs)
                ]
            )
            store.append_message(session.id, UserMessage([TextPart(f"hello {k}")]))
            store.append_to_stream(other, [TextDelta(f"other {k}")])
            store.append_events(runs[1], [ToolExecutionStarted(f"c{k}", "search")])
        store.append_events(runs[0], [RunCompleted("stop", 4)])
        assert store.delete_run(runs[2])  # its positions become gaps, the last a tombstone
        store.append_events(runs[3], [TextDelta("last")])
        assert store.delete_run(runs[3])

        before = _views(store, BUILTIN)
        store.rebuild_projections()
        after = _views(store, (*BUILTIN, "in_log", "by_stream"))

        for name in BUILTIN:
            assert after[name] == before[name], name
        # verify() replays in log order: the recorder that (against its declaration) records
        # the order it is fed differs there; nothing else does
        problems = store.verify()
        assert problems
        assert [p for p in problems if p.projector != "by_stream"] == []

        live = [(r.run_id.bytes, r.seq, r.position) for r in store.read_log()]
        in_log, by_stream = _fed(after["in_log"]), _fed(after["by_stream"])
        assert in_log == live  # position order
        assert sorted(by_stream) == sorted(live)  # every live event once
        streams = [sid for sid, _, _ in by_stream]
        blocks = [sid for i, sid in enumerate(streams) if i == 0 or streams[i - 1] != sid]
        assert set(streams) == {runs[0].bytes, runs[1].bytes, session.id.bytes, other.bytes}
        assert len(blocks) == 4  # each stream's events in a row
        for sid in set(streams):
            seqs = [seq for s, seq, _ in by_stream if s == sid]
            assert seqs == list(range(1, len(seqs) + 1))


@pytest.mark.parametrize("backend", ["memory", "lmdb", "postgres"])
def test_rebuild_over_a_damaged_view_writes_back_only_the_difference(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A rebuild does not clear the view first: it deletes strays and rewrites changed keys."""
    with _open(backend, [], request, tmp_path) as store:
        session = store.create_session()
        runs = [store.create_run(session.id, provider="p", model="m").id for _ in range(3)]
        for r in runs:
            store.append_events(r, [ModelStarted("p", "m", 1), TextDelta("hi")])
        store.append_events(runs[1], [RunCompleted("stop", 1)])
        good = _views(store, BUILTIN)

        def damage(txn: eventlog.storage.kv.KVTxn) -> None:
            view = eventlog.engine.projectors.ProjectionTxn(txn, "run_state")
            view.put(b"stray key", b"x")  # a key no replay writes
            view.put(runs[0].bytes, good["run_state"][runs[2].bytes])  # another run's state
            view.delete(runs[1].bytes)  # a missing key
            index = eventlog.engine.projectors.ProjectionTxn(txn, "status_index")
            index.put(b"zzz", b"")

        store.core.backend.write(damage)
        assert _views(store, BUILTIN) != good
        store.rebuild_projections(["run_state", "status_index"])
        assert _views(store, BUILTIN) == good
        assert store.verify() == []


class SomeInLog(_Recorder):
    """Log ordered, wanting a few types: kept during the stream walk, fed in position order."""

    name: ClassVar[str] = "some_in_log"
    event_types: ClassVar[frozenset[str]] = frozenset({"TextDelta", "RunCompleted"})


@pytest.mark.parametrize("keep", [100_000, 1])  # 1: too many to keep, it reads the log itself
def test_log_ordered_projector_with_types_gets_position_order(
    keep: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    monkeypatch.setattr(eventlog.engine.rebuild, "KEEP", keep)
    with _open("lmdb", [SomeInLog(), ByStream()], request, tmp_path) as store:
        session = store.create_session()
        runs = [store.create_run(session.id, provider="p", model="m").id for _ in range(3)]
        for k in range(3):
            for r in runs:
                store.append_events(r, [ModelStarted("p", "m", k + 1), TextDelta(f"{k}")])
        store.append_events(runs[2], [RunCompleted("stop", 3)])
        store.rebuild_projections()
        fed = _fed(_views(store, ("some_in_log",))["some_in_log"])
        wanted = [
            (r.run_id.bytes, r.seq, r.position)
            for r in store.read_log()
            if r.type in SomeInLog.event_types
        ]
        assert len(wanted) == 10
        assert fed == wanted
