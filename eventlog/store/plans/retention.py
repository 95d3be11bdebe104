"""The plan of ``store.prune``: a policy, a selection in one snapshot, then atomic batches.

A prune runs in two steps. The **selection** reads one snapshot and lists the runs (and the
streams of the kinds the policy names) that the policy would remove, counting what it keeps
and why. Then each **batch** of at most ``batch_size`` of them is one write transaction
through the group committer: inside it every candidate is checked again (a run appended to,
moved out of a terminal status, made newer than the cutoff or read by a fork since the
selection stays), then deleted exactly as ``delete_run`` deletes it - events, positions,
idempotency keys, every view's entries - and the positions it emptied are recorded in the
pruned-ranges record (:mod:`eventlog.engine.retention`). A batch commits whole or not at
all, so after every batch (and after a crash in the middle of one) each run is either fully
there or fully gone and every view agrees with the log.

Never removed: a run not in a terminal status (``statuses`` may only name terminal ones), a
run whose prefix a fork reads, a LangGraph thread's latest checkpoint per namespace with its
writes and channel values (keep-latest: its older checkpoints leave the views), a session,
and anything of a kind the policy does not name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

from eventlog.engine.appends import AppendRequest
from eventlog.engine.core import Engine
from eventlog.engine.lineage import forks_of
from eventlog.engine.projectors import ProjectionTxn, reader
from eventlog.engine.retention import record_pruned
from eventlog.model.records import RunRecord
from eventlog.model.retention import PruneReport
from eventlog.model.state import RunState
from eventlog.model.status import RunStatus
from eventlog.storage.codec import RUN_STATE
from eventlog.storage.keys import SEQ_END, pack_u64
from eventlog.storage.kv import KVTxn
from projections.langgraph_checkpoints import (
    THREAD_KIND,
    TOMBSTONE_KIND,
    CheckpointRef,
    CheckpointsQuery,
    CheckpointsRemoved,
)

__all__ = ["PruneJob", "PrunePolicy", "RetentionPlans", "Selection", "make_policy"]

#: the kind name that stands for runs in ``kinds``
RUN_KIND = "run"
DEFAULT_BATCH = 100


@dataclass(frozen=True)
class PrunePolicy:
    """A checked prune policy (see ``RunStore.prune``)."""

    cutoff: datetime | None
    statuses: frozenset[RunStatus]
    keep_last: int | None
    runs: bool
    stream_kinds: tuple[str, ...]


@dataclass
class Selection:
    """What one snapshot says a policy would remove: the report and the candidates."""

    report: PruneReport
    runs: list[UUID] = field(default_factory=list)
    streams: list[UUID] = field(default_factory=list)
    threads: list[UUID] = field(default_factory=list)


def _forks_reading(txn: KVTxn, stream_id: UUID) -> list[UUID]:
    """The forks that still read ``stream_id``'s prefix (they keep it): the lineage index."""
    return [fork_id for fork_id, _ in forks_of(txn, stream_id)]


def _check_cutoff(older_than: object, now: datetime) -> datetime | None:
    if older_than is None:
        return None
    if isinstance(older_than, timedelta):
        if older_than < timedelta(0):
            raise ValueError(f"prune: older_than must not be negative, got {older_than}")
        return now - older_than
    if isinstance(older_than, datetime):
        if older_than.tzinfo is None:
            raise ValueError(
                f"prune: older_than {older_than.isoformat()} has no time zone; give an aware "
                "datetime (datetime(..., tzinfo=UTC)) or a timedelta"
            )
        return older_than.astimezone(UTC)
    raise TypeError(
        f"prune: older_than must be a timedelta or an aware datetime, got {older_than!r:.80}"
    )


def _check_statuses(statuses: Iterable[RunStatus | str]) -> frozenset[RunStatus]:
    if isinstance(statuses, str):
        raise TypeError("prune: statuses must be a collection of statuses, not one str")
    out: set[RunStatus] = set()
    for s in statuses:
        try:
            status = RunStatus(s)
        except ValueError:
            raise ValueError(
                f"prune: unknown status {s!r}; use one of completed, failed, cancelled"
            ) from None
        if not status.is_terminal:
            raise ValueError(
                f"prune: status {status.value!r} is not terminal and a running run is never "
                "pruned; name only completed, failed or cancelled"
            )
        out.add(status)
    if not out:
        raise ValueError("prune: statuses is empty; name at least one terminal status")
    return frozenset(out)


