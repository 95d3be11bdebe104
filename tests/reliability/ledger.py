"""The side ledger of a writer, the model a driver builds from ledgers, and the checks.

A writer writes one JSON line per step with a single ``os.write`` on an ``O_APPEND`` file
descriptor (no Python buffering: a line is in the kernel once ``write`` returns, and a killed
process loses nothing the kernel has). Before each operation it writes an *intent* (the ids it
is about to use), after the call returns an *ack* (what the store returned). A killed writer
leaves at most one intent without an ack, and possibly a torn last line (ignored: it was not
acknowledged).

The driver folds ledgers into a :class:`Model` and, after each kill, :func:`check_store`
compares the reopened store with it. The one in-flight operation of a dead writer is then
*resolved* by what the store shows - all of it is there or none (a partial batch is a
violation) - and from then on it is held to the same standard as an acknowledged one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import uuid4

from eventlog import EventLogError, EventRecord, RunNotFound, RunStore
from eventlog.events import RunStatusChanged, TextDelta

__all__ = ["CheckReport", "Ledger", "Model", "check_store", "fingerprint"]

Entry = dict[str, Any]


class Ledger:
    """The writer's side: append-only JSON lines, one ``os.write`` each."""

    def __init__(self, path: str | Path) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def write(self, **entry: Any) -> None:
        os.write(self._fd, json.dumps(entry, separators=(",", ":")).encode() + b"\n")

    def close(self) -> None:
        os.close(self._fd)


def read_ledger(path: str | Path) -> Iterator[Entry]:
    """Complete lines of a ledger (a torn last line is skipped: it was never acknowledged)."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return
    for line in raw.split(b"\n"):
        if not line:
            continue
        try:
            yield json.loads(line)
        except ValueError:
            continue  # torn by the kill


def fingerprint(record: EventRecord) -> str:
    """How a ledger names a stored event: its event id, or the status it set."""
    if record.event_id is not None:
        return str(record.event_id)
    if isinstance(record.event, RunStatusChanged):
        return f"status:{record.event.status}"
    return f"other:{record.type}"


@dataclass
class RunModel:
    """What is known of one run: acknowledged events by seq, and their positions."""

    session: str
    events: dict[int, str] = field(default_factory=dict)
    positions: dict[int, int] = field(default_factory=dict)
    deleted: bool = False


@dataclass
class CheckReport:
    """What one check found."""

    violations: list[str] = field(default_factory=list)
    lost: int = 0  # acknowledged events missing from the store
    events_checked: int = 0
    runs_checked: int = 0
    partial_batches: int = 0
    resolved_present: int = 0  # in-flight operations found complete after the kill
    resolved_absent: int = 0  # in-flight operations found absent after the kill

    def merge(self, other: CheckReport) -> None:
        self.violations.extend(other.violations)
        for name in (
            "lost",
            "events_checked",
            "runs_checked",
            "partial_batches",
            "resolved_present",
            "resolved_absent",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Model:
    """Everything the ledgers acknowledged (and resolved), against which a store is checked."""

    sessions: dict[str, bool] = field(default_factory=dict)  # id -> deleted
    runs: dict[str, RunModel] = field(default_factory=dict)
    deleted_positions: set[int] = field(default_factory=set)
    pending: list[Entry] = field(default_factory=list)  # intents of dead writers, unresolved
    acked_events: int = 0
    acked_ops: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # unexpected errors writers reported
    probe_run: str | None = None

    # -- folding ledgers -----------------------------------------------------------------
    def apply_ledger(self, path: str | Path) -> None:
        """Fold a finished writer's ledger; its last unacknowledged intent becomes pending."""
        intent: Entry | None = None
        for entry in read_ledger(path):
            kind = entry["k"]
            if kind == "i":
                intent = entry
            elif kind == "a":
                self._apply_ack(entry)
                intent = None
            elif kind == "err":
                self.errors.append(f"{path}: {entry['error']}")
        if intent is not None:
            self.pending.append(intent)

    def _apply_ack(self, entry: Entry) -> None:
        op = entry["op"]
        self.acked_ops[op] = self.acked_ops.get(op, 0) + 1
        if op == "session":
            self.sessions[entry["id"]] = False
        elif op == "create":
            self.runs[entry["run"]] = RunModel(entry["session"])
        elif op == "append":
            for run, seq, position, eid in entry["events"]:
                model = self.runs[run]
                model.events[seq] = eid
                model.positions[seq] = position
                self.acked_events += 1
        elif op == "status":
            model = self.runs[entry["run"]]
            model.events[entry["seq"]] = f"status:{entry['status']}"
            self.acked_events += 1
        elif op == "delete":
            self._mark_deleted(entry["run"], entry["positions"])

    def _mark_deleted(self, run: str, positions: list[int]) -> None:
        model = self.runs[run]
        model.deleted = True
        model.events.clear()
        model.positions.clear()
        self.deleted_positions.update(positions)

    # -- pruning (keeps the store, and each check, small) ---------------------------------
    def prune_session(self, store: RunStore, session: str) -> None:
        """Delete a session of a dead writer; remember the positions its events held."""
        for run, model in self.runs.items():
            if model.session == session and not model.deleted:
                positions = [r.position for r in store.list_events(run)]
                store.delete_run(run)
                self._mark_deleted(run, positions)
        store.delete_session(session)
        self.sessions[session] = True

    # -- the driver's own probe append ---------------------------------------------------
    def probe(self, store: RunStore, report: CheckReport) -> None:
        """The store accepts a new append, at the next seq and the next position."""
        if self.probe_run is None:
            sid = store.create_session(title="probe").id
            self.sessions[str(sid)] = False
            run = store.create_run(sid, provider="probe", model="probe")
            self.probe_run = str(run.id)
            self.runs[self.probe_run] = RunModel(str(sid))
        model = self.runs[self.probe_run]
        last = store.last_position()
        eid = uuid4()
        record = store.append_event(
            self.probe_run, TextDelta("probe"), expected_seq=len(model.events), event_id=eid
        )
        if (record.seq, record.position) != (len(model.events) + 1, last + 1):
            report.violations.append(
                f"probe append got seq {record.seq} position {record.position}, expected "
                f"{len(model.events) + 1} / {last + 1}"
            )
        model.events[record.seq] = str(eid)
        model.positions[record.seq] = record.position


