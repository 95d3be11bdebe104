"""The narrow key-value interface the engine is written against.

The engine (``eventlog.engine``) holds every rule of the log - sequence numbers, positions,
idempotency, projections - and talks to storage only through :class:`KVTxn`
inside one transaction opened by a :class:`KVBackend`. The LMDB backend maps it onto
``lmdb.Transaction``; the memory backend onto sorted dicts with an undo log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from eventlog.storage.wakeup import Wakeup

__all__ = ["TABLES", "KVBackend", "KVTxn"]

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