def _check_kinds(kinds: Iterable[str] | None) -> tuple[bool, tuple[str, ...]]:
    if kinds is None:
        return True, ()
    if isinstance(kinds, str):
        raise TypeError("prune: kinds must be a collection of kind names, not one str")
    names = [str(k) for k in kinds]
    if not names:
        raise ValueError("prune: kinds is empty; name 'run' and/or stream kinds")
    for name in names:
        if name == "session":
            raise ValueError("prune: sessions are not pruned (delete_session deletes one)")
        if name == TOMBSTONE_KIND:
            raise ValueError(
                f"prune: {TOMBSTONE_KIND!r} records deleted LangGraph threads and is never pruned"
            )
    others = tuple(sorted({n for n in names if n != RUN_KIND}))
    return RUN_KIND in names, others


def make_policy(
    older_than: timedelta | datetime | None,
    statuses: Iterable[RunStatus | str],
    keep_last_per_session: int | None,
    kinds: Iterable[str] | None,
    now: datetime | None = None,
) -> PrunePolicy:
    """Check a prune's arguments (``ValueError``/``TypeError`` at once, nothing read)."""
    when = datetime.now(UTC) if now is None else now
    keep = keep_last_per_session
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 0):
        raise ValueError(f"prune: keep_last_per_session must be an int >= 0, got {keep!r}")
    runs, others = _check_kinds(kinds)
    return PrunePolicy(
        _check_cutoff(older_than, when), _check_statuses(statuses), keep, runs, others
    )


def _pages(records: Iterable[RunRecord], size: int = 500) -> Iterable[list[RunRecord]]:
    """``records`` in lists of ``size`` (a page's states are read in one query)."""
    page: list[RunRecord] = []
    for record in records:
        page.append(record)
        if len(page) >= size:
            yield page
            page = []
    if page:
        yield page


def _stored_size(txn: KVTxn, number: bytes) -> tuple[int, int]:
    """``(events, bytes)`` of stream ``number``."""
    n = size = 0
    for key, value in txn.scan("events", number + pack_u64(1), number + SEQ_END):
        n += 1
        size += len(key) + len(value)
    return n, size


@dataclass
class _RunCheck:
    """The per-transaction reads a run's check needs (sessions' newest runs, cached)."""

    engine: Engine
    txn: KVTxn
    policy: PrunePolicy
    newest: dict[UUID, set[UUID]] = field(default_factory=dict)

    def prefetch(self, ids: list[UUID], *, runs: bool) -> None:
        """Tell the backend which states (and run records) come next: one query on PostgreSQL."""
        keys = [i.bytes for i in ids]
        if runs:
            self.txn.prefetch("runs", keys)
        ProjectionTxn(self.txn, "run_state").prefetch(keys)

    def state(self, rid: UUID) -> RunState | None:
        raw = reader(self.txn, "run_state").get(rid.bytes)
        return None if raw is None else RUN_STATE.decode(raw, "run", rid, "state")

    def kept_newest(self, session_id: UUID) -> set[UUID]:
        found = self.newest.get(session_id)
        if found is None:
            records = self.engine.records
            ids = records.session_run_ids(self.txn, session_id)
            self.txn.prefetch("runs", [i.bytes for i in ids])
            found_runs = [r for r in (records.get_run(self.txn, i) for i in ids) if r]
            # newest first; runs created in the same microsecond: by stream number (created order)
            number = self.engine.index.stream_number
            found_runs.sort(
                key=lambda r: (r.created_at, number(self.txn, r.id) or b""), reverse=True
            )
            found = {r.id for r in found_runs[: self.policy.keep_last or 0]}
            self.newest[session_id] = found
        return found

    def why_kept(self, record: RunRecord, state: RunState | None) -> str | None:
        """None when the run may go, else the ``kept_*`` counter that keeps it."""
        policy = self.policy
        status = RunStatus.PENDING if state is None else state.status
        if status not in policy.statuses:
            return "kept_non_terminal" if not status.is_terminal else "skip"
        updated = (
            record.updated_at if state is None or state.updated_at is None else state.updated_at
        )
        if policy.cutoff is not None and updated >= policy.cutoff:
            return "kept_recent"
        if policy.keep_last and record.id in self.kept_newest(record.session_id):
            return "kept_latest_per_session"
        if _forks_reading(self.txn, record.id):
            return "kept_forked"
        return None


