"""EventLogSaver against LangGraph's own InMemorySaver as the model (hypothesis).

Random sequences of puts (with parents, namespaces, changed channels) and pending writes
(regular and special channels, retried tasks) go to both savers; every checkpoint each one
returns - by id, latest, listed, filtered - must be the same.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointTuple,
)
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.types import ERROR, INTERRUPT

from eventlog import RunStore
from eventlog.integrations.langgraph import EventLogSaver

THREADS = ("a", "b")
NAMESPACES = ("", "child:1")
CHANNELS = ("x", "y", "z")

put_op = st.tuples(
    st.just("put"),
    st.sampled_from(THREADS),
    st.sampled_from(NAMESPACES),
    st.dictionaries(st.sampled_from(CHANNELS), st.integers(0, 3) | st.text(max_size=3)),
    st.integers(0, 2),  # metadata step
)
writes_op = st.tuples(
    st.just("writes"),
    st.integers(0, 50),  # which stored checkpoint (modulo)
    st.lists(
        st.tuples(st.sampled_from(("x", "y", ERROR, INTERRUPT)), st.integers(0, 9)),
        min_size=1,
        max_size=3,
    ),
    st.sampled_from(("t1", "t2")),
    st.sampled_from(("", "p:1")),
)


def _same(ours: CheckpointTuple | None, theirs: CheckpointTuple | None) -> None:
    assert (ours is None) == (theirs is None)
    if ours is None or theirs is None:
        return
    assert ours.config == theirs.config
    assert ours.parent_config == theirs.parent_config
    assert ours.checkpoint == theirs.checkpoint
    assert ours.metadata == theirs.metadata
    assert ours.pending_writes == theirs.pending_writes


class Threads:
    """The state a graph keeps per (thread, namespace): the last config, versions, values."""

    def __init__(self) -> None:
        self.latest: dict[tuple[str, str], RunnableConfig] = {}
        self.versions: dict[tuple[str, str], dict[str, int]] = {}
        self.values: dict[tuple[str, str], dict[str, Any]] = {}

    def next_put(
        self, n: int, thread: str, ns: str, changed: dict[str, Any]
    ) -> tuple[RunnableConfig, Checkpoint, ChannelVersions]:
        """put()'s arguments for the next checkpoint (id ``n``) writing ``changed``."""
        key = (thread, ns)
        cur = self.versions.setdefault(key, {})
        vals = self.values.setdefault(key, {})
        for channel, value in changed.items():
            cur[channel] = cur.get(channel, 0) + 1
            vals[channel] = value
        cp = Checkpoint(
            v=1,
            id=f"{n:08d}",
            ts="2026-01-01T00:00:00+00:00",
            channel_values=dict(vals),
            channel_versions=dict(cur),
            versions_seen={},
            updated_channels=sorted(changed),
        )
        config = self.latest.get(key) or {
            "configurable": {"thread_id": thread, "checkpoint_ns": ns}
        }
        return config, cp, {c: cur[c] for c in changed}

    def resume(self, saver: BaseCheckpointSaver[Any], thread: str) -> None:
        """Continue from what the saver has, as a new invoke does (get_tuple of the latest)."""
        for ns in NAMESPACES:
            key = (thread, ns)
            tup = saver.get_tuple({"configurable": {"thread_id": thread, "checkpoint_ns": ns}})
            if tup is None:
                for state in (self.latest, self.versions, self.values):
                    state.pop(key, None)
                continue
            self.latest[key] = tup.config
            self.versions[key] = {c: int(v) for c, v in tup.checkpoint["channel_versions"].items()}
            self.values[key] = dict(tup.checkpoint["channel_values"])


