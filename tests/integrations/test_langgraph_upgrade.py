"""The LangGraph views' version 2 layout, and the upgrade of a store written with version 1.

Version 1 kept the events' own msgpack maps in the views; version 2 keeps msgpack arrays
(:class:`StoredCheckpoint`, :class:`StoredBlob`). The projector's ``version`` makes the store
rebuild the views from the log when it opens a store whose views are older: here a store is
turned into what version 1 wrote (its view values and its projector version), then reopened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import empty_checkpoint

from eventlog import RunStore
from eventlog.engine.projectors import ProjectorMeta, ProjectorSet
from eventlog.integrations.langgraph import EventLogSaver
from eventlog.storage.kv import KVTxn
from projections.langgraph_checkpoints import (
    ChannelBlobSaved,
    CheckpointSaved,
    LangGraphCheckpointsProjector,
    StoredBlob,
    StoredCheckpoint,
)

PREFIX = b"langgraph\x00"


def _fill(saver: EventLogSaver, thread: str, n: int) -> RunnableConfig:
    config: Any = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
    versions: dict[str, Any] = {}
    for i in range(n):
        changed = ["big", "step"] if i == 0 else ["step"]
        for channel in changed:
            versions[channel] = saver.get_next_version(versions.get(channel), None)
        cp = empty_checkpoint()
        cp["channel_values"] = {"big": "x" * 5000, "step": i}
        cp["channel_versions"] = dict(versions)
        config = saver.put(
            config, cp, {"source": "loop", "step": i}, {c: versions[c] for c in changed}
        )
        saver.put_writes(config, [("step", i + 1)], f"task-{i}")
    return {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}


def _view(store: RunStore) -> dict[bytes, bytes]:
    def read(txn: KVTxn) -> dict[bytes, bytes]:
        return {k[len(PREFIX) :]: v for k, v in txn.scan("projections", PREFIX) if k}

    return store.core.backend.read(read)


def _as_version_1(store: RunStore) -> int:
    """Rewrite the views' values as version 1 wrote them; mark the projector as version 1."""
    enc = msgspec.msgpack.Encoder()
    checkpoints = msgspec.msgpack.Decoder(StoredCheckpoint)
    blobs = msgspec.msgpack.Decoder(StoredBlob)
    changed = 0

    def rewrite(txn: KVTxn) -> None:
        nonlocal changed
        for key, raw in _view(store).items():
            if key[:1] == b"c":
                old: Any = checkpoints.decode(raw).saved()  # the event's map, as v1 kept it
            elif key[:1] == b"b":
                blob = blobs.decode(raw)  # v1 kept the whole event; the test needs the bytes
                old = ChannelBlobSaved("", "?", 0, blob.type, blob.value)
            else:
                continue
            txn.put("projections", PREFIX + key, enc.encode(old))
            changed += 1
        meta = ProjectorSet.meta(txn, "langgraph")
        assert meta is not None
        assert meta.version == LangGraphCheckpointsProjector.version == 2
        txn.put(
            "projector_meta",
            b"langgraph",
            enc.encode(ProjectorMeta(1, meta.checkpoint, meta.ready, meta.error)),
        )

    store.core.backend.write(rewrite)
    return changed


def test_reopening_a_version_1_store_rebuilds_the_views(tmp_path: Path) -> None:
    path = tmp_path / "store"
    with RunStore.open(path) as store:
        saver = EventLogSaver(store)
        config = _fill(saver, "t-1", 5)
        before = saver.get_tuple(config)
        listed = [t.checkpoint["id"] for t in saver.list(config)]
        view = _view(store)
        assert _as_version_1(store) == 11  # 5 checkpoints, 6 blobs ("big" once, "step" 5x)
    assert before is not None
    assert len(listed) == 5

    with RunStore.open(path) as store:
        status = {s.name: s for s in store.projector_status()}["langgraph"]
        assert (status.version, status.ready) == (2, True)
        assert _view(store) == view  # rebuilt from the log: what version 2 writes
        saver = EventLogSaver(store)
        after = saver.get_tuple(config)
        assert after is not None
        assert after.checkpoint == before.checkpoint
        assert after.pending_writes == before.pending_writes
        assert [t.checkpoint["id"] for t in saver.list(config)] == listed
        assert store.verify() == []


def test_a_version_1_value_is_not_read_as_version_2(tmp_path: Path) -> None:
    """Why the version bump is needed: version 2's decoders refuse version 1's maps."""
    with RunStore.open(tmp_path / "store") as store:
        saver = EventLogSaver(store)
        config = _fill(saver, "t-1", 2)
        _as_version_1(store)
        with pytest.raises(msgspec.ValidationError):
            saver.get_tuple(config)


def test_stored_checkpoint_round_trips_the_event() -> None:
    event = CheckpointSaved("t", "", "1", None, "msgpack", b"c", "msgpack", b"m", {"a": 1}, "r")
    stored = StoredCheckpoint(*msgspec.structs.astuple(event))
    assert stored.saved() == event
    assert stored.saved(thread_id="u") == msgspec.structs.replace(event, thread_id="u")
