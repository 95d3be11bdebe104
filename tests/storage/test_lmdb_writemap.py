"""The LMDB map is written in place (MDB_WRITEMAP): a sparse file, and groups without nesting."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from eventlog import AppendRequest, ConcurrencyError, EventRecord, RunStore
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


def test_a_writer_maps_the_file_writable_a_reader_does_not(tmp_path: Path) -> None:
    with RunStore.open(tmp_path / "s", durability="fast") as store:
        assert _backend(store)._env.flags()["writemap"] is True
        run = store.create_run(store.create_session().id, provider="p", model="m")
        store.append_event(run.id, TextDelta("hi"))
    with RunStore.open(tmp_path / "s", readonly=True) as reader:
        assert _backend(reader)._env.flags()["writemap"] is False
        assert _texts(reader, run.id) == ["hi"]


def test_the_file_is_sparse_and_stats_count_the_bytes_on_disk(tmp_path: Path) -> None:
    with RunStore.open(tmp_path / "s", durability="fast") as store:
        info = _backend(store).info()
        size = (tmp_path / "s" / "data.mdb").stat().st_size
        assert size == info["map_size"]  # extended to the map...
        assert info["file_bytes"] < size  # ...but only written pages take disk space


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
