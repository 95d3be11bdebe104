"""The narrow key-value interface the engine is written against.

The engine (``eventlog.engine``) holds every rule of the log - sequence numbers, positions,
idempotency, projections - and talks to storage only through :class:`KVTxn`
inside one transaction opened by a :class:`KVBackend`. The LMDB backend maps it onto
``lmdb.Transaction``; the memory backend onto sorted dicts with an undo log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from itertools import islice
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from eventlog.storage.wakeup import Wakeup

__all__ = ["TABLES", "KVBackend", "KVTxn", "Followed", "follow_by_gets", "get_range_by_scan"]

T = TypeVar("T")

#: Every table (LMDB named sub-database) the engine uses.
TABLES = (
    "meta",
    "sessions",
    "runs",
    "session_runs",
    "streams",
    "stream_ids",
    "events",
    "positions",
    "event_ids",
    "client_requests",
    "projections",
    "projector_meta",
    "consumers",
    "stream_records",
    "stream_kinds",
    "blobs",
    "forks",
)


class KVTxn(Protocol):
    """One open transaction over the store's tables (keys sort bytewise)."""

    def get(self, table: str, key: bytes) -> bytes | None:
        """Return the value stored at ``key``, or None."""
        ...

    def put(self, table: str, key: bytes, value: bytes, *, append: bool = False) -> None:
        """Store ``value`` at ``key``; ``append`` promises ``key`` sorts after every key."""
        ...

    def put_many(
        self, table: str, items: list[tuple[bytes, bytes]], *, append: bool = False
    ) -> None:
        """Store every ``(key, value)`` of ``items`` (sorted by key when ``append``)."""
        ...

    def delete(self, table: str, key: bytes) -> bool:
        """Delete ``key``; True if it existed."""
        ...

    def prefetch(self, table: str, keys: Sequence[bytes]) -> None:
        """Hint: ``get`` will be asked for these keys (a remote backend reads them at once)."""
        ...

    def discard(self, table: str, key: bytes) -> None:
        """Delete ``key`` if it exists (no answer needed: a remote backend sends it later)."""
        ...

    def scan(
        self, table: str, start: bytes, stop: bytes | None = None, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """Iterate ``start <= key < stop`` in key order (or reverse order)."""
        ...

    def last_key(self, table: str, below: bytes | None = None) -> bytes | None:
        """The greatest key of ``table`` that sorts before ``below`` (None: the greatest key).

        The append path's cursor step (a stream's head, the last position): no value copied.
        """
        ...

    def values(self, table: str, start: bytes, n: int) -> tuple[list[bytes], bytes | None]:
        """The values of the first ``n`` keys ``>= start`` and the last key read (or None).

        The replay path: when the caller knows the keys are dense (a stream's seq numbers) it
        reads values only and checks the last key, instead of building a tuple per item.
        """
        ...

    def follow(self, table: str, start: bytes, n: int, target: str, owner: str) -> list[Followed]:
        """The first ``n`` items of ``table`` with keys ``>= start``, with what they point at.

        Each is ``(key, value, target[value], owner[value[:8]])``: ``table`` is an index
        whose values are keys of ``target`` that start with an 8-byte number, the key of
        ``owner`` (the log: ``positions`` -> ``events`` and ``stream_ids``). An empty value (a
        tombstone) or a missing key gives None. A remote backend reads a page in one query.
        """
        ...

    def get_range(
        self,
        table: str,
        key: bytes,
        target: str,
        start: bytes,
        stop: bytes,
        n: int | None,
        *,
        reverse: bool = False,
    ) -> tuple[bytes | None, list[tuple[bytes, bytes]]]:
        """``table[key]`` and the items of ``target`` under the number that value starts with.

        With ``p`` the value's first 8 bytes: the first ``n`` items (None: all) of ``target``
        with ``p + start <= key < p + stop``, or with ``reverse`` the last ``n``, greatest key
        first. ``(None, [])`` when ``key`` is missing. A stream's page (``streams`` ->
        ``events``) in one query on a remote backend.
        """
        ...


#: What :meth:`KVTxn.follow` returns per item: key, value, the target's and the owner's value.
Followed = tuple[bytes, bytes, bytes | None, bytes | None]


def follow_by_gets(
    txn: KVTxn, table: str, start: bytes, n: int, target: str, owner: str
) -> list[Followed]:
    """:meth:`KVTxn.follow` as a scan and gets (a backend whose gets cost no round trip)."""
    out: list[Followed] = []
    if n <= 0:
        return out
    owners: dict[bytes, bytes | None] = {}
    get = txn.get
    for key, value in txn.scan(table, start):
        if value:
            number = value[:8]
            if number in owners:
                found = owners[number]
            else:
                found = owners[number] = get(owner, number)
            out.append((key, value, get(target, value), found))
        else:
            out.append((key, value, None, None))
        if len(out) >= n:
            break
    return out


def get_range_by_scan(
    txn: KVTxn,
    table: str,
    key: bytes,
    target: str,
    start: bytes,
    stop: bytes,
    n: int | None,
    *,
    reverse: bool = False,
) -> tuple[bytes | None, list[tuple[bytes, bytes]]]:
    """:meth:`KVTxn.get_range` as a get and a scan (a backend whose reads cost no round trip)."""
    value = txn.get(table, key)
    if value is None or n == 0:
        return value, []
    p = value[:8]
    items = txn.scan(target, p + start, p + stop, reverse=reverse)
    return value, list(items if n is None else islice(items, n))


class KVBackend(Protocol):
    """Opens transactions.

    ``write`` may call ``fn`` again (map growth), so ``fn`` must be a pure function of the
    transaction.
    """

    path: str | None
    readonly: bool
    #: Called (no arguments) right after every successful commit of :meth:`write`; the store
    #: installs its wake-up signal here. It must be cheap and must not raise.
    on_commit: Callable[[], None] | None

    def read(self, fn: Callable[[KVTxn], T]) -> T:
        """Run ``fn`` in a read-only snapshot."""
        ...

    def get(self, table: str, key: bytes) -> bytes | None:
        """One key, read in its own short snapshot."""
        ...

    def write(self, fn: Callable[[KVTxn], T]) -> T:
        """Run ``fn`` in one write transaction; commit when it returns, abort when it raises."""
        ...

    def write_group(
        self, fns: Sequence[Callable[[KVTxn], Any]], max_bytes: int
    ) -> list[tuple[bool, Any]]:
        """Run ``fns`` in one write transaction, each isolated from the others' failures.

        A function that raises an ``Exception`` is rolled back alone; its slot holds
        ``(False, exc)``, the others ``(True, result)``. One commit at the end when none
        fails (LMDB: the functions before a failed one commit, it runs again alone, the rest
        follow). Stops adding functions once about ``max_bytes`` have been written (the
        result is then shorter than ``fns``). Like ``write``, it may run the functions again
        (map growth, a failure).
        """
        ...

    def flush(self) -> None:
        """Make every committed transaction durable."""
        ...

    def make_wakeup(self) -> Wakeup:
        """The wake-up point of this store's subscribers (see :mod:`eventlog.storage.wakeup`)."""
        ...

    def health_check(self) -> None:
        """Raise ``StoreError`` when the backend is unusable."""
        ...

    def close(self) -> None:
        """Release the backend; later calls raise ``StoreClosedError``."""
        ...
