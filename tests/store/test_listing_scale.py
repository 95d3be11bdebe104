"""Listing on 100k runs returns the right page for every status and session filter checked.

One LMDB store (``durability="fast"``, default map size, so the map grows along the way) gets
20 sessions and 100,000 runs; a seeded random subset moves to other statuses (status updates,
model starts, completions, failures, cancellations) and 2% are deleted. A plain model keeps
every live run's id, session, status and ``created_at`` (from the returned ``RunRecord``).

Run creation uses a millisecond clock (``eventlog.store.plans.runs``'s ``datetime`` is patched),
so many runs share a ``created_at`` and the tie order - run id bytes ascending - is really
exercised.

Every combination of status (any, or each of the 9) x session (any, or 3 chosen ones, one of
which has no failed or cancelled runs) is checked with five pages, plus ``count_runs``. The
store is built once for the module (about 40 s on 2 cores); this file is deliberately not
marked slow or skipped: ``make test`` runs it.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from types import SimpleNamespace
from uuid import UUID

import pytest

import eventlog.store.plans.runs
from eventlog import RunStatus, RunStore
from eventlog.events import ModelStarted, RunCancelled, RunCompleted, RunFailed, RunStarted

N_RUNS = 100_000
N_SESSIONS = 20
SEED = 1234
# Session slots checked: None (any session), two ordinary sessions, and the sparse one.
SLOTS = ("any", "first", "second", "sparse")
STATUS_FILTERS: list[RunStatus | None] = [None, *RunStatus]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class ModelRun:
    run_id: UUID
    session_id: UUID
    status: RunStatus
    created_at: datetime


@dataclass
class World:
    store: RunStore
    runs: dict[UUID, ModelRun]  # live runs only
    slots: dict[str, UUID | None]

    def matching(self, status: RunStatus | None, session_id: UUID | None) -> list[ModelRun]:
        """The model's answer: matching runs, newest first, ties by run id bytes ascending."""
        found = [
            r
            for r in self.runs.values()
            if (status is None or r.status == status)
            and (session_id is None or r.session_id == session_id)
        ]
        return sorted(found, key=lambda r: (-_micros(r.created_at), r.run_id.bytes))


def _micros(ts: datetime) -> int:
    return (ts - _EPOCH) // timedelta(microseconds=1)


def _millisecond_now(tz: tzinfo | None = None) -> datetime:
    now = datetime.now(tz)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _build(store: RunStore) -> World:
    rng = random.Random(SEED)
    sessions = [store.create_session(title=f"s{i}").id for i in range(N_SESSIONS)]
    sparse = sessions[2]
    runs: dict[UUID, ModelRun] = {}
    order: list[UUID] = []
    with pytest.MonkeyPatch.context() as patch:
        # A coarse clock for run creation: runs created in the same millisecond tie.
        patch.setattr(eventlog.store.plans.runs, "datetime", SimpleNamespace(now=_millisecond_now))
        for _ in range(N_RUNS):
            record = store.create_run(rng.choice(sessions), provider="p", model="m")
            assert record.status == RunStatus.PENDING
            runs[record.id] = ModelRun(
                record.id, record.session_id, record.status, record.created_at
            )
            order.append(record.id)

    shuffled = list(order)
    rng.shuffle(shuffled)
    cuts = iter(shuffled)

    def take(share: float) -> list[ModelRun]:
        return [runs[next(cuts)] for _ in range(int(N_RUNS * share))]

    for run in take(0.20):
        record = store.update_run_status(run.run_id, "calling_model")
        assert record.status == RunStatus.CALLING_MODEL
        run.status = RunStatus.CALLING_MODEL
    for run in take(0.02):
        store.update_run_status(run.run_id, RunStatus.WAITING_FOR_TOOLS)
        run.status = RunStatus.WAITING_FOR_TOOLS
    for run in take(0.01):
        store.append_event(run.run_id, RunStarted(run.session_id, "p", "m"))
        run.status = RunStatus.SESSION_LOADED
    for i, run in enumerate(take(0.10)):
        if i % 2:  # half of them go through calling_model first
            store.append_event(run.run_id, ModelStarted("p", "m", 1))
        store.append_event(run.run_id, RunCompleted("stop", 1))
        run.status = RunStatus.COMPLETED
    for run in take(0.05):
        if run.session_id != sparse:  # the sparse session keeps no failed runs
            store.append_events(run.run_id, [ModelStarted("p", "m", 1), RunFailed("boom")])
            run.status = RunStatus.FAILED
    for i, run in enumerate(take(0.05)):
        if run.session_id != sparse:  # ... and no cancelled ones
            if i % 2:
                store.append_event(run.run_id, RunCancelled())
            else:
                store.update_run_status(run.run_id, RunStatus.CANCELLED)
            run.status = RunStatus.CANCELLED
    # 2% deleted, drawn from every status.
    for rid in rng.sample(order, int(N_RUNS * 0.02)):
        assert store.delete_run(rid)
        del runs[rid]
    store.flush()
    slots: dict[str, UUID | None] = {
        "any": None,
        "first": sessions[0],
        "second": sessions[1],
        "sparse": sparse,
    }
    return World(store, runs, slots)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    path = tmp_path_factory.mktemp("listing-scale")
    try:
        with RunStore.open(path, durability="fast") as store:
            yield _build(store)
    finally:
        shutil.rmtree(path, ignore_errors=True)  # ~170 MB: do not keep it in pytest's basetemp