def _count(report: PruneReport, reason: str) -> None:
    if reason != "skip":
        setattr(report, reason, getattr(report, reason) + 1)


def _older_checkpoints(txn: KVTxn, stream: UUID) -> list[CheckpointRef]:
    """A thread's checkpoints but the newest of each namespace (keep-latest)."""
    seen: set[str] = set()
    doomed: list[CheckpointRef] = []
    for ref in CheckpointsQuery(reader(txn, "langgraph")).refs(stream):
        if ref.checkpoint_ns in seen:
            doomed.append(ref)
        else:
            seen.add(ref.checkpoint_ns)
    return doomed


class RetentionPlans:
    """The selection (a read plan) and the batches (write plans) of ``store.prune``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def job(
        self,
        older_than: timedelta | datetime | None,
        statuses: Iterable[RunStatus | str],
        keep_last_per_session: int | None,
        kinds: Iterable[str] | None,
        dry_run: bool,
        batch_size: int,
        progress: Callable[[int, int], None] | None,
    ) -> PruneJob:
        """A checked prune (arguments raise here, before anything is read)."""
        policy = make_policy(older_than, statuses, keep_last_per_session, kinds)
        return PruneJob(self, policy, dry_run, batch_size, progress)

    def _stream_is_old(self, txn: KVTxn, policy: PrunePolicy, sid: UUID) -> bool | None:
        """True/False: older than the cutoff or not; None: the stream is gone."""
        record = self.engine.streams.get_stream(txn, sid)
        if record is None:
            return None
        return policy.cutoff is None or record.updated_at < policy.cutoff

    def select(self, policy: PrunePolicy, dry_run: bool) -> Callable[[KVTxn], Selection]:
        """The read plan listing the candidates (and, for a dry run, their sizes)."""
        engine = self.engine

        def work(txn: KVTxn) -> Selection:
            sel = Selection(PruneReport(dry_run=dry_run))
            report = sel.report
            if policy.runs:
                check = _RunCheck(engine, txn, policy)
                for page in _pages(engine.records.iter_runs(txn)):
                    check.prefetch([r.id for r in page], runs=False)
                    for record in page:
                        reason = check.why_kept(record, check.state(record.id))
                        if reason is not None:
                            _count(report, reason)
                            continue
                        sel.runs.append(record.id)
            for kind in policy.stream_kinds:
                for key, sid_raw in txn.scan(
                    "stream_kinds", kind.encode() + b"\x00", kind.encode() + b"\x01"
                ):
                    del key
                    sid = UUID(bytes=sid_raw)
                    old = self._stream_is_old(txn, policy, sid)
                    if old is None:
                        continue
                    if not old:
                        report.kept_recent += 1
                    elif kind == THREAD_KIND:
                        doomed = _older_checkpoints(txn, sid)
                        report.kept_latest_checkpoint += 1
                        if doomed:
                            sel.threads.append(sid)
                            if dry_run:
                                report.checkpoints += len(doomed)
                    elif _forks_reading(txn, sid):
                        report.kept_forked += 1
                    else:
                        sel.streams.append(sid)
            if dry_run:
                for rid in sel.runs + sel.streams:
                    number = engine.index.stream_number(txn, rid)
                    if number is not None:
                        n, size = _stored_size(txn, number)
                        report.events += n
                        report.bytes += size
                report.runs, report.run_ids = len(sel.runs), list(sel.runs)
                report.streams, report.stream_ids = len(sel.streams), list(sel.streams)
            return sel

        return work

    def batch(
        self,
        policy: PrunePolicy,
        runs: Sequence[UUID],
        streams: Sequence[UUID] = (),
        threads: Sequence[UUID] = (),
    ) -> Callable[[KVTxn], PruneReport]:
        """One batch's write plan: re-check each candidate, delete it, record the ranges."""
        engine = self.engine

        def work(txn: KVTxn) -> PruneReport:
            part = PruneReport(dry_run=False, batches=1)
            removed: list[tuple[int, int]] = []
            check = _RunCheck(engine, txn, policy)
            check.prefetch(list(runs), runs=True)
            for rid in runs:
                record = engine.records.get_run(txn, rid)
                if record is None:
                    continue  # deleted meanwhile: nothing to do
                reason = check.why_kept(record, check.state(rid))
                if reason is not None:
                    part.kept_changed += 1
                    continue
                engine.records.delete_run(txn, rid, removed)
                part.runs += 1
                part.run_ids.append(rid)
            for sid in streams:
                old = self._stream_is_old(txn, policy, sid)
                if old is None:
                    continue
                if not old or _forks_reading(txn, sid):
                    part.kept_changed += 1
                    continue
                engine.streams.delete_stream(txn, sid, removed)
                part.streams += 1
                part.stream_ids.append(sid)
            now = datetime.now(UTC)
            for sid in threads:
                doomed = _older_checkpoints(txn, sid)
                if doomed and self._stream_is_old(txn, policy, sid):
                    event = CheckpointsRemoved(doomed, "prune")
                    engine.appends.append(txn, AppendRequest(sid, [event], kind=THREAD_KIND), now)
                    part.checkpoints += len(doomed)
            part.events = len(removed)
            part.bytes = sum(size for _, size in removed)
            record_pruned(txn, (position for position, _ in removed))
            return part

        return work


