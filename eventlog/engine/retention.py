"""The pruned-ranges record: which ranges of log positions lost events to a prune.

A prune (``store.prune``, :mod:`eventlog.store.plans.retention`) deletes whole runs and
streams like ``delete_run`` does; positions are never reused and the events that remain keep
theirs. So that a reader crossing the removed positions can tell events were removed there
(not silently skip them), each prune batch records, in the same transaction, the ranges of
positions it emptied: ``meta`` keys ``pruned.`` + last position (``>Q``) → first position +
count of removed events (``>Q`` each). Ranges never overlap: a new range that touches or
overlaps stored ones - or is separated from them only by positions that hold no event - is
merged with them, so the record stays small and "the ranges a read of positions ``after <
p <= upto`` crosses" is one seek and a short scan.

>>> from eventlog.storage.memory import MemoryBackend
>>> backend = MemoryBackend()
>>> backend.write(lambda txn: record_pruned(txn, [2, 3, 7]))
>>> backend.read(lambda txn: pruned_between(txn, 0, 10))
[PrunedRange(first=2, last=7, count=3)]
"""

from __future__ import annotations

from collections.abc import Iterable

from eventlog.model.retention import PrunedRange
from eventlog.storage.keys import pack_u64, prefix_end, unpack_u64
from eventlog.storage.kv import KVTxn

__all__ = ["PRUNED_PREFIX", "pruned_between", "pruned_ranges", "record_pruned"]

#: the ``meta`` key prefix of the pruned-ranges record
PRUNED_PREFIX = b"pruned."
_END = prefix_end(PRUNED_PREFIX)


def _key(last: int) -> bytes:
    return PRUNED_PREFIX + pack_u64(last)


def _decode(key: bytes, value: bytes) -> PrunedRange:
    return PrunedRange(
        unpack_u64(value[:8]), unpack_u64(key[len(PRUNED_PREFIX) :]), unpack_u64(value[8:16])
    )


def pruned_between(txn: KVTxn, after: int, upto: int) -> list[PrunedRange]:
    """The pruned ranges that share a position with ``after < p <= upto``, in order."""
    out: list[PrunedRange] = []
    if upto <= after:
        return out
    for key, value in txn.scan("meta", _key(after + 1), _END):
        found = _decode(key, value)
        if found.first > upto:
            break
        out.append(found)
    return out


def pruned_ranges(txn: KVTxn) -> list[PrunedRange]:
    """Every pruned range, in position order."""
    return [_decode(k, v) for k, v in txn.scan("meta", PRUNED_PREFIX, _END)]


def _no_event_between(txn: KVTxn, low: int, high: int) -> bool:
    """True when no position ``low < p < high`` holds an event (tombstones hold none)."""
    for key, ref in txn.scan("positions", pack_u64(low + 1), pack_u64(high)):
        if ref:
            return False
        del key
    return True


def _coalesce(txn: KVTxn, positions: Iterable[int]) -> list[PrunedRange]:
    out: list[PrunedRange] = []
    for p in sorted(positions):
        if out and (p == out[-1].last + 1 or _no_event_between(txn, out[-1].last, p)):
            last = out[-1]
            out[-1] = PrunedRange(last.first, p, last.count + 1)
        else:
            out.append(PrunedRange(p, p, 1))
    return out


def record_pruned(txn: KVTxn, positions: Iterable[int]) -> None:
    """Record that the events at ``positions`` were pruned (call after deleting them).

    Merges the new ranges with the stored ones they overlap or adjoin (see the module
    docstring), in the caller's transaction.
    """
    for new in _coalesce(txn, positions):
        first, last, count = new.first, new.last, new.count
        below = txn.last_key("meta", _key(first))
        if below is not None and below.startswith(PRUNED_PREFIX):
            raw = txn.get("meta", below)
            assert raw is not None
            prev = _decode(below, raw)
            if _no_event_between(txn, prev.last, first):
                first, count = prev.first, count + prev.count
                txn.discard("meta", below)
        for key, value in list(txn.scan("meta", _key(first), _END)):
            found = _decode(key, value)
            if found.first > last and not _no_event_between(txn, last, found.first):
                break
            first, last = min(first, found.first), max(last, found.last)
            count += found.count
            txn.discard("meta", key)
        txn.put("meta", _key(last), pack_u64(first) + pack_u64(count))
