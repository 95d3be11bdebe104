"""``store.verify()``: refold everything from the log and compare with every stored view.

It reads one consistent snapshot and returns a list of :class:`Problem` (empty when the store
is consistent): seq gaps, undecodable records, broken position index entries, orphan streams,
stored events that break the lifecycle rule, projector views that differ from a fresh replay
into scratch space, stale projectors.
"""

from __future__ import annotations

from functools import partial
from uuid import UUID

import msgspec

from eventlog.engine.core import Engine
from eventlog.engine.lineage import fork_head
from eventlog.engine.projectors import ProjectionTxn, ScratchTx, is_async
from eventlog.engine.retention import range_faults
from eventlog.errors import EventLogError, InvalidTransition, StoreError
from eventlog.model.events import RawEvent
from eventlog.model.records import EventRecord
from eventlog.storage.codec import decode_event, encode_raw_payload, why_raw
from eventlog.storage.keys import unpack_u64
from eventlog.storage.kv import KVTxn
from eventlog.tools.lineage_check import check_lineage

__all__ = ["Problem", "verify"]

MAX_PER_VIEW = 50


class Problem(msgspec.Struct, frozen=True):
    """One inconsistency, naming where it is.

    ``kind`` is one of ``seq_gap``, ``undecodable``, ``dangling_position``,
    ``position_mismatch``, ``unindexed_event``, ``orphan_stream``, ``stream_index``,
    ``view_mismatch``, ``projector_stale``, ``projector_failed`` (an async projector stopped
    on an error), ``upcast_failed`` (a stored event of a registered type reads as raw data:
    an upcaster is missing or failed, or the payload does not fit the class),
    ``invalid_transition`` (a stored event moves a terminal run to another status, which an
    append refuses: the views leave it out), ``pruned_range`` (the record of what ``prune``
    removed is damaged: see :mod:`eventlog.engine.retention`), ``lineage`` (a fork whose parent
    is missing or shorter than its fork seq, or a forks index that disagrees with the records).
    An async projector's view is compared with a replay up to its checkpoint.
    """

    kind: str
    where: str
    detail: str
    run_id: UUID | None = None
    seq: int | None = None
    position: int | None = None
    projector: str | None = None


def _check_streams(engine: Engine, txn: KVTxn, problems: list[Problem]) -> dict[int, bytes]:
    """Walk every stream: seq 1..n gap-free, every event decodes; return position -> key."""
    positions: dict[int, bytes] = {}
    current: bytes | None = None
    sid = UUID(int=0)
    expected = 1
    for key, value in txn.scan("events", b""):
        number, seq = key[:8], unpack_u64(key[8:])
        if number != current:
            current, expected = number, fork_head(txn, number) + 1
            owner = engine.index.stream_of(txn, number)
            if owner is None or all(
                txn.get(table, owner.bytes) is None
                for table in ("runs", "sessions", "stream_records")
            ):
                sid = owner or UUID(int=0)
                problems.append(
                    Problem(
                        "orphan_stream",
                        f"stream {unpack_u64(number)}",
                        "events of no run, session or stream",
                        owner,
                    )
                )
            else:
                sid = owner
        if seq != expected:
            problems.append(
                Problem(
                    "seq_gap",
                    f"run {sid} seq {expected}",
                    f"seq {expected}..{seq - 1} missing (next stored seq is {seq})",
                    sid,
                    expected,
                )
            )
        expected = seq + 1
        try:
            record = decode_event(sid, seq, value)
        except StoreError as exc:
            problems.append(Problem("undecodable", f"run {sid} seq {seq}", str(exc), sid, seq))
            continue
        positions[record.position] = key
        event = record.event
        if type(event) is RawEvent:
            reason = why_raw(event.type, event.version, encode_raw_payload(event))
            if reason is not None:
                problems.append(
                    Problem(
                        "upcast_failed",
                        f"run {sid} seq {seq}",
                        f"{event.type} v{event.version} reads as raw data: {reason}",
                        sid,
                        seq,
                        record.position,
                    )
                )
    _check_stream_index(engine, txn, problems)
    return positions


def _check_stream_index(engine: Engine, txn: KVTxn, problems: list[Problem]) -> None:
    """Every run, session and stream has a stream number, and the two stream tables agree."""
    for table in ("runs", "sessions", "stream_records"):
        for key, _ in txn.scan(table, b""):
            raw = txn.get("streams", key)
            owner = UUID(bytes=key)
            if raw is None or engine.index.stream_of(txn, raw[:8]) != owner:
                problems.append(
                    Problem(
                        "stream_index",
                        f"{table.removesuffix('_records').removesuffix('s')} {owner}",
                        "has no stream number, or its number points elsewhere; events "
                        "cannot be appended or listed - restore from a backup",
                        owner,
                    )
                )


