"""Forks of streams: a new stream whose first events are another stream's, shared, not copied.

A fork of stream P at ``at_seq`` is a new stream (a run, or a stream of another kind) whose
events ``1..at_seq`` are P's - read from P, recursively for a fork of a fork - and whose own
events continue at ``at_seq + 1``. Its head is ``at_seq`` when it is created, so
``expected_seq`` works as for any stream. Only its own events have positions in the log.

The ``forks`` table holds two kinds of keys:

- ``b"b"`` + the fork's stream number -> ``at_seq`` (>Q) + the parent's stream number + the
  parent's id + the fork's id: the fork's *base*, read by the stream index (the head of a
  fork without events of its own) and the reader (a fork's prefix);
- ``b"c"`` + the parent's id + the fork's id -> ``at_seq`` (>Q): the parent's forks, the index
  behind :func:`forks_of` (``list_forks``; deletes and prunes ask it).

A stream that forks still read cannot be deleted (:class:`~eventlog.errors.StreamHasForks`);
``delete_session`` deletes a session's runs forks first.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from uuid import UUID

from eventlog.storage.keys import pack_u64, prefix_end, unpack_u64
from eventlog.storage.kv import KVTxn

__all__ = [
    "ForkBase",
    "fork_base",
    "fork_head",
    "fork_pairs",
    "forks_of",
    "iter_fork_bases",
    "link_fork",
    "mark_no_fork",
    "parent_of",
    "unlink_fork",
]

_BASE, _CHILD = b"b", b"c"


@dataclass(frozen=True, slots=True)
class ForkBase:
    """Where a fork starts: its parent stream (id and number) and the last shared seq."""

    fork_id: UUID
    parent_id: UUID
    parent_number: bytes
    at_seq: int


def _decode_base(raw: bytes) -> ForkBase:
    return ForkBase(UUID(bytes=raw[32:48]), UUID(bytes=raw[16:32]), raw[8:16], unpack_u64(raw[:8]))


def link_fork(txn: KVTxn, number: bytes, fork_id: UUID, base: ForkBase) -> None:
    """Record that stream ``fork_id`` (number ``number``) forks ``base.parent_id``."""
    at = pack_u64(base.at_seq)
    txn.put("forks", _BASE + number, at + base.parent_number + base.parent_id.bytes + fork_id.bytes)
    txn.put("forks", _CHILD + base.parent_id.bytes + fork_id.bytes, at)


def mark_no_fork(txn: KVTxn, number: bytes) -> None:
    """Say that new stream ``number`` has no base (a write the backend may skip or buffer)."""
    txn.discard("forks", _BASE + number)


def unlink_fork(txn: KVTxn, number: bytes) -> None:
    """Forget the base of stream ``number`` (deleted); nothing when it is no fork."""
    raw = txn.get("forks", _BASE + number)
    if raw is None:
        return
    base = _decode_base(raw)
    txn.discard("forks", _BASE + number)
    txn.discard("forks", _CHILD + base.parent_id.bytes + base.fork_id.bytes)


def fork_base(txn: KVTxn, number: bytes) -> ForkBase | None:
    """The base of stream ``number`` (None: it is no fork). One point read."""
    raw = txn.get("forks", _BASE + number)
    return None if raw is None else _decode_base(raw)


def fork_head(txn: KVTxn, number: bytes) -> int:
    """The head of stream ``number`` when it has no events of its own: its fork seq, or 0."""
    raw = txn.get("forks", _BASE + number)
    return 0 if raw is None else unpack_u64(raw[:8])


def forks_of(txn: KVTxn, stream_id: UUID) -> list[tuple[UUID, int]]:
    """Which forks read this stream's prefix: ``(fork id, fork seq)`` of its direct forks.

    One range read of the ``forks`` index (no scan of the store), in fork id order. A stream
    with forks must be kept: deleting it is refused, and a prune must skip it.
    """
    prefix = _CHILD + stream_id.bytes
    return [
        (UUID(bytes=key[17:33]), unpack_u64(value))
        for key, value in txn.scan("forks", prefix, prefix_end(prefix))
    ]


def parent_of(txn: KVTxn, number: bytes) -> tuple[UUID, int] | None:
    """``(parent id, fork seq)`` of stream ``number``, or None when it is no fork."""
    base = fork_base(txn, number)
    return None if base is None else (base.parent_id, base.at_seq)


def iter_fork_bases(txn: KVTxn) -> Iterator[tuple[bytes, ForkBase]]:
    """Every fork's ``(stream number, base)``, in stream number order (rebuilds, verify)."""
    for key, raw in txn.scan("forks", _BASE, prefix_end(_BASE)):
        yield key[1:], _decode_base(raw)


def fork_pairs(
    txn: KVTxn,
    base: ForkBase,
    after_seq: int,
    to_seq: int | None,
    limit: int | None,
    reverse: bool,
) -> list[tuple[bytes, bytes]]:
    """The ``events`` items of a fork's shared prefix with ``after_seq < seq <= to_seq``.

    Read from the parent (and its parents, for a fork of a fork), at most ``limit`` of them:
    the first ones in seq order, or with ``reverse`` the last ones, greatest seq first.
    """
    stop = base.at_seq if to_seq is None else min(to_seq, base.at_seq)
    return _chain(txn, base.parent_number, after_seq, stop, limit, reverse)


def _chain(
    txn: KVTxn, number: bytes, after: int, stop: int, limit: int | None, reverse: bool
) -> list[tuple[bytes, bytes]]:
    """Stream ``number``'s items ``after < seq <= stop``, its shared prefix included."""
    if stop <= after or limit == 0:
        return []
    base = fork_base(txn, number)
    shared_to = 0 if base is None else min(base.at_seq, stop)
    first_own = max(after, shared_to) + 1
    own: list[tuple[bytes, bytes]] = []
    if first_own <= stop:
        items = txn.scan(
            "events", number + pack_u64(first_own), number + pack_u64(stop + 1), reverse=reverse
        )
        own = list(items if limit is None else islice(items, limit))
    if base is None or shared_to <= after:
        return own
    if not reverse:
        shared = _chain(txn, base.parent_number, after, shared_to, limit, False)
        return shared + own[: None if limit is None else limit - len(shared)]
    want = None if limit is None else limit - len(own)
    return own + _chain(txn, base.parent_number, after, shared_to, want, True)
