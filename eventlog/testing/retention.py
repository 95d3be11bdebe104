"""The contract of ``store.prune``: what goes, what stays, and readers that cross the gap.

Mixed into :class:`eventlog.testing.StoreContract`; every backend runs it. A prune removes
only terminal runs the policy names (a dry run reports the same ids and writes nothing),
leaves ``verify()`` clean and every remaining run's record, state, events and listing as they
were, checks each candidate again inside its batch's transaction, and records the removed
positions so that a subscription crossing them can tell.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from eventlog import RunStore
from eventlog.model.events import RunCompleted, RunFailed, TextDelta
from eventlog.model.records import RunRecord

__all__ = ["RetentionContract", "snapshot_of"]

_FUTURE = datetime(2999, 1, 1, tzinfo=UTC)


def snapshot_of(store: RunStore, run_ids: list[UUID]) -> dict[UUID, object]:
    """What a run looks like through the public API: record, state and events (None: gone)."""
    out: dict[UUID, object] = {}
    for rid in run_ids:
        record = store.get_run(rid)
        out[rid] = (
            None if record is None else (record, store.get_run_state(rid), store.list_events(rid))
        )
    return out


def _mixed(store: RunStore) -> tuple[list[RunRecord], list[RunRecord]]:
    """Six runs in two sessions: ``(terminal, running)``, three of each, with events."""
    sessions = [store.ensure_session(), store.ensure_session()]
    done: list[RunRecord] = []
    running: list[RunRecord] = []
    for i in range(6):
        run = store.create_run(sessions[i % 2], provider="p", model="m", client_request_id=f"r{i}")
        store.append_events(run.id, [TextDelta(f"t{i}"), TextDelta("é\x1b[31m")])
        if i % 2 == 0:
            store.append_event(run.id, RunCompleted("stop", 1) if i % 4 == 0 else RunFailed("boom"))
            done.append(run)
        else:
            running.append(run)
    return done, running


class RetentionContract:
    """``store.prune`` on any backend (see the module docstring)."""

    def test_prune_removes_only_terminal_runs_and_keeps_views_whole(self, store: RunStore) -> None:
        done, running = _mixed(store)
        kept = snapshot_of(store, [r.id for r in running])
        before = store.last_position()
        dry = store.prune(dry_run=True)
        assert sorted(dry.run_ids) == sorted(r.id for r in done)
        assert (dry.runs, dry.events, dry.kept_non_terminal) == (3, 9, 3)
        assert dry.bytes > 0
        assert dry.batches == 0
        assert all(store.get_run(r.id) is not None for r in done)  # nothing written
        report = store.prune()
        assert sorted(report.run_ids) == sorted(dry.run_ids)
        assert (report.runs, report.events, report.bytes) == (dry.runs, dry.events, dry.bytes)
        assert all(store.get_run(r.id) is None for r in done)
        assert snapshot_of(store, [r.id for r in running]) == kept
        assert store.verify() == []
        assert store.count_runs() == 3
        assert store.count_runs(status="completed") == 0
        assert {r.id for r in store.list_runs_filtered()} == {r.id for r in running}
        assert store.last_position() == before  # positions are never reused or moved
        # a request id of a pruned run is free again; a repeated prune finds nothing
        assert store.prune().runs == 0

    def test_prune_policy_age_statuses_and_keep_last(self, store: RunStore) -> None:
        done, _ = _mixed(store)
        recent = store.prune(older_than=timedelta(days=1))
        assert (recent.runs, recent.kept_recent) == (0, 3)
        failed = store.prune(older_than=_FUTURE, statuses=["failed"], dry_run=True)
        assert failed.run_ids == [done[1].id]
        kept = store.prune(keep_last_per_session=2)
        # per session, the two newest runs stay: one terminal run each of two sessions goes
        assert kept.kept_latest_per_session == 2
        assert kept.runs == 1
        assert store.verify() == []

    def test_prune_batches_report_progress(self, store: RunStore) -> None:
        session = store.ensure_session()
        ids = []
        for _ in range(5):
            run = store.create_run(session, provider="p", model="m")
            store.append_event(run.id, RunCompleted("stop", 1))
            ids.append(run.id)
        calls: list[tuple[int, int]] = []
        report = store.prune(batch_size=2, progress=lambda d, t: calls.append((d, t)))
        assert (report.runs, report.batches) == (5, 3)
        assert calls == [(0, 5), (2, 5), (4, 5), (5, 5)]
        assert store.verify() == []

    def test_prune_rechecks_each_run_inside_its_batch(self, store: RunStore) -> None:
        done, _ = _mixed(store)
        cutoff = datetime.now(UTC)  # every run's last activity is before it
        job = store.core.plans.retention.job(cutoff, ("completed", "failed"), None, None,
                                             False, 100, None)  # fmt: skip
        selection = store.core.backend.read(job.select)
        assert sorted(selection.runs) == sorted(r.id for r in done)
        # between the selection and the batch: one candidate is appended to (after the cutoff)
        store.append_event(done[0].id, TextDelta("late"))
        for plan in job.plans(selection):
            job.done(store.core.committer.submit(plan))
        assert job.report.kept_changed == 1
        assert done[0].id not in job.report.run_ids
        assert store.get_run(done[0].id) is not None
        assert store.list_events(done[0].id)[-1].type == "TextDelta"
        assert store.verify() == []

    def test_subscription_crossing_a_pruned_range_can_tell(self, store: RunStore) -> None:
        done, running = _mixed(store)
        before = {r.position: r for r in store.read_log()}
        report = store.prune()
        remaining = store.read_log()
        assert all(before[r.position] == r for r in remaining)  # positions never change
        sub = store.subscribe(timeout=0, batch_size=3)
        seen: list[tuple[int, int]] = []  # (position, ranges crossed before it)
        for record in sub:
            seen.append((record.position, len(sub.take_pruned())))
        assert [p for p, _ in seen] == [r.position for r in remaining]
        crossed = sub.pruned
        assert sum(r.count for r in crossed) == report.events
        gone = {p for p in before if p not in {r.position for r in remaining}}
        assert gone == {p for r in crossed for p in range(r.first, r.last + 1)} - {
            r.position for r in remaining
        }
        for position, n in seen:  # told before the first event after each range's start
            assert n == len([r for r in crossed if r.first < position]) - sum(
                m for p, m in seen if p < position
            )
        assert store.verify() == []
        del done, running

    def test_prune_streams_of_a_named_kind_only(self, store: RunStore) -> None:
        a = store.create_stream(kind="doc.temp")
        b = store.create_stream(kind="doc.keep")
        store.append_to_stream(a.id, [TextDelta("x")])
        store.append_to_stream(b.id, [TextDelta("y")])
        run = store.create_run(store.ensure_session(), provider="p", model="m")
        store.append_event(run.id, RunCompleted("stop", 1))
        report = store.prune(kinds=["doc.temp"])
        assert (report.streams, report.runs, report.stream_ids) == (1, 0, [a.id])
        assert store.get_stream(a.id) is None
        assert store.get_stream(b.id) is not None
        assert store.get_run(run.id) is not None
        assert store.verify() == []

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"statuses": ["calling_model"]},
            {"statuses": ["nope"]},
            {"statuses": "completed"},
            {"keep_last_per_session": -1},
            {"older_than": datetime(2020, 1, 1)},
            {"older_than": "30d"},
            {"kinds": ["session"]},
            {"batch_size": 0},
        ],
    )
    def test_prune_refuses_bad_policies(self, store: RunStore, kwargs: dict[str, object]) -> None:
        done, _ = _mixed(store)
        with pytest.raises((ValueError, TypeError)):
            store.prune(**kwargs)  # type: ignore[arg-type]
        assert all(store.get_run(r.id) is not None for r in done)

    def test_prune_never_removes_a_prefix_a_fork_reads(self, store: RunStore) -> None:
        session = store.ensure_session()
        parent = store.create_run(session, provider="p", model="m")
        store.append_events(parent.id, [TextDelta("a"), TextDelta("b"), RunCompleted("stop", 1)])
        fork = store.fork_run(parent.id, 2)
        report = store.prune()
        assert parent.id not in report.run_ids
        assert report.kept_forked >= 1
        assert [e.seq for e in store.list_events(fork.id)] == [1, 2]
        assert store.verify() == []
