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

from bisect import bisect_left, bisect_right
from collections.abc import Iterable

from eventlog.errors import StoreError
from eventlog.model.retention import PrunedRange
from eventlog.storage.keys import pack_u64, prefix_end, unpack_u64
from eventlog.storage.kv import KVTxn

__all__ = ["PRUNED_PREFIX", "pruned_between", "pruned_ranges", "range_faults", "record_pruned"]

#: the ``meta`` key prefix of the pruned-ranges record
PRUNED_PREFIX = b"pruned."
_END = prefix_end(PRUNED_PREFIX)


def _key(last: int) -> bytes:
    return PRUNED_PREFIX + pack_u64(last)


def _decode(key: bytes, value: bytes) -> PrunedRange:
    if len(key) != len(PRUNED_PREFIX) + 8 or len(value) != 16:
        raise StoreError(
            f"the pruned-ranges record is damaged at meta key {key!r}; run store.verify()"
        )
    last = unpack_u64(key[len(PRUNED_PREFIX) :])
    return PrunedRange(unpack_u64(value[:8]), last, unpack_u64(value[8:]))


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


def _merge(items: list[PrunedRange], live: list[int]) -> list[PrunedRange]:
    """Merge ranges (sorted by ``first``) that overlap, touch, or have no live event between."""
    out: list[PrunedRange] = []
    for item in items:
        if out:
            cur = out[-1]
            between_empty = bisect_right(live, cur.last) == bisect_left(live, item.first)
            if item.first <= cur.last + 1 or between_empty:
                out[-1] = PrunedRange(
                    min(cur.first, item.first), max(cur.last, item.last), cur.count + item.count
                )
                continue
        out.append(item)
    return out


def record_pruned(txn: KVTxn, positions: Iterable[int]) -> None:
    """Record that the events at ``positions`` were pruned (call after deleting them).

    Merges them with the stored ranges they overlap or adjoin (see the module docstring), in
    the caller's transaction: one scan of the stored ranges near them, one scan of the
    positions that still hold events across their span, then the writes.
    """
    pruned = sorted(set(positions))
    if not pruned:
        return
    lo, hi = pruned[0], pruned[-1]
    stored: list[PrunedRange] = []
    for key, value in txn.scan("meta", _key(max(lo - 1, 0)), _END):
        found = _decode(key, value)
        if found.first > hi + 1:
            break
        stored.append(found)
    span_lo = min([lo, *(r.first for r in stored)])
    span_hi = max([hi, *(r.last for r in stored)])
    live = [
        unpack_u64(key)
        for key, ref in txn.scan("positions", pack_u64(span_lo), pack_u64(span_hi + 1))
        if ref
    ]
    for old in stored:
        txn.discard("meta", _key(old.last))
    items = sorted([*stored, *(PrunedRange(p, p, 1) for p in pruned)], key=lambda r: r.first)
    for new in _merge(items, live):
        txn.put("meta", _key(new.last), pack_u64(new.first) + pack_u64(new.count))


def range_faults(txn: KVTxn) -> list[tuple[str, str, int]]:
    """``(where, what is wrong, position)`` of each damaged pruned range (``verify``).

    A range must be well formed (``first <= last``, ``1 <= count <= last - first + 1``), lie
    after the previous one, and hold no event: positions are never reused, so an event inside
    a pruned range means the record is wrong.
    """
    faults: list[tuple[str, str, int]] = []
    previous = 0
    for key, value in txn.scan("meta", PRUNED_PREFIX, _END):
        try:
            found = _decode(key, value)
        except StoreError as exc:
            faults.append((f"meta key {key!r}", str(exc), 0))
            continue
        where = f"pruned range {found.first}-{found.last}"
        if not (found.first <= found.last and 1 <= found.count <= found.last - found.first + 1):
            faults.append((where, f"malformed (count {found.count})", found.first))
        if found.first <= previous:
            faults.append((where, f"overlaps the range ending at {previous}", found.first))
        previous = found.last
        stop = pack_u64(found.last + 1)
        for key, ref in txn.scan("positions", pack_u64(found.first), stop):
            if ref:
                position = unpack_u64(key)
                faults.append((where, f"position {position} in it holds an event", position))
                break
    return faults