def check_batch_size(size: object) -> int:
    """``batch_size`` checked: an int >= 1."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"prune: batch_size must be an int >= 1, got {size!r}")
    return size


class PruneJob:
    """One ``prune`` call: its selection plan, then its batches; the facades drive it.

    ``sel = read(job.select)``; then for each plan of ``job.plans(sel)``:
    ``job.done(write(plan))``; ``job.report`` is the result.
    """

    def __init__(
        self,
        plans: RetentionPlans,
        policy: PrunePolicy,
        dry_run: bool,
        batch_size: int,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        self.policy = policy
        self.dry_run = bool(dry_run)
        self.size = check_batch_size(batch_size)
        self.progress = progress
        self.select = plans.select(policy, self.dry_run)
        self._plans = plans
        self.report = PruneReport(dry_run=self.dry_run)
        self._done = self._total = self._next = 0
        self._sizes: list[int] = []

    def plans(self, sel: Selection) -> list[Callable[[KVTxn], PruneReport]]:
        """The batches' write plans (none for a dry run); reports the selection's progress."""
        self.report = sel.report
        cut = [] if self.dry_run else _batches(sel, self.size)
        self._total = sum(len(r) + len(s) + len(t) for r, s, t in cut)
        self._sizes = [len(r) + len(s) + len(t) for r, s, t in cut]
        if self.progress is not None:
            self.progress(0, self._total)
        return [self._plans.batch(self.policy, r, s, t) for r, s, t in cut]

    def done(self, part: PruneReport) -> None:
        """Count a committed batch (and report progress)."""
        _merge(self.report, part)
        self._done += self._sizes[self._next]
        self._next += 1
        if self.progress is not None:
            self.progress(self._done, self._total)


def _merge(report: PruneReport, part: PruneReport) -> None:
    """Add a batch's counts and ids to the whole prune's report."""
    for name in ("runs", "streams", "events", "bytes", "checkpoints", "batches", "kept_changed"):
        setattr(report, name, getattr(report, name) + getattr(part, name))
    report.run_ids.extend(part.run_ids)
    report.stream_ids.extend(part.stream_ids)


def _batches(sel: Selection, size: int) -> list[tuple[list[UUID], list[UUID], list[UUID]]]:
    """The selection cut in batches of at most ``size`` runs/streams (threads in the last)."""
    out: list[tuple[list[UUID], list[UUID], list[UUID]]] = []
    for i in range(0, len(sel.runs), size):
        out.append((sel.runs[i : i + size], [], []))
    for i in range(0, len(sel.streams), size):
        out.append(([], sel.streams[i : i + size], []))
    for i in range(0, len(sel.threads), size):
        out.append(([], [], sel.threads[i : i + size]))
    return out
