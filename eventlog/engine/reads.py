"""Reading events: one event, a stream's range, the log in position order, payload views.

:class:`EventReader` reads through the :class:`~eventlog.engine.stream_index.StreamIndex` it is
given (a stream's number and head) and decodes with :mod:`eventlog.storage.codec`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar
from uuid import UUID

from eventlog.engine.lineage import fork_base, fork_pairs
from eventlog.engine.stream_index import Accepts, StreamIndex
from eventlog.errors import StoreError
from eventlog.model.records import EventRecord
from eventlog.storage.codec import decode_event, decode_stream, decode_values, decode_view
from eventlog.storage.keys import SEQ_END, pack_u64, unpack_u64
from eventlog.storage.kv import KVTxn

__all__ = ["EventReader"]

V = TypeVar("V")
_LOG_PAGE = 1000  # positions per query of an unlimited read_log
_MAX_SEQ = 2**64 - 1


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
        """Event ``seq`` of stream ``run_id`` (``StoreError`` if it is missing).

        A fork's shared events are read from its parent (as the fork's events).
        """
        key = self.index.event_key(txn, run_id, seq)
        raw = txn.get("events", key)
        if raw is not None:
            return decode_event(run_id, seq, raw)
        if seq > 0:
            base = fork_base(txn, key[:8])
            if base is not None and seq <= base.at_seq:
                found = fork_pairs(txn, base, seq - 1, seq, 1, False)
                if found:
                    return decode_event(run_id, seq, found[0][1])
        return self.read_at(txn, run_id, key)

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

        The first ones in seq order, or with ``reverse`` the last ones, newest first. One
        :meth:`~eventlog.storage.kv.KVTxn.get_range` (one query on PostgreSQL).
        """
        pairs = self._pairs(txn, run_id, after_seq, to_seq, limit, reverse, kind)
        if not pairs:
            return []
        first, last = unpack_u64(pairs[0][0][8:]), unpack_u64(pairs[-1][0][8:])
        if abs(last - first) + 1 != len(pairs):  # a damaged stream (a gap): seq by seq
            return decode_stream(run_id, pairs)
        # seq numbers are dense: the typed decode of consecutive values
        if not reverse:
            return decode_values(run_id, first, [v for _, v in pairs])
        found = decode_values(run_id, last, [v for _, v in reversed(pairs)])
        found.reverse()
        return found

    def _pairs(
        self,
        txn: KVTxn,
        stream_id: UUID,
        after_seq: int,
        to_seq: int | None,
        limit: int | None,
        reverse: bool,
        kind: Accepts,
    ) -> list[tuple[bytes, bytes]]:
        """The stream's ``events`` items ``after_seq < seq <= to_seq``, a fork's prefix included.

        One :meth:`~eventlog.storage.kv.KVTxn.get_range` reads the stream's own events; only
        when they cannot be all of the answer (none, or not from ``after_seq + 1``) is its
        fork base looked up (one more read) and the shared prefix read from the parent.
        """
        raw, pairs = self._range(txn, stream_id, after_seq, to_seq, limit, reverse)
        number = self.index.number_of(stream_id, raw, kind)
        if limit == 0 or (to_seq is not None and to_seq <= after_seq):
            return pairs
        if pairs:
            lowest = pairs[-1][0] if reverse else pairs[0][0]
            if unpack_u64(lowest[8:]) <= after_seq + 1:
                return pairs
            if reverse and limit is not None and len(pairs) >= limit:
                return pairs
        base = fork_base(txn, number)
        if base is None or base.at_seq <= after_seq:
            return pairs
        if not reverse:
            shared = fork_pairs(txn, base, after_seq, to_seq, limit, False)
            return shared + pairs[: None if limit is None else limit - len(shared)]
        want = None if limit is None else limit - len(pairs)
        return pairs + fork_pairs(txn, base, after_seq, to_seq, want, True)

    def _range(
        self,
        txn: KVTxn,
        stream_id: UUID,
        after_seq: int,
        to_seq: int | None,
        limit: int | None,
        reverse: bool,
    ) -> tuple[bytes | None, list[tuple[bytes, bytes]]]:
        """The ``streams`` value of ``stream_id`` and its events ``after_seq < seq <= to_seq``."""
        empty = limit == 0 or (to_seq is not None and to_seq <= after_seq)
        return txn.get_range(
            "streams",
            stream_id.bytes,
            "events",
            _seq_key(after_seq + 1),
            SEQ_END if to_seq is None else _seq_key(to_seq + 1),
            0 if empty else limit,
            reverse=reverse,
        )

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
        pairs = self._pairs(txn, stream_id, after_seq, to_seq, limit, reverse, "any")
        return [decode_view(stream_id, unpack_u64(key[8:]), value, view) for key, value in pairs]

    def iter_log(self, txn: KVTxn, *, after_position: int = 0) -> Iterator[tuple[int, bytes]]:
        """``(position, ref)`` in position order; tombstones are skipped.

        ``ref`` is the stream number + seq, the event's ``events`` key; :meth:`read_ref` reads it.
        """
        for key, ref in txn.scan("positions", pack_u64(after_position + 1)):
            if ref:
                yield unpack_u64(key), ref

    def read_followed(
        self, ref: bytes, value: bytes | None, owner: bytes | None, ids: dict[bytes, UUID]
    ) -> EventRecord:
        """The event of position entry ``ref``, given its value and its stream's id bytes.

        What :meth:`~eventlog.storage.kv.KVTxn.follow` of ``positions`` returns per item;
        ``ids`` caches stream numbers -> ids.
        """
        number = ref[:8]
        stream_id = ids.get(number)
        if stream_id is None:
            if not owner:
                raise StoreError(
                    f"the log points at stream {unpack_u64(number)}, which has no run, "
                    "session or stream record; run store.verify()"
                )
            stream_id = ids[number] = UUID(bytes=owner)
        seq = unpack_u64(ref[8:])
        if value is None:
            raise StoreError(f"run {stream_id}: event seq {seq} is indexed but missing")
        return decode_event(stream_id, seq, value)

    def read_log(
        self, txn: KVTxn, *, after_position: int = 0, limit: int | None = None
    ) -> list[EventRecord]:
        """Events in position order after ``after_position`` (deleted positions are skipped).

        A page of positions with their events is one
        :meth:`~eventlog.storage.kv.KVTxn.follow` (one query on PostgreSQL).
        """
        out: list[EventRecord] = []
        if limit == 0:
            return out
        ids: dict[bytes, UUID] = {}
        start = after_position + 1
        while True:
            want = _LOG_PAGE if limit is None else limit - len(out)
            rows = txn.follow("positions", pack_u64(start), want, "events", "stream_ids")
            for _, ref, value, owner in rows:
                if not ref:  # tombstones are not events
                    continue
                stream_id = ids.get(ref[:8])
                if stream_id is None or value is None:  # a new stream, or a damaged log
                    out.append(self.read_followed(ref, value, owner, ids))
                else:
                    out.append(decode_event(stream_id, int.from_bytes(ref[8:], "big"), value))
            if len(rows) < want or (limit is not None and len(out) >= limit):
                return out
            start = unpack_u64(rows[-1][0]) + 1

    def last_events(self, txn: KVTxn, n: int, run_id: UUID | None = None) -> list[EventRecord]:
        """The last ``n`` events of the log (or of one run), oldest first."""
        if n <= 0:
            return []
        if run_id is not None:
            found = self.list_events(txn, run_id, limit=n, reverse=True)
            found.reverse()
            return found
        refs: list[bytes] = []
        for _, ref in txn.scan("positions", b"", reverse=True):
            if ref:  # tombstones are not events
                refs.append(ref)
                if len(refs) >= n:
                    break
        ids: dict[bytes, UUID] = {}
        return [self.read_ref(txn, r, ids) for r in reversed(refs)]


def _seq_key(seq: int) -> bytes:
    """``seq`` as a key suffix (capped at the greatest 8-byte number)."""
    return pack_u64(min(seq, _MAX_SEQ))
