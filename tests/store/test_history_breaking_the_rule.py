"""A stored history that breaks the lifecycle rule is reported, never a crash.

An append can never store an event that moves a terminal run (the model's rule aborts it),
but a store can still hold one: written by hand, by an older version, or read differently
after an upcaster changed. Rebuilding the views (by hand, or on open when a view is stale)
then completes - the run-state view leaves the event out, the run stays terminal - and
``verify()`` names the event as ``invalid_transition``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from uuid import UUID

import pytest
from pg_support import url_for

from eventlog import InvalidTransition, RunStatus, RunStore
from eventlog.engine.projectors import ProjectorMeta, ProjectorSet
from eventlog.events import ModelStarted, RunCompleted, RunStatusChanged, TextDelta
from eventlog.storage.codec import encode_event
from eventlog.storage.kv import KVTxn

Opener = Callable[[Path], RunStore]


def _lmdb(path: Path) -> RunStore:
    return RunStore.open(path)


def _postgres(path: Path) -> RunStore:
    return RunStore.open(url_for(path))


@pytest.fixture(params=["lmdb", "postgres"])
def opener(request: pytest.FixtureRequest) -> Opener:
    if request.param == "postgres":
        request.getfixturevalue("pg_schemas")  # a real server, the schema dropped after
        return _postgres
    return _lmdb


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store"


def _completed_then_moved(store: RunStore) -> tuple[UUID, int]:
    """A completed run whose stored event 3 moves it back to ``persisting``: (run, position)."""
    run = store.create_run(store.ensure_session(), provider="p", model="m")
    records = store.append_events(
        run.id, [ModelStarted("p", "m", 1), RunCompleted("stop", 1), TextDelta("late")]
    )
    late = records[2]
    moved = encode_event(
        RunStatusChanged(RunStatus.PERSISTING), late.position, late.recorded_at, None
    )
    core = store.core

    def tamper(txn: KVTxn) -> None:
        txn.put("events", core.engine.index.event_key(txn, run.id, 3), moved)

    core.backend.write(tamper)
    return run.id, late.position


def _invalid(store: RunStore) -> list[tuple[str, UUID | None, int | None, int | None, str | None]]:
    return [
        (p.kind, p.run_id, p.seq, p.position, p.projector)
        for p in store.verify()
        if p.kind == "invalid_transition"
    ]


@pytest.mark.parametrize("backend", ["memory", "lmdb"])
def test_verify_names_the_event_and_a_rebuild_completes(backend: str, store_path: Path) -> None:
    store = RunStore.in_memory() if backend == "memory" else RunStore.open(store_path)
    with store:
        run_id, position = _completed_then_moved(store)
        assert _invalid(store) == [("invalid_transition", run_id, 3, position, "run_state")]
        problem = next(p for p in store.verify() if p.kind == "invalid_transition")
        assert "completed -> persisting" in problem.detail
        assert problem.where == f"run {run_id} seq 3"

        store.rebuild_projections()  # no InvalidTransition: the run-state view skips seq 3
        state = store.get_run_state(run_id)
        assert state is not None
        assert (state.status, state.last_seq, state.event_count) == (RunStatus.COMPLETED, 2, 2)
        # the views now equal a fresh replay: what is left to report is the event itself
        assert {p.kind for p in store.verify()} == {"invalid_transition"}
        # and the run stays final for new appends
        with pytest.raises(InvalidTransition, match="terminal status 'completed'"):
            store.update_run_status(run_id, "pending")


def test_a_stale_run_state_view_is_rebuilt_on_open_over_such_a_history(
    opener: Opener, store_path: Path
) -> None:
    with opener(store_path) as store:
        run_id, position = _completed_then_moved(store)
        version = {s.name: s.version for s in store.projector_status()}["run_state"]
        store.core.backend.write(
            lambda txn: ProjectorSet.set_meta(txn, "run_state", ProjectorMeta(version - 1, 0, True))
        )
    with opener(store_path) as store:  # the open rebuilds the stale view: it must not raise
        status = {s.name: s for s in store.projector_status()}["run_state"]
        assert (status.version, status.ready) == (version, True)
        run = store.get_run(run_id)
        assert run is not None
        assert run.status == RunStatus.COMPLETED
        assert _invalid(store) == [("invalid_transition", run_id, 3, position, "run_state")]
