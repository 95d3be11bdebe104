"""The LMDB map starts small, grows on demand, and stops cleanly at ``max_map_size``."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import pytest

from eventlog import AppendRequest, RunStore, StoreFullError
from eventlog.events import TextDelta
from eventlog.storage.lmdb import LmdbBackend


def disk_bytes(path: Path) -> int:
    """The bytes ``path`` takes on disk (the map is sparse: its size says nothing)."""
    return path.stat().st_blocks * 512


MiB = 1 << 20
CHUNK = 10_000  # characters per event


def map_size(store: RunStore) -> int:
    backend = store.core.backend
    assert isinstance(backend, LmdbBackend)
    return backend.info()["map_size"]


def delta(n: int) -> TextDelta:
    """A ~10 KB event whose text identifies it (its number, then padding)."""
    head = f"{n:08d}|"
    return TextDelta(head + "x" * (CHUNK - len(head)))


def number(event: object) -> int:
    assert isinstance(event, TextDelta)
    assert len(event.delta) == CHUNK
    return int(event.delta.split("|", 1)[0])


def fill_until_full(store: RunStore, run_id: UUID) -> tuple[int, StoreFullError]:
    """Append batches of 5 events until StoreFullError; return the events written and it."""
    written = 0
    for _ in range(1000):  # 1000 x 5 x 10 KB = 50 MB: far more than any cap used here
        try:
            store.append_events(run_id, [delta(written + i) for i in range(5)])
        except StoreFullError as exc:
            return written, exc
        written += 5
    pytest.fail("the store never became full")


def test_map_grows_from_one_mib_to_fit_50_mb(tmp_path: Path) -> None:
    path = tmp_path / "store"
    batches, per_batch = 100, 50  # 5000 events x 10 KB = 50 MB
    total = batches * per_batch
    with RunStore.open(path, durability="fast", map_size=MiB) as store:
        assert map_size(store) == MiB
        run = store.create_run(store.create_session().id, provider="p", model="m")
        for b in range(batches):
            records = store.append_events(
                run.id, [delta(b * per_batch + i) for i in range(per_batch)]
            )
            assert records[-1].seq == (b + 1) * per_batch
        assert map_size(store) > MiB
        assert map_size(store) >= total * CHUNK
        store.flush()

    with RunStore.open(path, durability="fast", map_size=MiB) as store:
        assert map_size(store) >= total * CHUNK  # the grown map is kept
        records = store.list_events(run.id)
        assert [r.seq for r in records] == list(range(1, total + 1))
        assert [number(r.event) for r in records] == list(range(total))
        assert [r.position for r in store.read_log()] == list(range(1, total + 1))
        assert store.last_position() == total
        # and it still takes writes
        assert store.append_event(run.id, delta(total)).seq == total + 1


def test_store_full_at_max_map_size_then_reopen_larger(tmp_path: Path) -> None:
    path = tmp_path / "store"
    cap = 2 * MiB
    with RunStore.open(path, durability="fast", map_size=MiB, max_map_size=cap) as store:
        run = store.create_run(store.create_session().id, provider="p", model="m")
        written, error = fill_until_full(store, run.id)
        assert "max_map_size" in str(error)
        assert str(cap) in str(error)
        assert 0 < written < cap // CHUNK
        assert map_size(store) == cap

        # nothing of the failed append was written; reads still work
        records = store.list_events(run.id)
        assert [number(r.event) for r in records] == list(range(written))
        assert store.last_position() == written
        assert [r.position for r in store.read_log()] == list(range(1, written + 1))
        state = store.get_run_state(run.id)
        assert state is not None
        assert state.last_seq == written

        # still full on the next try, and still nothing written
        with pytest.raises(StoreFullError):
            store.append_events(run.id, [delta(written + i) for i in range(5)])
        assert store.last_position() == written

    with RunStore.open(path, durability="fast", map_size=MiB, max_map_size=8 * cap) as store:
        assert store.last_position() == written
        more = 200  # 2 MB more than the old cap allowed
        for i in range(0, more, 5):
            store.append_events(run.id, [delta(written + i + k) for k in range(5)])
        assert map_size(store) > cap
        records = store.list_events(run.id)
        assert [number(r.event) for r in records] == list(range(written + more))
        assert [r.position for r in store.read_log()] == list(range(1, written + more + 1))


def test_one_batch_larger_than_the_cap_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "store"
    cap = 4 * MiB
    with RunStore.open(path, durability="fast", map_size=MiB, max_map_size=cap) as store:
        run = store.create_run(store.create_session().id, provider="p", model="m")
        store.append_events(run.id, [delta(i) for i in range(10)])
        before = store.last_position()
        huge = [delta(10 + i) for i in range(600)]  # 6 MB in one call
        with pytest.raises(StoreFullError, match="max_map_size"):
            store.append_events(run.id, huge)
        assert map_size(store) == cap  # it grew up to the cap before giving up
        assert store.last_position() == before
        assert [number(r.event) for r in store.list_events(run.id)] == list(range(10))
        assert len(store.read_log()) == 10

        # a write that fits still works, with the next seq and position (no gap)
        record = store.append_event(run.id, delta(10))
        assert (record.seq, record.position) == (11, before + 1)
        assert [number(r.event) for r in store.list_events(run.id)] == list(range(11))


def test_full_store_every_write_kind_fails_cleanly_then_deletes_after_raising_the_cap(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store"
    cap = 2 * MiB
    with RunStore.open(path, durability="fast", map_size=MiB, max_map_size=cap) as store:
        sid = store.create_session().id
        runs = [store.create_run(sid, provider="p", model="m").id for _ in range(2)]
        written, error = fill_until_full(store, runs[0])
        message = str(error)
        assert str(path) in message
        assert "larger max_map_size" in message
        assert "raise the cap first, then delete" in message  # a delete may need pages too
        before = store.last_position()
        # a multi-run batch: nothing of it
        with pytest.raises(StoreFullError):
            store.append_many(
                [
                    AppendRequest(runs[1], [delta(0)]),
                    AppendRequest(runs[0], [delta(written + i) for i in range(40)]),
                ]
            )
        assert store.list_events(runs[1]) == []
        assert store.last_position() == before
        # LMDB copies pages on write: a delete needs free pages too. Whether the free list has
        # enough depends on the history; either it works or it changes nothing.
        try:
            deleted = store.delete_run(runs[0])
        except StoreFullError:
            deleted = False
            assert [number(r.event) for r in store.list_events(runs[0])] == list(range(written))
        assert store.verify() == []
    size_full = disk_bytes(path / "data.mdb")

    with RunStore.open(path, durability="fast", map_size=MiB, max_map_size=2 * cap) as store:
        assert store.delete_run(runs[0]) is not deleted
        assert store.get_run(runs[0]) is None
        assert store.verify() == []
        # the freed pages are reused: as much data again fits without the file doubling
        for i in range(0, written, 5):
            store.append_events(runs[1], [delta(i + k) for k in range(5)])
        assert [number(r.event) for r in store.list_events(runs[1])] == list(range(written))
        assert store.verify() == []
    assert disk_bytes(path / "data.mdb") < 1.5 * size_full


def test_import_grows_the_map_when_a_projector_fills_it(tmp_path: Path) -> None:
    """A full map hit in a projector's hook during an import grows the map (not a line error)."""
    import msgspec

    encode = msgspec.json.Encoder().encode
    now = "2026-01-01T00:00:00Z"
    sid = "00000000-0000-4000-8000-000000000000"
    lines = [
        encode(
            {
                "kind": "session",
                "id": sid,
                "title": "t",
                "model": "m",
                "metadata": {},
                "created_at": now,
                "updated_at": now,
            }
        )
    ]
    for i in range(1, 6001):
        lines.append(
            encode(
                {
                    "kind": "run",
                    "id": f"00000000-0000-4000-8000-{i:012d}",
                    "session_id": sid,
                    "status": "pending",
                    "provider": "p",
                    "model": "m",
                    "metadata": {"note": "x" * 40},
                    "client_request_id": None,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        )
    with RunStore.open(str(tmp_path / "s"), durability="fast", map_size=MiB) as store:
        summary = store.import_jsonl(lines)
        assert summary.runs == 6000
        assert map_size(store) > MiB
        assert store.count_runs() == 6000
