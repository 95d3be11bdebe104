"""EventLogSaver beyond the conformance suite: bad input, deleted threads, deltas, reopen,
concurrency, and the layering (the core never imports langgraph)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, cast

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    empty_checkpoint,
)

from eventlog import AsyncRunStore, RunStore, stream_id_for
from eventlog.integrations.langgraph import TOMBSTONES, EventLogSaver, ThreadDeletedError
from projections.langgraph_checkpoints import (
    THREAD_KIND,
    TOMBSTONE_KIND,
    ChannelBlobSaved,
    CheckpointSaved,
    ThreadDeleted,
    WritesSaved,
)


def _cfg(thread: str, checkpoint_id: str | None = None, ns: str = "") -> RunnableConfig:
    conf: dict[str, Any] = {"thread_id": thread, "checkpoint_ns": ns}
    if checkpoint_id is not None:
        conf["checkpoint_id"] = checkpoint_id
    return {"configurable": conf}


def _checkpoint(values: dict[str, Any], versions: ChannelVersions) -> Checkpoint:
    cp = empty_checkpoint()
    cp["channel_values"] = values
    cp["channel_versions"] = versions
    return cp


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with RunStore.open(tmp_path / "store") as s:
        yield s


def _steps(saver: EventLogSaver, thread: str, n: int) -> list[RunnableConfig]:
    """n checkpoints; channel "big" is written once, channel "counter" at every step."""
    out: list[RunnableConfig] = []
    parent = _cfg(thread)
    big = saver.get_next_version(None, None)
    counter: str | None = None
    for i in range(n):
        counter = saver.get_next_version(counter, None)
        new: ChannelVersions = {"counter": counter, "big": big} if i == 0 else {"counter": counter}
        cp = _checkpoint({"counter": i, "big": "x" * 10_000}, {"counter": counter, "big": big})
        parent = saver.put(parent, cp, {"source": "loop", "step": i}, new)
        out.append(parent)
    return out


# -- storage grows with the deltas ------------------------------------------------------------


def test_only_changed_channels_are_stored(store: RunStore) -> None:
    saver = EventLogSaver(store)
    configs = _steps(saver, "t", 5)
    events = [r.event for r in store.read_stream(stream_id_for(THREAD_KIND, "t"))]
    blobs = [e for e in events if isinstance(e, ChannelBlobSaved)]
    assert [b.channel for b in blobs].count("big") == 1  # written once, not once per step
    assert [b.channel for b in blobs].count("counter") == 5
    assert sum(isinstance(e, CheckpointSaved) for e in events) == 5
    # yet every checkpoint reads back whole
    for i, config in enumerate(configs):
        tup = saver.get_tuple(config)
        assert tup is not None
        assert tup.checkpoint["channel_values"] == {"counter": i, "big": "x" * 10_000}


def test_put_writes_retry_appends_nothing(store: RunStore) -> None:
    saver = EventLogSaver(store)
    stored = saver.put(_cfg("t"), _checkpoint({}, {}), {}, {})
    saver.put_writes(stored, [("a", 1), ("b", 2)], "task-1")
    saver.put_writes(stored, [("a", 1), ("b", 2)], "task-1")  # the runner retried the task
    events = [r.event for r in store.read_stream(stream_id_for(THREAD_KIND, "t"))]
    assert sum(isinstance(e, WritesSaved) for e in events) == 1
    tup = saver.get_tuple(stored)
    assert tup is not None
    assert tup.pending_writes == [("task-1", "a", 1), ("task-1", "b", 2)]


# -- deleted threads stay deleted -------------------------------------------------------------


def test_deleted_thread_refuses_late_writes(store: RunStore) -> None:
    saver = EventLogSaver(store)
    stored = saver.put(_cfg("doomed"), _checkpoint({"a": 1}, {"a": "1"}), {}, {"a": "1"})
    saver.delete_thread("doomed")
    assert saver.get_tuple(_cfg("doomed")) is None
    assert store.get_stream(stream_id_for(THREAD_KIND, "doomed")) is None  # events gone too
    position = store.last_position()
    with pytest.raises(ThreadDeletedError, match=r"'doomed'.*deleted"):
        saver.put(_cfg("doomed"), _checkpoint({}, {}), {}, {})
    with pytest.raises(ThreadDeletedError):
        saver.put_writes(stored, [("a", 2)], "late-task")
    saver.put(_cfg("source"), _checkpoint({}, {}), {}, {})
    with pytest.raises(ThreadDeletedError):
        saver.copy_thread("source", "doomed")
    assert store.get_stream(stream_id_for(THREAD_KIND, "doomed")) is None
    assert store.last_position() == position + 1  # only the "source" checkpoint was written
    assert list(saver.list(_cfg("doomed"))) == []
    saver.delete_thread("doomed")  # idempotent
    assert store.verify() == []


def test_deleted_thread_stays_deleted_after_reopen_and_rebuild(tmp_path: Path) -> None:
    with RunStore.open(tmp_path / "store") as store:
        saver = EventLogSaver(store)
        saver.put(_cfg("doomed"), _checkpoint({}, {}), {}, {})
        saver.delete_thread("doomed")
    with RunStore.open(tmp_path / "store") as store:
        store.rebuild_projections(["langgraph"])
        with pytest.raises(ThreadDeletedError):
            EventLogSaver(store).put(_cfg("doomed"), _checkpoint({}, {}), {}, {})
        assert store.verify() == []


def test_a_deletion_cut_short_hides_the_thread_and_finishes_on_retry(store: RunStore) -> None:
    # delete_thread writes the tombstone, then deletes the stream: a crash in between leaves
    # the stream - invisible and closed to writes - until delete_thread runs again
    saver = EventLogSaver(store)
    saver.put(_cfg("doomed"), _checkpoint({"a": 1}, {"a": "1"}), {}, {"a": "1"})
    stream = stream_id_for(THREAD_KIND, "doomed")
    store.ensure_stream(TOMBSTONES, kind=TOMBSTONE_KIND)
    store.append_to_stream(TOMBSTONES, [ThreadDeleted("doomed", stream)], event_ids=[stream])
    assert saver.get_tuple(_cfg("doomed")) is None
    with pytest.raises(ThreadDeletedError):
        saver.put(_cfg("doomed"), _checkpoint({}, {}), {}, {})
    assert store.get_stream(stream) is not None
    saver.delete_thread("doomed")
    assert store.get_stream(stream) is None
    assert len(store.read_stream(TOMBSTONES)) == 1  # the retry added no second tombstone
    assert store.verify() == []


def test_deleting_the_tombstone_stream_forgets_the_tombstones(store: RunStore) -> None:
    saver = EventLogSaver(store)
    saver.put(_cfg("doomed"), _checkpoint({}, {}), {}, {})
    saver.delete_thread("doomed")
    assert store.delete_stream(TOMBSTONES)
    assert store.verify() == []  # the view agrees with a rebuild from what the log still has
    saver.put(_cfg("doomed"), _checkpoint({}, {}), {}, {})
    assert len(list(saver.list(_cfg("doomed")))) == 1


def test_deleted_thread_refuses_async_writes() -> None:
    async def main() -> None:
        async with AsyncRunStore.in_memory() as store:
            saver = EventLogSaver(store)
            await saver.aput(_cfg("doomed"), _checkpoint({}, {}), {}, {})
            await saver.adelete_thread("doomed")
            with pytest.raises(ThreadDeletedError):
                await saver.aput(_cfg("doomed"), _checkpoint({}, {}), {}, {})

    asyncio.run(main())


def test_deleting_the_stream_directly_clears_the_views(store: RunStore) -> None:
    saver = EventLogSaver(store)
    saver.put(_cfg("t"), _checkpoint({"a": 1}, {"a": "1"}), {}, {"a": "1"})
    assert store.delete_stream(stream_id_for(THREAD_KIND, "t"))
    assert saver.get_tuple(_cfg("t")) is None
    assert store.verify() == []
    saver.put(_cfg("t"), _checkpoint({}, {}), {}, {})  # not a tombstone: the thread is reusable


# -- prune and delete_for_runs ------------------------------------------------------------------


def test_prune_keeps_the_blobs_the_latest_checkpoint_needs(store: RunStore) -> None:
    saver = EventLogSaver(store)
    configs = _steps(saver, "t", 4)
    saver.prune(["t"])
    left = list(saver.list(_cfg("t")))
    assert [t.config for t in left] == [configs[-1]]
    assert left[0].checkpoint["channel_values"] == {"counter": 3, "big": "x" * 10_000}
    assert store.verify() == []


# -- bad input ----------------------------------------------------------------------------------


def test_bad_store() -> None:
    with pytest.raises(TypeError, match="RunStore or AsyncRunStore"):
        EventLogSaver("/tmp/store")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("config", "error", "match"),
    [
        ({}, ValueError, "thread_id"),
        ({"configurable": {}}, ValueError, "thread_id"),
        ({"configurable": {"thread_id": ""}}, ValueError, "thread_id must not be empty"),
        ({"configurable": {"thread_id": ["t"]}}, TypeError, "thread_id must be a str"),
        ({"configurable": {"thread_id": "t" * 300}}, ValueError, "thread_id is 300 bytes"),
        ({"configurable": {"thread_id": "t", "checkpoint_ns": 3}}, TypeError, "checkpoint_ns"),
    ],
)
def test_bad_config(store: RunStore, config: Any, error: type[Exception], match: str) -> None:
    saver = EventLogSaver(store)
    position = store.last_position()
    with pytest.raises(error, match=match):
        saver.put(config, _checkpoint({}, {}), {}, {})
    with pytest.raises(error, match=match):
        saver.get_tuple(config)
    assert store.last_position() == position


def test_bad_arguments(store: RunStore) -> None:
    saver = EventLogSaver(store)
    stored = saver.put(_cfg("t"), _checkpoint({}, {}), {}, {})
    with pytest.raises(ValueError, match="checkpoint_id"):
        saver.put_writes(_cfg("t"), [("a", 1)], "task")
    with pytest.raises(TypeError, match=r"\(channel, value\) pair"):
        saver.put_writes(stored, ["a"], "task")  # type: ignore[list-item]
    with pytest.raises(TypeError, match="task_id must be a str"):
        saver.put_writes(stored, [("a", 1)], 7)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit must be an int >= 0"):
        list(saver.list(_cfg("t"), limit=-1))
    with pytest.raises(TypeError, match="filter must be a dict"):
        list(saver.list(_cfg("t"), filter=[("step", 1)]))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="strategy must be 'keep_latest' or 'delete'"):
        saver.prune(["t"], strategy="oldest")
    with pytest.raises(TypeError, match="list of thread ids"):
        saver.prune("t")
    with pytest.raises(TypeError, match="list of run ids"):
        saver.delete_for_runs("run-1")
    with pytest.raises(TypeError, match="Checkpoint dict"):
        saver.put(_cfg("t"), {"v": 1}, {}, {})  # type: ignore[typeddict-item]
    assert list(saver.list(_cfg("t"), limit=0)) == []
    assert len(list(saver.list(_cfg("t")))) == 1  # nothing else was written


# -- reopen, concurrency --------------------------------------------------------------------


def test_survives_reopen(tmp_path: Path) -> None:
    with RunStore.open(tmp_path / "store") as store:
        saver = EventLogSaver(store)
        configs = _steps(saver, "t", 3)
        saver.put_writes(configs[-1], [("a", {"x": [1, 2]})], "task")
        before = [(t.config, t.checkpoint, t.metadata, t.pending_writes) for t in saver.list(None)]
    with RunStore.open(tmp_path / "store") as store:
        saver = EventLogSaver(store)
        after = [(t.config, t.checkpoint, t.metadata, t.pending_writes) for t in saver.list(None)]
        assert after == before
        assert len(after) == 3


def test_concurrent_puts_on_one_thread(store: RunStore) -> None:
    saver = EventLogSaver(store)
    n_threads, per_thread = 8, 25
    barrier = threading.Barrier(n_threads)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                cp = _checkpoint({f"w{worker}": i}, {f"w{worker}": f"{i + 1}"})
                metadata = cast(CheckpointMetadata, {"worker": worker})
                cfg = saver.put(_cfg("shared"), cp, metadata, {f"w{worker}": f"{i + 1}"})
                saver.put_writes(cfg, [("done", i)], f"task-{worker}")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    listed = list(saver.list(_cfg("shared")))
    assert len(listed) == n_threads * per_thread
    assert all(len(t.pending_writes or []) == 1 for t in listed)
    records = store.read_stream(stream_id_for(THREAD_KIND, "shared"))
    assert [r.seq for r in records] == list(range(1, len(records) + 1))
    for worker in range(n_threads):
        mine = list(saver.list(_cfg("shared"), filter={"worker": worker}))
        assert sorted(t.checkpoint["channel_values"][f"w{worker}"] for t in mine) == list(
            range(per_thread)
        )
    assert store.verify() == []


# -- layering -------------------------------------------------------------------------------


def test_core_and_event_types_do_not_import_langgraph() -> None:
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('langgraph', 'langchain_core'):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import eventlog, projections.langgraph_checkpoints as p\n"
        "s = eventlog.RunStore.in_memory()\n"
        "sid = eventlog.stream_id_for(p.THREAD_KIND, 't')\n"
        "s.ensure_stream(sid, kind=p.THREAD_KIND)\n"
        "s.append_to_stream(sid, [p.ChannelBlobSaved('', 'a', 1, 'json', b'1')])\n"
        "print(type(s.read_stream(sid)[0].event).__name__, s.verify())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["ChannelBlobSaved", "[]"]
