"""The LMDB write path: groups without nested transactions, and what one write transaction
leaves known for the next (the write cache)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from eventlog import AppendRequest, ConcurrencyError, EventRecord, RunNotFound, RunStore
from eventlog.events import TextDelta
from eventlog.storage.kv import KVTxn
from eventlog.storage.lmdb import LmdbBackend


def _backend(store: RunStore) -> LmdbBackend:
    backend = store.core.backend
    assert isinstance(backend, LmdbBackend)
    return backend


def _texts(store: RunStore, run_id: UUID) -> list[str]:
    out = []
    for record in store.list_events(run_id):
        assert isinstance(record.event, TextDelta)
        out.append(record.event.delta)
    return out


def test_the_map_is_not_written_in_place(tmp_path: Path) -> None:
    # MDB_WRITEMAP stays off: with it, a process opening with a smaller map than another's
    # truncates the file under that process (SIGBUS); see eventlog.storage.lmdb_env.WRITEMAP
    with RunStore.open(tmp_path / "s", durability="fast") as store:
        assert _backend(store)._env.flags()["writemap"] is False
        info = _backend(store).info()
        assert 0 < info["file_bytes"] <= (tmp_path / "s" / "data.mdb").stat().st_size


def test_a_group_with_a_failure_in_the_middle_commits_the_others(tmp_path: Path) -> None:
    with RunStore.open(tmp_path / "s", durability="fast") as store:
        sid = store.create_session().id
        a, b = (store.create_run(sid, provider="p", model="m").id for _ in range(2))
        backend, engine = _backend(store), store.core.engine

        def append(
            rid: UUID, text: str, expected: int | None = None
        ) -> Callable[[KVTxn], list[EventRecord]]:
            req = AppendRequest(rid, [TextDelta(text)], expected_seq=expected)
            return lambda txn: engine.appends.append(txn, req, datetime.now(UTC))

        fns = [append(a, "1"), append(b, "x", expected=5), append(a, "2"), append(b, "y")]
        got = backend.write_group(fns, 1 << 30)
        assert [ok for ok, _ in got] == [True, False, True, True]
        assert isinstance(got[1][1], ConcurrencyError)
        assert _texts(store, a) == ["1", "2"]
        assert _texts(store, b) == ["y"]
        assert [r.position for r in store.read_log()] == [1, 2, 3]  # no gap for the failure
        assert store.verify() == []


TIMEOUT = 60.0


def append_from_another_process(path: str, run_id: str, texts: list[str]) -> None:
    """Append ``texts`` to the run from a process of its own (its own environment)."""
    with RunStore.open(path, durability="fast") as store:
        for text in texts:
            store.append_event(run_id, TextDelta(text))


def _in_another_process(path: Path, run_id: UUID, texts: list[str]) -> None:
    proc = multiprocessing.get_context("spawn").Process(
        target=append_from_another_process, args=(str(path), str(run_id), texts)
    )
    proc.start()
    proc.join(TIMEOUT)
    assert proc.exitcode == 0


def test_another_process_writing_between_two_appends_is_seen(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with RunStore.open(path, durability="fast") as store:
        run = store.create_run(store.create_session().id, provider="p", model="m")
        first = store.append_event(run.id, TextDelta("a"))  # leaves the log's tail known
        _in_another_process(path, run.id, ["b", "c"])
        last = store.append_event(run.id, TextDelta("d"))
        assert (last.seq, last.position) == (first.seq + 3, first.position + 3)
        assert _texts(store, run.id) == ["a", "b", "c", "d"]
        assert store.verify() == []


def test_a_write_that_changed_nothing_leaves_nothing_trusted(tmp_path: Path) -> None:
    # LMDB gives an id only to a transaction that changed something: after one that wrote
    # nothing, the next id may be another process's - what ours read must not be reused
    path = tmp_path / "s"
    with RunStore.open(path, durability="fast") as store:
        run = store.create_run(store.create_session().id, provider="p", model="m")
        eid = uuid4()
        first = store.append_event(run.id, TextDelta("a"), event_id=eid)
        again = store.append_event(run.id, TextDelta("a"), event_id=eid)  # writes nothing
        assert again == first
        _in_another_process(path, run.id, ["b"])
        last = store.append_event(run.id, TextDelta("c"))
        assert (last.seq, last.position) == (3, first.position + 2)
        assert store.verify() == []


def test_a_deleted_run_is_not_found_from_the_cache(tmp_path: Path) -> None:
    with RunStore.open(tmp_path / "s", durability="fast") as store:
        run = store.create_run(store.create_session().id, provider="p", model="m")
        store.append_event(run.id, TextDelta("a"))
        assert store.delete_run(run.id)
        with pytest.raises(RunNotFound):
            store.append_event(run.id, TextDelta("b"))