@settings(max_examples=40, deadline=None)
# the first operation is a put: the writes need a stored checkpoint to point at
@given(
    st.builds(lambda first, rest: [first, *rest], put_op, st.lists(put_op | writes_op, max_size=24))
)
def test_same_answers_as_in_memory_saver(ops: list[tuple[Any, ...]]) -> None:
    store = RunStore.in_memory()
    try:
        savers: list[BaseCheckpointSaver[Any]] = [EventLogSaver(store), InMemorySaver()]
        stored: list[RunnableConfig] = []
        threads = Threads()
        for n, op in enumerate(ops):
            if op[0] == "put":
                _, thread, ns, changed, step = op
                config, cp, new = threads.next_put(n, thread, ns, changed)
                outs = [s.put(config, cp, {"source": "loop", "step": step}, new) for s in savers]
                assert outs[0] == outs[1]
                threads.latest[(thread, ns)] = outs[0]
                stored.append(outs[0])
            elif stored:
                _, which, writes, task, path = op
                target = stored[which % len(stored)]
                for s in savers:
                    s.put_writes(target, writes, task, path)
        for config in stored:
            _same(*(s.get_tuple(config) for s in savers))
        for thread in THREADS:
            for ns in NAMESPACES:
                base: RunnableConfig = {"configurable": {"thread_id": thread, "checkpoint_ns": ns}}
                _same(*(s.get_tuple(base) for s in savers))
                middle = stored[len(stored) // 2]
                for kwargs in (
                    {},
                    {"limit": 2},
                    {"filter": {"step": 1}},
                    {"before": middle},
                    {"before": middle, "limit": 1},
                ):
                    ours, theirs = (list(s.list(base, **kwargs)) for s in savers)
                    assert len(ours) == len(theirs)
                    for a, b in zip(ours, theirs, strict=True):
                        _same(a, b)
        assert store.verify() == []
    finally:
        store.close()


removal_op = st.one_of(
    st.tuples(
        st.just("prune"), st.sampled_from(THREADS), st.sampled_from(("keep_latest", "delete"))
    ),
    st.tuples(st.just("delete_for_run"), st.integers(0, 2)),
    st.tuples(st.just("copy"), st.sampled_from(THREADS)),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(put_op | removal_op, min_size=1, max_size=25))
def test_removals_keep_what_is_left_whole_and_equal_to_a_rebuild(
    ops: list[tuple[Any, ...]],
) -> None:
    """prune / delete_for_runs / copy_thread: what remains reads back exactly as it was put
    (no blob it needs was dropped), and the views equal a rebuild from the log.

    After a prune the graph resumes from the latest checkpoint (a new invoke); after
    delete_for_runs it goes on with the state it holds (a run still in progress), so the
    checkpoints it puts next refer to versions written before the removal.
    """
    store = RunStore.in_memory()
    try:
        saver = EventLogSaver(store)
        threads = Threads()
        expected: dict[tuple[str, str, str], dict[str, Any]] = {}  # (thread, ns, id) -> values
        for n, op in enumerate(ops):
            if op[0] == "put":
                _, thread, ns, changed, step = op
                config, cp, new = threads.next_put(n, thread, ns, changed)
                md: Any = {"source": "loop", "step": step, "run_id": f"run-{step}"}
                threads.latest[(thread, ns)] = saver.put(config, cp, md, new)
                expected[(thread, ns, cp["id"])] = dict(cp["channel_values"])
            elif op[0] == "prune":
                saver.prune([op[1]], strategy=op[2])
                threads.resume(saver, op[1])
            elif op[0] == "delete_for_run":
                saver.delete_for_runs([f"run-{op[1]}"])
            else:
                target = f"copy-{n}"
                saver.copy_thread(op[1], target)
                for (thread, ns, cid), vals in list(expected.items()):
                    if thread == op[1]:
                        expected[(target, ns, cid)] = vals
            for tup in saver.list(None):
                conf = tup.config["configurable"]
                want = expected[(conf["thread_id"], conf["checkpoint_ns"], conf["checkpoint_id"])]
                assert tup.checkpoint["channel_values"] == want
        assert store.verify() == []
    finally:
        store.close()
