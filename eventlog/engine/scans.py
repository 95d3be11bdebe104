"""Reads that scan a table or decode views: the engine's part (mixed into ``Engine``).

``view_events`` decodes a stream's payloads as a caller's msgspec view; ``iter_sessions`` /
``iter_runs`` walk the records (rebuilds, exports); ``find_ids`` resolves id prefixes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, TypeVar
from uuid import UUID

from eventlog.model.records import RunRecord, Session
from eventlog.storage.codec import RUN_RECORD, SESSION, decode_view
from eventlog.storage.keys import pack_u64, unpack_u64
from eventlog.storage.kv import KVTxn

if TYPE_CHECKING:
    from eventlog.engine.core import Accepts

__all__ = ["Scans"]

V = TypeVar("V")


class Scans:
    """Scans and view reads (mixed into ``Engine``, whose stream methods they use)."""

    def _check_stream(self, txn: KVTxn, stream_id: UUID, kind: Accepts) -> bytes:
        raise NotImplementedError

    def last_seq(self, txn: KVTxn, number: bytes) -> int:
        raise NotImplementedError

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
        number = self._check_stream(txn, stream_id, "any")
        head = self.last_seq(txn, number)
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

    def iter_sessions(self, txn: KVTxn) -> Iterator[Session]:
        for key, raw in txn.scan("sessions", b""):
            yield SESSION.decode(raw, "session", UUID(bytes=key))

    def iter_runs(self, txn: KVTxn) -> Iterator[RunRecord]:
        for key, raw in txn.scan("runs", b""):
            yield RUN_RECORD.decode(raw, "run", UUID(bytes=key), "record")

    def find_ids(self, txn: KVTxn, table: str, hex_prefix: str, limit: int) -> list[UUID]:
        """Ids in ``table`` (``runs`` or ``sessions``) whose hex form starts with ``hex_prefix``."""
        want = hex_prefix.replace("-", "").lower()
        start = bytes.fromhex(want + "0" * (len(want) % 2))
        out: list[UUID] = []
        for key, _ in txn.scan(table, start):
            if not key.hex().startswith(want):
                break
            out.append(UUID(bytes=key))
            if len(out) >= limit:
                break
        return out