def test_model_is_what_the_scenario_needs(world: World) -> None:
    assert len(world.runs) == N_RUNS - int(N_RUNS * 0.02)
    by_status = {s: sum(r.status == s for r in world.runs.values()) for s in RunStatus}
    for status in (RunStatus.PENDING, RunStatus.CALLING_MODEL, RunStatus.COMPLETED):
        assert by_status[status] > 1_000
    assert by_status[RunStatus.BUILDING_CONTEXT] == 0  # a status no run has
    sparse = world.slots["sparse"]
    in_sparse = {r.status for r in world.runs.values() if r.session_id == sparse}
    assert RunStatus.FAILED not in in_sparse
    assert RunStatus.CANCELLED not in in_sparse
    # The millisecond clock produced many ties, so the tie order is really checked (if the
    # patch stopped reaching eventlog.store.plans.runs, this fails instead of the check going
    # vacuous).
    stamps = [r.created_at for r in world.runs.values()]
    assert all(ts.microsecond % 1000 == 0 for ts in stamps)
    assert len(stamps) - len(set(stamps)) > 10_000


@pytest.mark.parametrize("slot", SLOTS)
@pytest.mark.parametrize("status", STATUS_FILTERS, ids=lambda s: "any" if s is None else str(s))
def test_pages_and_counts(world: World, status: RunStatus | None, slot: str) -> None:
    session_id = world.slots[slot]
    want = world.matching(status, session_id)
    count = len(want)
    assert world.store.count_runs(status, session_id) == count
    pages = [(100, 0), (100, 250), (7, 13), (0, 0), (50, max(count - 10, 0))]
    for limit, offset in pages:
        got = world.store.list_runs_filtered(
            status=status, session_id=session_id, limit=limit, offset=offset
        )
        expected = [r.run_id for r in want[offset : offset + limit]]
        assert [r.id for r in got] == expected, (limit, offset)
        for record in got:
            model = world.runs[record.id]
            assert record.status == model.status
            assert record.session_id == model.session_id
            assert record.created_at == model.created_at
            if status is not None:
                assert record.status == status
            if session_id is not None:
                assert record.session_id == session_id


def test_sparse_session_has_empty_filters(world: World) -> None:
    sparse = world.slots["sparse"]
    for status in (RunStatus.FAILED, RunStatus.CANCELLED):
        assert world.store.count_runs(status, sparse) == 0
        assert world.store.list_runs_filtered(status=status, session_id=sparse) == []
        assert world.store.count_runs(status) > 0  # other sessions do have them


@pytest.mark.parametrize("slot", SLOTS[1:])
def test_list_runs_in_created_order(world: World, slot: str) -> None:
    session_id = world.slots[slot]
    assert session_id is not None
    want = sorted(
        (r for r in world.runs.values() if r.session_id == session_id),
        key=lambda r: (r.created_at, r.run_id.bytes),
    )
    got = world.store.list_runs(session_id)
    assert [r.id for r in got] == [r.run_id for r in want]
    assert [r.status for r in got] == [r.status for r in want]