def _resolve(model: Model, store: RunStore, report: CheckReport) -> None:
    """Decide each dead writer's in-flight operation from what the store shows."""
    for intent in model.pending:
        op = intent["op"]
        if op == "session":
            present = store.get_session(intent["id"]) is not None
            if present:
                model.sessions[intent["id"]] = False
        elif op == "create":
            present = store.get_run(intent["run"]) is not None
            if present:
                model.runs[intent["run"]] = RunModel(intent["session"])
        elif op == "append":
            found: list[EventRecord | None] = []
            for run, eid in intent["events"]:
                by_id = {str(r.event_id): r for r in _events_or_empty(store, run) if r.event_id}
                found.append(by_id.get(eid))
            present = all(r is not None for r in found)
            if any(r is not None for r in found) and not present:
                report.partial_batches += 1
                report.violations.append(f"a batch was partly written: {intent}")
            for rec in found:
                if rec is not None:
                    model.runs[str(rec.run_id)].events[rec.seq] = fingerprint(rec)
                    model.runs[str(rec.run_id)].positions[rec.seq] = rec.position
        elif op == "status":
            events = _events_or_empty(store, intent["run"])
            seq = intent["seq"]
            present = len(events) >= seq and fingerprint(events[seq - 1]) == (
                f"status:{intent['status']}"
            )
            if present:
                model.runs[intent["run"]].events[seq] = f"status:{intent['status']}"
        elif op == "delete":
            present = store.get_run(intent["run"]) is None
            if present:
                model._mark_deleted(intent["run"], intent["positions"])
        else:
            raise AssertionError(f"unknown intent {intent}")
        if present:
            report.resolved_present += 1
        else:
            report.resolved_absent += 1
    model.pending.clear()


def _events_or_empty(store: RunStore, run: str) -> list[EventRecord]:
    try:
        return store.list_events(run)
    except RunNotFound:
        return []


def check_store(store: RunStore, model: Model) -> CheckReport:
    """Compare a freshly reopened store with ``model``; resolve in-flight operations first."""
    report = CheckReport()
    report.violations.extend(model.errors)
    model.errors.clear()
    _resolve(model, store, report)
    for sid, deleted in model.sessions.items():
        if (store.get_session(sid) is None) != deleted:
            report.violations.append(f"session {sid}: deleted={deleted} but the store disagrees")
    live = 0
    for run, rm in model.runs.items():
        report.runs_checked += 1
        if rm.deleted:
            if store.get_run(run) is not None:
                report.violations.append(f"run {run} was deleted but is back")
            continue
        live += 1
        events = _events_or_empty(store, run)
        if store.get_run(run) is None:
            report.violations.append(f"run {run}: acknowledged, missing from the store")
        seqs = [r.seq for r in events]
        if seqs != list(range(1, len(seqs) + 1)):
            report.violations.append(f"run {run}: seq gap, stored seqs {seqs}")
        by_seq = {r.seq: r for r in events}
        for seq, fp in rm.events.items():
            report.events_checked += 1
            rec = by_seq.get(seq)
            if rec is None or fingerprint(rec) != fp:
                report.lost += 1
                report.violations.append(f"run {run} seq {seq}: acknowledged {fp}, lost")
            elif seq in rm.positions and rec.position != rm.positions[seq]:
                report.violations.append(f"run {run} seq {seq}: position moved")
        for seq in by_seq.keys() - rm.events.keys():
            report.violations.append(
                f"run {run} seq {seq}: {fingerprint(by_seq[seq])} is stored but was never "
                "acknowledged nor in flight"
            )
        state = store.get_run_state(run)
        if state is None or state.last_seq != len(events) or state.event_count != len(events):
            report.violations.append(f"run {run}: state {state} disagrees with its events")
    try:
        log = store.read_log()
    except EventLogError as exc:
        report.violations.append(f"read_log failed: {exc}")
        log = []
    positions = [r.position for r in log]
    last = store.last_position()
    if positions != sorted(set(positions)):
        report.violations.append("read_log is not in strictly increasing position order")
    known = {r for r, m in model.runs.items() if not m.deleted}
    strays = {str(r.run_id) for r in log} - known - set(model.sessions)
    if strays:
        report.violations.append(f"events of runs no ledger created: {sorted(strays)[:5]}")
    reused = [p for p in positions if p in model.deleted_positions]
    if reused:
        report.violations.append(f"positions of deleted events reused: {reused[:5]}")
    if len(positions) + len(model.deleted_positions) != last:
        report.violations.append(
            f"positions are not dense: {len(positions)} stored + "
            f"{len(model.deleted_positions)} deleted != last position {last}"
        )
    if store.count_runs() != live:
        report.violations.append(f"count_runs() = {store.count_runs()}, expected {live}")
    problems = store.verify()
    report.violations.extend(f"verify: {p.kind} {p.where}: {p.detail}" for p in problems)
    model.probe(store, report)
    return report
