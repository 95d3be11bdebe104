"""Runs and sessions as the facades return them: the record with what the views add.

A run record is stored as created (status ``pending``); its current status and update time
come from the run-state view. A session's ``updated_at`` is its last activity, from the
session listing. Every plan that returns runs or sessions reads them through here.
"""

from __future__ import annotations

from uuid import UUID

import msgspec

from eventlog.engine.core import Engine
from eventlog.engine.projectors import ProjectionTxn, reader
from eventlog.model.records import RunRecord, Session
from eventlog.storage.kv import KVTxn
from projections.run_state import RunStateQuery, listed_states
from projections.session_listing import SessionListingQuery
from projections.status_index import listed_page

__all__ = ["listed_runs", "prefetch_runs", "run_with_status", "session_with_activity"]


def run_with_status(engine: Engine, txn: KVTxn, rid: UUID) -> RunRecord | None:
    """The run record with its current status and update time (None: no such run)."""
    record = engine.records.get_run(txn, rid)
    if record is None:
        return None
    state = RunStateQuery(reader(txn, "run_state")).get(rid)
    if state is None:
        return record
    return RunRecord(
        record.id,
        record.session_id,
        state.status,
        record.provider,
        record.model,
        record.metadata,
        record.client_request_id,
        record.created_at,
        state.updated_at or record.updated_at,
        record.parent_run_id,
        record.fork_seq,
    )


def session_with_activity(engine: Engine, txn: KVTxn, sid: UUID) -> Session | None:
    """The session record with ``updated_at`` = its last activity (None: no such session)."""
    session = engine.records.get_session(txn, sid)
    if session is None:
        return None
    updated = SessionListingQuery(reader(txn, "session_listing")).updated_at(sid)
    if updated is None or updated <= session.updated_at:
        return session
    return Session(
        session.id, session.title, session.model, session.metadata, session.created_at, updated
    )


_PAGE = msgspec.msgpack.Decoder(list[RunRecord])


def listed_runs(engine: Engine, txn: KVTxn, entries: list[tuple[bytes, bytes]]) -> list[RunRecord]:
    """A listing page's runs from the status index's entries ``(run id, listed record)``.

    The covering index holds each run's record but its status and update time, which come
    from the run-state view: one ``get`` per run, and the page decodes as ``list[RunRecord]``
    in one msgspec call. Entries of another layout (an index not yet rebuilt), or states that
    cannot say, take the run-by-run path.
    """
    keys = [rid for rid, _ in entries]
    if not keys:
        return []
    states = ProjectionTxn(txn, "run_state")
    states.prefetch(keys)
    fields = listed_states(states.get_many(keys))
    blob = None if fields is None else listed_page([v for _, v in entries], fields)
    if blob is not None:
        try:
            return _PAGE.decode(blob)
        except (msgspec.DecodeError, msgspec.ValidationError):
            pass  # read run by run: a damaged record is then reported by name
    ids = [UUID(bytes=k) for k in keys]
    prefetch_runs(txn, ids)
    return [r for r in (run_with_status(engine, txn, i) for i in ids) if r is not None]


def prefetch_runs(txn: KVTxn, ids: list[UUID]) -> None:
    """Tell the backend which run records and states a listing is about to read.

    On PostgreSQL that is one query per table instead of two round trips per run.
    """
    keys = [i.bytes for i in ids]
    txn.prefetch("runs", keys)
    ProjectionTxn(txn, "run_state").prefetch(keys)