def _owner(engine: Engine, txn: KVTxn, ref: bytes) -> UUID | None:
    return engine.index.stream_of(txn, ref[:8])


def _check_positions(
    engine: Engine, txn: KVTxn, positions: dict[int, bytes], problems: list[Problem]
) -> None:
    indexed: set[int] = set()
    for key, ref in txn.scan("positions", b""):
        position = unpack_u64(key)
        if not ref:
            continue  # tombstone of a deleted run's last event
        indexed.add(position)
        sid, seq = _owner(engine, txn, ref), unpack_u64(ref[8:])
        if txn.get("events", ref) is None:
            problems.append(
                Problem(
                    "dangling_position",
                    f"position {position}",
                    f"points at run {sid} seq {seq}, which does not exist",
                    sid,
                    seq,
                    position,
                )
            )
        elif positions.get(position, ref) != ref:
            problems.append(
                Problem(
                    "position_mismatch",
                    f"position {position}",
                    f"indexed as run {sid} seq {seq} but that event records another position",
                    sid,
                    seq,
                    position,
                )
            )
    for position, ref in positions.items():
        if position not in indexed:
            sid, seq = _owner(engine, txn, ref), unpack_u64(ref[8:])
            problems.append(
                Problem(
                    "unindexed_event",
                    f"run {sid} seq {seq}",
                    f"position {position} is missing from the position index",
                    sid,
                    seq,
                    position,
                )
            )


def _check_views(engine: Engine, txn: KVTxn, problems: list[Problem]) -> None:
    last = engine.index.last_position(txn)
    for projector in engine.projectors.all:
        name = projector.name
        meta = engine.projectors.meta(txn, name)
        if meta is None or meta.version != projector.version or not meta.ready:
            problems.append(
                Problem(
                    "projector_stale",
                    f"projector {name}",
                    "not built for this version; run store.rebuild_projections()",
                    projector=name,
                )
            )
        upto = None  # an async projector is compared up to its checkpoint (same snapshot)
        if is_async(projector):
            upto = 0 if meta is None else meta.checkpoint
            if meta is not None and meta.error is not None:
                problems.append(
                    Problem(
                        "projector_failed",
                        f"projector {name}",
                        f"stopped at position {meta.checkpoint}: {meta.error}; fix it and "
                        "reopen the store (or rebuild it)",
                        projector=name,
                    )
                )
        scratch = ScratchTx()
        try:
            engine.replay_into(
                txn,
                projector,
                scratch,
                None,
                last,
                on_bad=lambda *_: None,
                to_position=upto,
                on_refused=partial(_refused, problems),
            )
        except EventLogError as exc:
            problems.append(
                Problem(
                    "view_mismatch", f"projector {name}", f"replay failed: {exc}", projector=name
                )
            )
            continue
        live = dict(ProjectionTxn(txn, name).scan())
        fresh = scratch.data
        found = 0
        for key in sorted(live.keys() | fresh.keys()):
            if live.get(key) == fresh.get(key):
                continue
            if key not in fresh:
                detail = "the view has a key that a fresh replay does not produce"
            elif key not in live:
                detail = "the view lacks a key that a fresh replay produces"
            else:
                detail = "the view's value differs from a fresh replay"
            problems.append(
                Problem("view_mismatch", f"projector {name} key {key!r}", detail, projector=name)
            )
            found += 1
            if found >= MAX_PER_VIEW:
                break


def _refused(
    problems: list[Problem], name: str, record: EventRecord, exc: InvalidTransition
) -> None:
    problems.append(
        Problem(
            "invalid_transition",
            f"run {record.run_id} seq {record.seq}",
            f"{exc.current} -> {exc.requested}: a terminal run cannot move to another status; "
            f"projector {name} leaves this event out of its view (it was written by an older "
            "version, an upcaster or by hand) - delete the run or restore it from a backup",
            record.run_id,
            record.seq,
            record.position,
            name,
        )
    )


def verify(engine: Engine, txn: KVTxn) -> list[Problem]:
    """Check the store in ``txn``'s snapshot; see the module docstring."""
    problems: list[Problem] = []
    positions = _check_streams(engine, txn, problems)
    _check_positions(engine, txn, positions, problems)
    _check_views(engine, txn, problems)
    for where, detail, position in range_faults(txn):  # the retention record
        problems.append(Problem("pruned_range", where, detail, position=position))
    check_lineage(
        engine,
        txn,
        lambda where, sid, detail: problems.append(Problem("lineage", where, detail, sid)),
    )
    return problems
