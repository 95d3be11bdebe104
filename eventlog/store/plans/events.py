"""Plans of the event operations: appends (one event, a batch, several runs) and log reads."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from uuid import UUID

from eventlog.engine.appends import AppendRequest
from eventlog.engine.core import Engine
from eventlog.engine.stream_index import Accepts
from eventlog.live.consumers import Ack, check_ack, write_ack
from eventlog.model.events import AnyEvent
from eventlog.model.records import EventRecord
from eventlog.model.validation import check_event, check_seq, uuid_of
from eventlog.storage.kv import KVTxn
from eventlog.store.plans.arguments import append_request

__all__ = ["EventPlans", "events_of"]


def events_of(
    engine: Engine,
    sid: UUID,
    kind: Accepts,
    after_seq: int,
    to_seq: int | None,
    limit: int | None,
    reverse: bool = False,
) -> Callable[[KVTxn], list[EventRecord]]:
    """A stream's events ``after_seq < seq <= to_seq`` (``list_events``, ``read_stream``)."""
    after = check_seq(after_seq, "after_seq") or 0
    to = check_seq(to_seq, "to_seq")
    lim = check_seq(limit, "limit")
    back = bool(reverse)
    list_events = engine.reads.list_events
    return lambda txn: list_events(
        txn, sid, after_seq=after, to_seq=to, limit=lim, kind=kind, reverse=back
    )


class EventPlans:
    """Each event operation's input checks and its work inside one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- appends ---------------------------------------------------------------------------
    def append_event(
        self,
        run_id: UUID | str,
        event: AnyEvent,
        expected_seq: int | None,
        event_id: UUID | str | None,
    ) -> Callable[[KVTxn], EventRecord]:
        """``append_event``: one event (the hot path: one request, two puts)."""
        rid = uuid_of(run_id, "run_id")
        ev = check_event(event, "append_event")
        eid = None if event_id is None else uuid_of(event_id, "event_id")
        req = AppendRequest(
            rid, (ev,), check_seq(expected_seq, "expected_seq"), None if eid is None else (eid,)
        )
        append = self.engine.appends.append
        return lambda txn: append(txn, req, datetime.now(UTC))[0]

    def append_events(
        self,
        run_id: UUID | str,
        events: Iterable[AnyEvent],
        expected_seq: int | None,
        event_ids: Sequence[UUID | str | None] | None,
    ) -> Callable[[KVTxn], list[EventRecord]]:
        """``append_events``: a batch to one run, all or nothing."""
        rid = uuid_of(run_id, "run_id")
        req = append_request(rid, events, expected_seq, event_ids, "append_events")
        append = self.engine.appends.append
        return lambda txn: append(txn, req, datetime.now(UTC))

    def append_many(
        self, requests: Iterable[AppendRequest], ack: Ack | tuple[str, int] | None = None
    ) -> Callable[[KVTxn], list[list[EventRecord]]]:
        """``append_many``: batches to any streams in one transaction, all or nothing.

        Each request is checked here (its kind and metadata too); in the transaction the
        acknowledgement (if any) is checked and written first, then each request appended
        (creating the streams that a first append creates).
        """
        if isinstance(requests, AppendRequest):
            raise TypeError("append_many takes a list of AppendRequest, not one request")
        checked = []
        for n, req in enumerate(requests):
            if not isinstance(req, AppendRequest):
                raise TypeError(f"append_many: item {n} must be an AppendRequest, got {req!r:.80}")
            checked.append(
                append_request(
                    uuid_of(req.run_id, "stream_id"),
                    req.events,
                    req.expected_seq,
                    req.event_ids,
                    f"append_many item {n}",
                    req.kind,
                    req.metadata,
                )
            )
        acked = check_ack(ack)
        engine = self.engine
        append = engine.appends.append

        def work(txn: KVTxn) -> list[list[EventRecord]]:
            now = datetime.now(UTC)
            if acked is not None:
                write_ack(engine, txn, acked)
            return [append(txn, req, now, "any") for req in checked]

        return work

    # -- reads -----------------------------------------------------------------------------
    def list_events(
        self, run_id: UUID | str, after_seq: int, to_seq: int | None, limit: int | None
    ) -> Callable[[KVTxn], list[EventRecord]]:
        """``list_events``: a run's events in seq order."""
        return events_of(self.engine, uuid_of(run_id, "run_id"), "run", after_seq, to_seq, limit)

    def read_log(
        self, after_position: int, limit: int | None
    ) -> Callable[[KVTxn], list[EventRecord]]:
        """``read_log``: every stream's events in position order."""
        after = check_seq(after_position, "after_position") or 0
        lim = check_seq(limit, "limit")
        reads = self.engine.reads
        return lambda txn: reads.read_log(txn, after_position=after, limit=lim)

    def last_events(
        self, n: int, run_id: UUID | str | None
    ) -> Callable[[KVTxn], list[EventRecord]]:
        """``last_events``: the log's (or one run's) last ``n`` events, oldest first."""
        count = check_seq(n, "n") or 0
        rid = None if run_id is None else uuid_of(run_id, "run_id")
        reads = self.engine.reads
        return lambda txn: reads.last_events(txn, count, rid)

    def last_position(self) -> Callable[[KVTxn], int]:
        """``last_position``: the highest position ever assigned."""
        return self.engine.index.last_position
