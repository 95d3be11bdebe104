"""Plans of the run operations: create, read, change status, delete, list and count runs."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from functools import partial
from itertools import islice
from uuid import UUID, uuid4

from eventlog.engine.appends import AppendRequest
from eventlog.engine.core import Engine
from eventlog.engine.projectors import reader
from eventlog.log import get_logger
from eventlog.model.events import AnyEvent, RunStatusChanged
from eventlog.model.records import RunRecord
from eventlog.model.state import RunState
from eventlog.model.status import RunStatus
from eventlog.model.validation import check_fields, uuid_of
from eventlog.storage.kv import KVBackend, KVTxn
from eventlog.store.plans.arguments import (
    append_request,
    check_id_prefix,
    check_meta,
    check_page,
    check_status,
    run_status,
)
from eventlog.store.plans.records import listed_runs, run_with_status
from eventlog.store.projection_view import ProjectionView
from projections.run_state import RunStateQuery
from projections.status_index import StatusIndexQuery
from projections.tool_ledger import ToolLedgerQuery

__all__ = ["RunPlans"]

# the facade's logger, as before its plans moved here: logging set up for it still applies
log = get_logger("eventlog.store.run_store")


class RunPlans:
    """Each run operation's input checks and its work inside one transaction."""

    def __init__(self, backend: KVBackend, engine: Engine) -> None:
        self.backend = backend
        self.engine = engine
        #: the run-state view read key by key (one short read each: ``backend.get``)
        self.states = RunStateQuery(ProjectionView(backend, "run_state"))

    # -- writes ----------------------------------------------------------------------------
    def create_run(
        self,
        session_id: UUID | str,
        provider: str,
        model: str,
        metadata: Mapping[str, object] | None,
        client_request_id: str | None,
        run_id: UUID | str | None,
        events: Iterable[AnyEvent] | None = None,
    ) -> Callable[[KVTxn], RunRecord]:
        """``create_run``: a new run (``pending``), or the first one of a repeated request id.

        ``events``: the new run's first events, appended in the same transaction (seq 1..n);
        a repeated request id returns the first run and appends nothing.
        """
        sid = uuid_of(session_id, "session_id")
        rid = uuid4() if run_id is None else uuid_of(run_id, "run_id")
        if client_request_id is not None and not isinstance(client_request_id, str):
            raise TypeError(f"client_request_id must be a str, got {client_request_id!r}")
        now = datetime.now(UTC)
        record = RunRecord(
            rid,
            sid,
            RunStatus.PENDING,
            str(provider),
            str(model),
            check_meta(metadata),
            client_request_id,
            now,
            now,
        )
        record = check_fields(record, "create_run")
        first = None if events is None else append_request(rid, events, 0, None, "create_run")
        engine = self.engine

        def work(txn: KVTxn) -> RunRecord:
            created = engine.records.create_run(txn, record)
            if first is not None and created is record:  # not a repeated request
                engine.appends.append(txn, first, datetime.now(UTC))
            found = run_with_status(engine, txn, created.id)
            assert found is not None
            return found

        return work

    def update_run_status(
        self, run_id: UUID | str, status: RunStatus | str
    ) -> Callable[[KVTxn], RunRecord]:
        """``update_run_status``: append ``RunStatusChanged`` and return the run as it is now."""
        rid = uuid_of(run_id, "run_id")
        req = AppendRequest(rid, [RunStatusChanged(run_status(status))])
        engine = self.engine

        def work(txn: KVTxn) -> RunRecord:
            engine.appends.append(txn, req, datetime.now(UTC))
            record = run_with_status(engine, txn, rid)
            assert record is not None
            return record

        return work

    def delete_run(self, run_id: UUID | str) -> Callable[[KVTxn], bool]:
        """``delete_run``: the run with its events, indexes and views (True if it existed)."""
        rid = uuid_of(run_id, "run_id")
        records = self.engine.records
        path = self.backend.path

        def work(txn: KVTxn) -> bool:
            deleted = records.delete_run(txn, rid)
            if deleted:
                log.debug("run_deleted", path=path, run_id=str(rid))
            return deleted

        return work

    # -- reads -----------------------------------------------------------------------------
    def get_run(self, run_id: UUID | str) -> Callable[[KVTxn], RunRecord | None]:
        """``get_run``: the run with its current status, or None."""
        rid = uuid_of(run_id, "run_id")
        engine = self.engine
        return lambda txn: run_with_status(engine, txn, rid)

    def get_run_state(self, run_id: UUID | str) -> Callable[[], RunState | None]:
        """``get_run_state``: one point read of the run-state view (not a transaction plan)."""
        return partial(self.states.get, uuid_of(run_id, "run_id"))

    def list_runs_filtered(
        self,
        session_id: UUID | str | None,
        status: RunStatus | str | None,
        limit: int,
        offset: int,
        unresolved: bool = False,
        after: UUID | str | None = None,
    ) -> Callable[[KVTxn], list[RunRecord]]:
        """``list_runs_filtered``: newest first, from the status index (``after``: keyset).

        ``unresolved=True``: from the tool ledger's index of runs with unresolved tool calls
        (its cost grows with how many such runs there are), filtered the same way.
        """
        sid = None if session_id is None else uuid_of(session_id, "session_id")
        st = check_status(status)
        lim, off = check_page(limit, offset)
        if not isinstance(unresolved, bool):
            raise TypeError(f"unresolved must be a bool, got {unresolved!r:.40}")
        cursor = None if after is None else uuid_of(after, "after")
        engine = self.engine

        def work(txn: KVTxn) -> list[RunRecord]:
            index = StatusIndexQuery(reader(txn, "status_index"))
            if not unresolved:
                return listed_runs(engine, txn, index.entries(st, sid, lim, off, cursor))
            entries = unresolved_entries(txn, index, st, sid, lim, off, cursor)
            return listed_runs(engine, txn, entries)

        return work

    def count_runs(
        self, status: RunStatus | str | None, session_id: UUID | str | None
    ) -> Callable[[KVTxn], int]:
        """``count_runs``: from the status index's counters."""
        sid = None if session_id is None else uuid_of(session_id, "session_id")
        st = check_status(status)
        return lambda txn: StatusIndexQuery(reader(txn, "status_index")).count(
            status=st, session_id=sid
        )

    def find_runs(self, prefix: str, limit: int) -> Callable[[KVTxn], list[UUID]]:
        """``find_runs``: run ids whose hex form starts with ``prefix``."""
        digits, lim = check_id_prefix(prefix, limit)
        records = self.engine.records
        return lambda txn: records.find_ids(txn, "runs", digits, lim)


def unresolved_entries(
    txn: KVTxn,
    index: StatusIndexQuery,
    status: RunStatus | None,
    session_id: UUID | None,
    limit: int,
    offset: int,
    after: UUID | None = None,
) -> list[tuple[bytes, bytes]]:
    """``(run id, listed record)`` of a page of the runs with unresolved tool calls.

    ``after``: the page starts after this run (the index's order is the listing's); a run
    that is not among them starts nowhere (an empty page).
    """
    ledger = ToolLedgerQuery(reader(txn, "tool_ledger"))
    listing = reader(txn, "status_index")
    matched = (
        (rid, inv)
        for rid, inv, sid in ledger.unresolved_runs()
        if (session_id is None or sid == session_id.bytes)
        and (status is None or index.status_of(UUID(bytes=rid)) == status)
    )
    if after is not None:
        for rid, _inv in matched:
            if rid == after.bytes:
                break
        else:
            return []
    out = []
    for rid, inv in islice(matched, offset, offset + limit):
        out.append((rid, listing.get(b"a" + inv + rid) or b""))
    return out
