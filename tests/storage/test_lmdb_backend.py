"""LMDB-specific behaviour: error mapping, files, sharing one environment per process."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from eventlog import (
    ConfigError,
    CorruptRecordError,
    RunStore,
    StoreError,
)
from eventlog.events import TextDelta
from eventlog.storage.keys import FORMAT_KEY, FORMAT_VERSION, pack_u64, unpack_u64
from eventlog.storage.kv import KVTxn


def test_store_directory_and_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "store"
    with RunStore.open(path):
        pass
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    for name in ("data.mdb", "lock.mdb"):
        assert stat.S_IMODE((path / name).stat().st_mode) == 0o600


def test_open_on_a_file_is_a_store_error(tmp_path: Path) -> None:
    target = tmp_path / "afile"
    target.write_text("not a store")
    with pytest.raises(StoreError, match="afile"):
        RunStore.open(target)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"map_size": 10}, "map_size"),
        ({"durability": "sometimes"}, "durability"),
        ({"map_size": 1 << 30, "max_map_size": 1 << 20}, "max_map_size"),
        ({"max_readers": 0}, "max_readers"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_bad_configuration(tmp_path: Path, options: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=field) as info:
        RunStore.open(tmp_path / "s", **options)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    assert not (tmp_path / "s").exists()


def test_same_directory_twice_in_one_process_shares_the_environment(tmp_path: Path) -> None:
    a = RunStore.open(tmp_path / "s")
    b = RunStore.open(tmp_path / "s")
    run = a.create_run(a.ensure_session(), provider="p", model="m")
    b.append_event(run.id, TextDelta("from b"))
    a.close()
    assert [r.seq for r in b.list_events(run.id)] == [1]  # b still works after a closed
    b.close()
    c = RunStore.open(tmp_path / "s")
    try:
        with pytest.raises(StoreError, match="durability"):
            RunStore.open(tmp_path / "s", durability="fast")
    finally:
        c.close()


def test_lmdb_errors_become_store_errors(tmp_path: Path) -> None:
    with RunStore.open(tmp_path / "s") as store:
        backend = store.core.backend

        def bad_write(txn: KVTxn) -> None:
            txn.put("meta", b"k" * 600, b"v")  # beyond LMDB's key size limit

        with pytest.raises(StoreError, match="table meta: cannot store a key of 600 bytes"):
            backend.write(bad_write)
        with pytest.raises(StoreError, match="a read transaction cannot write"):
            backend.read(lambda txn: txn.put("meta", b"x", b"y"))  # write in a read txn
        store.health_check()  # the store is still fine afterwards


def test_corrupt_event_names_run_and_seq(tmp_path: Path) -> None:
    with RunStore.open(tmp_path / "s") as store:
        run = store.create_run(store.ensure_session(), provider="p", model="m")
        other = store.create_run(store.ensure_session(), provider="p", model="m")
        store.append_events(run.id, [TextDelta("a"), TextDelta("b")])
        store.append_event(other.id, TextDelta("c"))
        store.core.backend.write(
            lambda txn: txn.put(
                "events", store.core.engine.index.event_key(txn, run.id, 2), b"\xc1garbage"
            )
        )
        with pytest.raises(CorruptRecordError, match=f"run {run.id} seq 2") as info:
            store.list_events(run.id)
        assert (info.value.run_id, info.value.seq) == (run.id, 2)
        assert [r.seq for r in store.list_events(run.id, to_seq=1)] == [1]
        assert [r.seq for r in store.list_events(other.id)] == [1]


def test_fast_mode_flush(tmp_path: Path) -> None:
    with RunStore.open(tmp_path / "s", durability="fast") as store:
        run = store.create_run(store.ensure_session(), provider="p", model="m")
        store.append_event(run.id, TextDelta("a"))
        store.flush()
    with RunStore.open(tmp_path / "s", durability="fast") as store:
        assert [r.seq for r in store.list_events(run.id)] == [1]


def test_unknown_ids_do_not_create_anything(tmp_path: Path) -> None:
    with RunStore.open(tmp_path / "s") as store:
        assert store.get_run(uuid4()) is None
        assert store.last_position() == 0


def test_readonly_and_create_false_never_create_a_store(tmp_path: Path) -> None:
    for options in ({"readonly": True}, {"create": False}):
        with pytest.raises(StoreError, match="no eventlog store at"):
            RunStore.open(tmp_path / "missing", **options)  # type: ignore[arg-type]
        assert not (tmp_path / "missing").exists()


def test_readonly_store_reads_and_refuses_writes(tmp_path: Path) -> None:
    with RunStore.open(tmp_path / "s") as store:
        run = store.create_run(store.ensure_session(), provider="p", model="m")
        store.append_event(run.id, TextDelta("a"))
    with RunStore.open(tmp_path / "s", readonly=True) as ro:
        assert [r.seq for r in ro.list_events(run.id)] == [1]
        assert ro.count_runs() == 1
        assert ro.verify() == []
        with pytest.raises(StoreError, match="read-only"):
            ro.append_event(run.id, TextDelta("b"))
        with pytest.raises(StoreError, match="read-only"):
            ro.create_session()
        # another process writes while this reader is open: it is not blocked
        ctx = multiprocessing.get_context("spawn")
        writer = ctx.Process(target=_append_one, args=(str(tmp_path / "s"), str(run.id)))
        writer.start()
        writer.join(timeout=60)
        assert writer.exitcode == 0
        assert [r.seq for r in ro.list_events(run.id)] == [1, 2]
        # in this process the read-only environment cannot also be opened for writing
        with pytest.raises(StoreError, match="read-only in this process"):
            RunStore.open(tmp_path / "s")


def _append_one(path: str, run_id: str) -> None:
    with RunStore.open(path) as store:
        store.append_event(run_id, TextDelta("from another process"))


def test_map_grows_when_it_fills_inside_a_projector(tmp_path: Path) -> None:
    # most bytes of create_run are projector writes: a MapFullError raised there must still
    # grow the map (not surface as a ProjectionError blaming the projector)
    with RunStore.open(tmp_path / "s", durability="fast", map_size=64 * 1024) as store:
        session = store.create_session()
        for _ in range(2000):
            store.create_run(session.id, provider="p", model="m")
        assert store.count_runs() == 2000
        assert store.core.backend.info()["map_size"] > 64 * 1024  # type: ignore[attr-defined]
        assert store.verify() == []


def test_unencodable_payload_is_a_value_error_and_writes_nothing(tmp_path: Path) -> None:
    from eventlog.events import Success, ToolExecutionFinished

    with RunStore.open(tmp_path / "s") as store:
        run = store.create_run(store.ensure_session(), provider="p", model="m")
        huge = ToolExecutionFinished("c", "t", Success({"n": 1 << 70}), 1)
        with pytest.raises(ValueError, match="ToolExecutionFinished"):
            store.append_events(run.id, [TextDelta("ok"), huge])
        assert store.list_events(run.id) == []
        assert store.last_position() == 0


@pytest.mark.parametrize(("stamp", "word"), [(FORMAT_VERSION + 1, "newer"), (1, "older")])
def test_a_store_of_another_format_is_refused(tmp_path: Path, stamp: int, word: str) -> None:
    path = tmp_path / "s"
    with RunStore.open(path) as store:
        store.core.backend.write(lambda txn: txn.put("meta", FORMAT_KEY, pack_u64(stamp)))
    with pytest.raises(StoreError, match=word) as info:
        RunStore.open(path)
    assert ("export" if word == "older" else "upgrade") in str(info.value)


def test_stream_numbers_grow_and_are_never_reused(tmp_path: Path) -> None:
    with RunStore.open(tmp_path / "s") as store:
        sid = store.ensure_session()

        def number(run_id: UUID) -> int:
            raw = store.core.backend.get("streams", run_id.bytes)
            assert raw is not None
            return unpack_u64(raw[:8])

        first = store.create_run(sid, provider="p", model="m").id
        newest = store.create_run(sid, provider="p", model="m").id
        assert number(newest) == number(first) + 1
        taken = number(newest)
        store.append_event(newest, TextDelta("x"))
        assert store.delete_run(newest)
        assert store.core.backend.get("streams", newest.bytes) is None
        again = store.create_run(sid, provider="p", model="m").id
        assert number(again) == taken + 1  # the deleted newest number stays a tombstone
        assert store.list_events(again) == []
        appended = store.append_event(again, TextDelta("y"))
        assert [(e.seq, e.event) for e in store.list_events(again)] == [(1, appended.event)]
        assert store.verify() == []


def test_get_many_reads_in_order_with_missing_and_refused_keys(tmp_path: Path) -> None:
    from eventlog.storage.lmdb_txn import LmdbTxn

    with RunStore.open(str(tmp_path / "s")) as store:
        backend = store.core.backend

        def fill(txn: KVTxn) -> None:
            for k in (b"k1", b"k2", b"k3"):
                txn.put("projections", k, b"v" + k)

        backend.write(fill)

        def read(txn: KVTxn) -> tuple[list[bytes | None], ...]:
            assert isinstance(txn, LmdbTxn)
            return (
                txn.get_many("projections", [b"k3", b"k1", b"k2"]),
                txn.get_many("projections", [b"k2", b"nope", b"k1"]),
                txn.get_many("projections", [b"k1", b"", b"x" * 600]),
                txn.get_many("projections", []),
            )

        assert backend.read(read) == (
            [b"vk3", b"vk1", b"vk2"],
            [b"vk2", None, b"vk1"],
            [b"vk1", None, None],
            [],
        )
