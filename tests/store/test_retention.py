"""``prune`` beyond the contract: the async facade, and random stores against a simple model.

The hypothesis test builds random stores (sessions, runs in every status, a few events) and
random policies, computes what must go from the policy alone, and checks that ``prune``
removes exactly that, that ``verify()`` stays clean and that every remaining run's record,
state, events and listing are what they were.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventlog import AsyncRunStore, RunStatus, RunStore
from eventlog.engine.retention import pruned_ranges
from eventlog.model.events import TextDelta
from eventlog.model.retention import PrunedRange
from eventlog.storage.kv import KVTxn
from eventlog.testing.retention import snapshot_of

_STATUSES = [s.value for s in RunStatus]
_TERMINAL = ["completed", "failed", "cancelled"]
_FUTURE = datetime(2999, 1, 1, tzinfo=UTC)


def test_async_prune_matches_the_sync_one(tmp_path: Path) -> None:
    async def main() -> None:
        async with await AsyncRunStore.open(tmp_path / "store") as store:
            session = await store.ensure_session()
            ids = []
            for i in range(4):
                run = await store.create_run(session, provider="p", model="m")
                await store.append_event(run.id, TextDelta(str(i)))
                if i != 3:
                    await store.update_run_status(run.id, "completed")
                ids.append(run.id)
            dry = await store.prune(dry_run=True)
            calls: list[tuple[int, int]] = []
            report = await store.prune(batch_size=2, progress=lambda d, t: calls.append((d, t)))
            assert sorted(report.run_ids) == sorted(dry.run_ids) == sorted(ids[:3])
            assert (report.batches, report.kept_non_terminal) == (2, 1)
            assert calls == [(0, 3), (2, 3), (3, 3)]
            assert await store.get_run(ids[3]) is not None
            assert await store.verify() == []

    asyncio.run(main())


_runs = st.lists(
    st.tuples(st.integers(0, 2), st.sampled_from(_STATUSES), st.integers(0, 3)), max_size=12
)
_policies = st.fixed_dictionaries(
    {
        "statuses": st.lists(st.sampled_from(_TERMINAL), min_size=1, unique=True),
        "keep_last_per_session": st.none() | st.integers(0, 3),
        "older_than": st.sampled_from([None, _FUTURE, timedelta(days=1)]),
        "batch_size": st.integers(1, 4),
    }
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs=_runs, policy=_policies, dry=st.booleans())
def test_prune_removes_exactly_what_the_policy_names(
    runs: list[tuple[int, str, int]], policy: dict[str, object], dry: bool
) -> None:
    store = RunStore.in_memory()
    sessions = [store.ensure_session() for _ in range(3)]
    made: list[tuple[UUID, UUID, str]] = []
    for session_no, status, n in runs:
        run = store.create_run(sessions[session_no], provider="p", model="m")
        if n:
            store.append_events(run.id, [TextDelta(str(i)) for i in range(n)])
        if status != "pending":
            store.update_run_status(run.id, status)
        made.append((run.id, sessions[session_no], status))
    # the model: the newest N runs of each session stay, then status and age decide
    keep = policy["keep_last_per_session"]
    assert keep is None or isinstance(keep, int)
    newest: set[UUID] = set()
    for sid in sessions:
        of_session = [rid for rid, s, _ in made if s == sid]  # created in this order
        newest |= set(of_session[max(0, len(of_session) - keep) :] if keep else [])
    old = policy["older_than"] != timedelta(days=1)  # None and the far future: every run is old
    expected = {
        rid
        for rid, _, status in made
        if status in policy["statuses"]  # type: ignore[operator]
        and old
        and rid not in newest
    }
    before = snapshot_of(store, [rid for rid, _, _ in made])
    report = store.prune(dry_run=dry, **policy)  # type: ignore[arg-type]
    assert set(report.run_ids) == expected
    assert report.kept_non_terminal == sum(1 for _, _, s in made if s not in _TERMINAL)
    gone = set() if dry else expected
    after = snapshot_of(store, [rid for rid, _, _ in made])
    for rid, _, _ in made:
        assert after[rid] == (None if rid in gone else before[rid])
    assert store.verify() == []
    for sid in sessions:
        listed = {r.id for r in store.list_runs_filtered(session_id=sid, limit=1000)}
        assert listed == {rid for rid, s, _ in made if s == sid and rid not in gone}
    assert store.count_runs() == len(made) - len(gone)
    if not dry and expected:
        assert sum(r.count for r in store.core.backend.read(_ranges)) == report.events


def _ranges(txn: KVTxn) -> list[PrunedRange]:
    return pruned_ranges(txn)


@settings(max_examples=60, deadline=None)
@given(
    layout=st.lists(st.booleans(), min_size=1, max_size=40),
    batches=st.lists(st.lists(st.integers(0, 39), max_size=10), max_size=4),
)
def test_pruned_ranges_cover_exactly_the_pruned_positions(
    layout: list[bool], batches: list[list[int]]
) -> None:
    """Ranges stay disjoint, hold every pruned position and no live one, and count right."""
    from eventlog.engine.retention import record_pruned
    from eventlog.storage.keys import pack_u64
    from eventlog.storage.memory import MemoryBackend

    backend = MemoryBackend()
    # position p + 1 holds an event when layout[p]; absent positions were deleted earlier
    events = [(pack_u64(p + 1), b"x" * 16) for p, on in enumerate(layout) if on]
    backend.write(lambda txn: txn.put_many("positions", events))
    pruned: set[int] = set()
    for batch in batches:
        doomed = {p + 1 for p in batch if p < len(layout) and layout[p] and p + 1 not in pruned}

        def work(txn: KVTxn, doomed: set[int] = doomed) -> None:
            for p in doomed:
                txn.delete("positions", pack_u64(p))
            record_pruned(txn, doomed)

        backend.write(work)
        pruned |= doomed
    ranges = backend.read(_ranges)
    live = {p + 1 for p, on in enumerate(layout) if on} - pruned
    assert sum(r.count for r in ranges) == len(pruned)
    covered = [p for r in ranges for p in range(r.first, r.last + 1)]
    assert len(covered) == len(set(covered))  # disjoint
    assert pruned <= set(covered)
    assert not live & set(covered)
    assert all(a.last < b.first for a, b in itertools.pairwise(ranges))


def test_verify_reports_a_damaged_pruned_range(tmp_path: Path) -> None:
    from eventlog.storage.keys import pack_u64

    with RunStore.open(tmp_path / "store") as store:
        run = store.create_run(store.ensure_session(), provider="p", model="m")
        store.append_events(run.id, [TextDelta("a"), TextDelta("b")])
        assert store.verify() == []
        # a range over position 2, which still holds an event
        bogus = (b"pruned." + pack_u64(2), pack_u64(1) + pack_u64(1))
        store.core.backend.write(lambda txn: txn.put("meta", *bogus))
        problems = store.verify()
        assert [(p.kind, p.position) for p in problems] == [("pruned_range", 1)]
        assert "holds an event" in problems[0].detail
