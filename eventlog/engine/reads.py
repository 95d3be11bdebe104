"""Reading events: one event, a stream's range, the log in position order, payload views.

:class:`EventReader` reads through the :class:`~eventlog.engine.stream_index.StreamIndex` it is
given (a stream's number and head) and decodes with :mod:`eventlog.storage.codec`.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import TypeVar
from uuid import UUID

from eventlog.engine.stream_index import Accepts, StreamIndex
from eventlog.errors import StoreError
from eventlog.model.records import EventRecord
from eventlog.storage.codec import decode_event, decode_stream, decode_values, decode_view
from eventlog.storage.keys import SEQ_END, pack_u64, unpack_u64
from eventlog.storage.kv import KVTxn

__all__ = ["EventReader"]

V = TypeVar("V")


class EventReader:
    """Reads of events by stream and seq, and of the log by position."""

    def __init__(self, index: StreamIndex) -> None:
        self.index = index

    def read_at(self, txn: KVTxn, stream_id: UUID, key: bytes) -> EventRecord:
        """The event at ``events`` key ``key`` (stream number + seq) of ``stream_id``."""
        raw = txn.get("events", key)
        seq = unpack_u64(key[8:])
        if raw is None:
            raise StoreError(f"run {stream_id}: event seq {seq} is indexed but missing")
        return decode_event(stream_id, seq, raw)

    def read_event(self, txn: KVTxn, run_id: UUID, seq: int) -> EventRecord:
        """Event ``seq`` of stream ``run_id`` (``StoreError`` if it is missing)."""
        return self.read_at(txn, run_id, self.index.event_key(txn, run_id, seq))

    def read_ref(self, txn: KVTxn, ref: bytes, ids: dict[bytes, UUID]) -> EventRecord:
        """The event a position entry points at (``ids`` caches stream numbers → ids)."""
        number = ref[:8]
        stream_id = ids.get(number)
        if stream_id is None:
            found = self.index.stream_of(txn, number)
            if found is None:
                raise StoreError(
                    f"the log points at stream {unpack_u64(number)}, which has no run, "
                    "session or stream record; run store.verify()"
                )
            stream_id = ids[number] = found
        return self.read_at(txn, stream_id, ref)

    def list_events(
        self,
        txn: KVTxn,
        run_id: UUID,
        *,
        after_seq: int = 0,
        to_seq: int | None = None,
        limit: int | None = None,
        kind: Accepts = "run",
        reverse: bool = False,
    ) -> list[EventRecord]:
        """Events ``after_seq < seq <= to_seq``, at most ``limit``.

        The first ones in seq order, or with ``reverse`` the last ones, newest first.
        """
        index = self.index
        number = index.check_stream(txn, run_id, kind)
        if limit == 0:
            return []
        head = index.last_seq(txn, number)
        last = head if to_seq is None else min(to_seq, head)
        if reverse:
            if limit is not None:
                after_seq = max(after_seq, last - limit)
            found = self.list_events(txn, run_id, after_seq=after_seq, to_seq=last, kind=kind)
            found.reverse()
            return found
        n = last - after_seq
        if limit is not None:
            n = min(n, limit)
        if n <= 0:
            return []
        # seq numbers are dense (1..head), so the n keys after after_seq are exactly
        # after_seq+1 .. after_seq+n: read values only and check the last key
        first = number + pack_u64(after_seq + 1)
        values, last_key = txn.values("events", first, n)
        if len(values) == n and last_key == number + pack_u64(after_seq + n):
            return decode_values(run_id, after_seq + 1, values)
        stop = number + pack_u64(after_seq + n + 1)  # a damaged stream (a gap): read the keys
        return decode_stream(run_id, txn.scan("events", first, stop))

    def view_events(
        self,
        txn: KVTxn,
        stream_id: UUID,
        view: type[V],
        *,
        after_seq: int = 0,
        to_seq: int | None = None,
        limit: int | None = None,
        reverse: bool = False,
    ) -> list[tuple[int, str, V]]:
        """``(seq, stored type, payload as view)`` of any stream's events (see ``list_events``)."""
        number = self.index.check_stream(txn, stream_id, "any")
        head = self.index.last_seq(txn, number)
        last = head if to_seq is None else min(to_seq, head)
        first_seq = after_seq + 1
        if limit is not None:
            first_seq = max(first_seq, last - limit + 1) if reverse else first_seq
            last = last if reverse else min(last, after_seq + limit)
        if last < first_seq:
            return []
        start = number + pack_u64(first_seq)
        pairs = txn.scan("events", start, number + pack_u64(last + 1))
        out = [decode_view(stream_id, unpack_u64(key[8:]), value, view) for key, value in pairs]
        if reverse:
            out.reverse()
        return out

    def iter_log(self, txn: KVTxn, *, after_position: int = 0) -> Iterator[tuple[int, bytes]]:
        """``(position, ref)`` in position order; tombstones are skipped.

        ``ref`` is the stream number + seq, the event's ``events`` key; :meth:`read_ref` reads it.
        """
        for key, ref in txn.scan("positions", pack_u64(after_position + 1)):
            if ref:
                yield unpack_u64(key), ref

    def read_log(
        self, txn: KVTxn, *, after_position: int = 0, limit: int | None = None
    ) -> list[EventRecord]:
        """Events in position order after ``after_position`` (deleted positions are skipped)."""
        out: list[EventRecord] = []
        if limit == 0:
            return out
        ids: dict[bytes, UUID] = {}
        for _, ref in self.iter_log(txn, after_position=after_position):
            out.append(self.read_ref(txn, ref, ids))
            if limit is not None and len(out) >= limit:
                break
        return out

    def last_events(self, txn: KVTxn, n: int, run_id: UUID | None = None) -> list[EventRecord]:
        """The last ``n`` events of the log (or of one run), oldest first."""
        if n <= 0:
            return []
        if run_id is not None:
            number = self.index.check_stream(txn, run_id, "run")
            pairs = list(islice(txn.scan("events", number, number + SEQ_END, reverse=True), n))
            return decode_stream(run_id, reversed(pairs))
        refs: list[bytes] = []
        for _, ref in txn.scan("positions", b"", reverse=True):
            if ref:  # tombstones are not events
                refs.append(ref)
                if len(refs) >= n:
                    break
        ids: dict[bytes, UUID] = {}
        return [self.read_ref(txn, r, ids) for r in reversed(refs)]
