"""Forks under load (hypothesis): a fork's events are its parent's prefix plus its own.

A thread appends to the root run the whole time while the test forks runs (forks of forks
too) at random seqs and appends to them; afterwards every run's events must be its parent's
first ``fork_seq`` events followed by exactly the events appended to it, seq 1..n, and
``verify()`` must find nothing. Also: ``copy_store`` keeps lineage (it copies the ``forks``
table with the rest).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from eventlog import EventRecord, RunStore
from eventlog.events import TextDelta
from eventlog.tools.copy_store import copy_store

WAIT = 30.0

# each step: fork run #i (modulo the runs so far) at a fraction of its head, or append n
# events to run #i
steps = st.lists(
    st.one_of(
        st.tuples(st.just("fork"), st.integers(0, 50), st.floats(0, 1)),
        st.tuples(st.just("append"), st.integers(0, 50), st.integers(1, 3)),
    ),
    min_size=1,
    max_size=14,
)


def _texts(records: list[EventRecord]) -> list[str]:
    return [r.event.delta for r in records if isinstance(r.event, TextDelta)]


@settings(max_examples=20, deadline=None, database=None)
@given(steps)
def test_a_fork_is_its_parents_prefix_and_its_own_events(
    program: list[tuple[str, int, float]],
) -> None:
    where = tempfile.mkdtemp()
    try:
        with RunStore.open(Path(where) / "s", durability="fast") as store:
            _check(store, program)
    finally:
        shutil.rmtree(where, ignore_errors=True)


def _check(store: RunStore, program: list[tuple[str, int, float]]) -> None:
    root = store.create_run(store.ensure_session(), provider="p", model="m").id
    runs: list[UUID] = [root]
    own: dict[UUID, list[str]] = {root: []}
    parent_of: dict[UUID, tuple[UUID, int]] = {}
    stop = threading.Event()
    started = threading.Event()

    def writer() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            store.append_event(root, TextDelta(f"bg{n}"))
            started.set()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert started.wait(WAIT)
        for op, i, x in program:
            target = runs[i % len(runs)]
            if op == "fork":
                head = len(store.list_events(target))
                at = int(head * float(x))
                fork = store.fork_run(target, at).id
                runs.append(fork)
                own[fork] = []
                parent_of[fork] = (target, at)
            elif target != root:  # the root's own events are the writer's and these
                texts = [f"{str(target)[:4]}-{len(own[target]) + k}" for k in range(int(x))]
                head = len(store.list_events(target))
                store.append_events(target, [TextDelta(t) for t in texts], expected_seq=head)
                own[target] += texts
    finally:
        stop.set()
        thread.join(WAIT)
    assert not thread.is_alive()
    for run in runs[1:]:
        parent, at = parent_of[run]
        events = store.list_events(run)
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert _texts(events) == _texts(store.list_events(parent))[:at] + own[run]
        assert _texts(events) == _texts(store.list_events(run, after_seq=0, to_seq=None))
        assert [f.parent_id for f in store.lineage(run)][:1] == [parent]
    for run in runs:
        children = {f for f, (p, _) in parent_of.items() if p == run}
        assert {r.id for r in store.list_forks(run)} == children
    assert store.verify() == []


def test_copy_store_keeps_lineage(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    with RunStore.open(src) as store:
        parent = store.create_run(
            store.ensure_session(), provider="p", model="m", events=[TextDelta("a")]
        )
        fork = store.fork_run(parent.id, 1)
        store.append_event(fork.id, TextDelta("b"), expected_seq=1)
    copy_store(src, dst)
    with RunStore.open(dst) as copy:
        assert _texts(copy.list_events(fork.id)) == ["a", "b"]
        assert [f.parent_id for f in copy.lineage(fork.id)] == [parent.id]
        assert [r.id for r in copy.list_forks(parent.id)] == [fork.id]
        assert copy.verify() == []
