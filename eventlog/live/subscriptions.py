"""Subscriptions: catch up from the log, then deliver new events live, in position order.

A :class:`Subscription` (``store.subscribe(...)``) reads the log in short read transactions of
at most ``batch_size`` positions (never a transaction held while waiting: long LMDB readers make
the file grow), then waits for the next commit through the store's
:class:`~eventlog.storage.wakeup.Wakeup` (inotify across processes, a condition in this
process, adaptive
polling where neither is available). Filters (``run_id``, ``event_types``) are applied to what
was read; they never change the order.

Ordering: positions are assigned inside LMDB's single write transaction and become visible
only when it commits, so every snapshot holds a prefix of the log (minus deleted runs'
positions, which are absent forever). The subscription's cursor only moves forward to the last
position it read; nothing can later appear below it. Hence no gap, no duplicate, never a lower
position after a higher one.

Persistent consumers (``name=...``) store their acknowledged position in the ``consumers``
table. ``ack="auto"`` acknowledges everything delivered when the caller asks for the next
batch (and before waiting idle, and on a clean exit of a ``with`` block); ``ack="manual"``
leaves it to :meth:`Subscription.ack`. A restarted consumer resumes after its acknowledged
position: at-least-once delivery, whose redelivery window is exactly the events delivered after
the last ack - with ``ack="auto"``, at most the one batch (``batch_size`` positions) being
processed when the consumer died.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Literal, Protocol
from uuid import UUID

from eventlog.engine.appends import AppendRequest
from eventlog.engine.core import Engine
from eventlog.engine.retention import pruned_between
from eventlog.errors import StoreClosedError, StoreError
from eventlog.live.consumers import (
    Ack,
    ConsumerInfo,
    check_consumer_name,
    consumer_record,
    put_consumer,
)
from eventlog.model.records import EventRecord
from eventlog.model.retention import PrunedRange
from eventlog.model.validation import check_seq, uuid_of
from eventlog.storage.keys import pack_u64, unpack_u64
from eventlog.storage.kv import KVBackend, KVTxn
from eventlog.storage.wakeup import POLL_MAX, POLL_MIN, Wakeup

__all__ = [
    "AckMode",
    "ConsumerInfo",
    "Subscription",
    "SubscriptionSource",
    "check_consumer_name",
    "read_batch",
]

AckMode = Literal["auto", "manual"]
DEFAULT_BATCH = 256


def read_batch(
    engine: Engine,
    txn: KVTxn,
    after: int,
    limit: int,
    run_id: UUID | None = None,
    types: frozenset[str] | None = None,
) -> tuple[list[EventRecord], int, bool]:
    """Read at most ``limit`` log positions after ``after``: the matches, the cursor, ``dense``.

    The cursor is the last position read (``after`` when none): filtered-out events advance it
    too. ``dense``: every position up to the cursor still holds its event (nothing deleted or
    pruned there, so there is no pruned range to look for). The positions and their events
    are one page (one query on PostgreSQL); a run filter compares each entry's stream id
    before decoding anything.
    """
    out: list[EventRecord] = []
    cursor = after
    held = 0  # positions whose event is still there
    want = None if run_id is None else run_id.bytes
    ids: dict[bytes, UUID] = {}
    read = engine.reads.read_followed
    for key, ref, value, owner in txn.follow(
        "positions", pack_u64(after + 1), limit, "events", "stream_ids"
    ):
        cursor = unpack_u64(key)
        if ref:
            held += value is not None
            if want is None or owner == want:
                record = read(ref, value, owner, ids)
                if types is None or record.type in types:
                    out.append(record)
    return out, cursor, held == cursor - after


class SubscriptionSource(Protocol):
    """What a subscription reads from: a store's backend, engine and wake-up point.

    The store's shared core (:class:`eventlog.store.core.StoreCore`) is one.
    """

    @property
    def backend(self) -> KVBackend:
        """The store's backend (short read transactions; a consumer's acks are writes)."""
        ...

    @property
    def engine(self) -> Engine:
        """The store's engine (reads the log)."""
        ...

    @property
    def wakeup(self) -> Wakeup:
        """The store's wake-up point (signalled after every commit)."""
        ...

    def append_acked(self, requests: Iterable[AppendRequest], ack: Ack) -> list[list[EventRecord]]:
        """``append_many(requests, ack=ack)`` of the store (one transaction, group commit)."""
        ...


class Subscription:
    """An iterator (sync and async) over the log's events in position order, then live ones.

    Made by ``store.subscribe(...)`` (see :meth:`eventlog.RunStore.subscribe` for the
    arguments). Iteration ends when ``timeout`` seconds pass with no new event, when
    :meth:`close` is called (from any thread), or when the store closes.

    >>> from eventlog import RunStore
    >>> from eventlog.events import TextDelta
    >>> store = RunStore.in_memory()
    >>> run = store.create_run(store.ensure_session(), provider="p", model="m")
    >>> _ = store.append_events(run.id, [TextDelta("a"), TextDelta("b")])
    >>> with store.subscribe(timeout=0.01) as sub:
    ...     [(r.position, r.event.delta) for r in sub]
    [(1, 'a'), (2, 'b')]
    """

    def __init__(
        self,
        store: SubscriptionSource,
        *,
        after_position: int = 0,
        run_id: UUID | str | None = None,
        event_types: Iterable[str] | None = None,
        name: str | None = None,
        ack: AckMode = "auto",
        batch_size: int = DEFAULT_BATCH,
        timeout: float | None = None,
    ) -> None:
        self._backend = store.backend
        self._engine = store.engine
        self._wakeup = store.wakeup
        self._append_acked = store.append_acked
        after = check_seq(after_position, "after_position") or 0
        rid = None if run_id is None else uuid_of(run_id, "run_id")
        self._run = rid
        if isinstance(event_types, str):
            raise TypeError("event_types must be a collection of type names, not one str")
        self._types = None if event_types is None else frozenset(map(str, event_types))
        if ack not in ("auto", "manual"):
            raise ValueError(f"ack must be 'auto' or 'manual', not {ack!r}")
        self._auto = ack == "auto"
        size = check_seq(batch_size, "batch_size")
        if not size:
            raise ValueError("batch_size must be at least 1")
        self._limit = size
        if timeout is not None and (not isinstance(timeout, int | float) or timeout < 0):
            raise ValueError(f"timeout must be None or a number of seconds >= 0, got {timeout!r}")
        self.timeout = timeout
        self.name = None if name is None else check_consumer_name(name)
        self._acked = after
        if self.name is not None:
            if self._backend.readonly:
                raise StoreError(
                    f"consumer {self.name!r}: a persistent consumer stores its position, so it "
                    "needs a store opened for writing (not readonly=True)"
                )
            after = self._acked = self._backend.write(lambda txn: self._register(txn, after))
        self._cursor = after  # the last position read from the log
        self._handed = after  # everything up to here was handed to the caller
        self._buffer: list[EventRecord] = []
        self._next = 0
        self._batch_end = after
        self._pending: list[PrunedRange] = []  # read, not yet crossed
        self._crossed: list[PrunedRange] = []  # crossed: the caller can tell
        self._fresh = 0  # how many of _crossed take_pruned() has not returned yet
        self._seen: set[PrunedRange] = set()
        self._closed = False
        self._wakeup.live()  # watch other processes' commits before the first read

    def _register(self, txn: KVTxn, after: int) -> int:
        assert self.name is not None
        stored = consumer_record(txn, self.name)
        if stored is not None:
            return stored.position
        put_consumer(txn, self.name, after)
        return after

    # -- state -----------------------------------------------------------------------------
    @property
    def position(self) -> int:
        """Every matching event up to this position has been delivered."""
        return self._handed

    @property
    def acked(self) -> int | None:
        """The stored (acknowledged) position of a persistent consumer; None when unnamed."""
        return None if self.name is None else self._acked

    def _ack_target(self, position: int | None, what: str) -> tuple[str, int]:
        """``(name, position)`` to acknowledge: delivered, not below the last ack."""
        if self.name is None:
            raise ValueError(f"{what}() needs a persistent consumer: subscribe(name=...)")
        target = self._handed if position is None else check_seq(position, "position") or 0
        if target > self._handed:
            raise ValueError(
                f"consumer {self.name!r}: cannot ack position {target}, only positions up to "
                f"{self._handed} were delivered; ack what you have processed"
            )
        if target < self._acked:
            raise ValueError(
                f"consumer {self.name!r}: cannot ack position {target}, it already acknowledged "
                f"{self._acked}; acknowledgements only move forward"
            )
        return self.name, target

    def ack(self, position: int | None = None) -> None:
        """Store ``position`` (default: :attr:`position`) as this consumer's resume point.

        Only for a named consumer. Refuses a position beyond what was delivered, or below the
        last acknowledged one (``ValueError``).
        """
        name, target = self._ack_target(position, "ack")
        if target == self._acked:
            return

        def store_ack(txn: KVTxn) -> None:
            stored = consumer_record(txn, name)
            if stored is not None and stored.position > target:
                raise ValueError(
                    f"consumer {name!r}: another subscription of it acknowledged position "
                    f"{stored.position}, beyond {target}; run one subscription per consumer name"
                )
            put_consumer(txn, name, target)

        self._backend.write(store_ack)
        self._acked = target

    def ack_with(
        self, requests: Iterable[AppendRequest], position: int | None = None
    ) -> list[list[EventRecord]]:
        """Append ``requests`` and acknowledge ``position`` in one transaction: both or neither.

        ``position`` defaults to :attr:`position` (everything delivered so far). The store's
        ``append_many(requests, ack=Ack(name, position))``: a process manager writes what it
        derived from the events it read together with its checkpoint, so after a crash it
        resumes exactly after the last input whose output was committed (exactly-once
        effects). Acknowledging the same position again is allowed (several appends for one
        input). Returns ``append_many``'s records. From asyncio, ``await sub.aack_with(...)``.

        >>> from eventlog import AppendRequest, RunStore
        >>> from eventlog.events import TextDelta
        >>> store = RunStore.in_memory()
        >>> run = store.create_run(store.ensure_session(), provider="p", model="m")
        >>> _ = store.append_event(run.id, TextDelta("in"))
        >>> out = store.create_run(store.ensure_session(), provider="p", model="m")
        >>> with store.subscribe(name="copier", ack="manual", timeout=0) as sub:
        ...     for record in sub:
        ...         if record.run_id == run.id:
        ...             _ = sub.ack_with([AppendRequest(out.id, [TextDelta("out")])])
        >>> [(c.name, c.position) for c in store.consumers()]
        [('copier', 1)]
        """
        name, target = self._ack_target(position, "ack_with")
        records = self._append_acked(requests, Ack(name, target))
        self._acked = target
        return records

    async def aack_with(
        self, requests: Iterable[AppendRequest], position: int | None = None
    ) -> list[list[EventRecord]]:
        """:meth:`ack_with` for asyncio: the commit runs in a worker thread, off the loop."""
        import asyncio

        reqs = list(requests)
        return await asyncio.to_thread(self.ack_with, reqs, position)

    def _ack_due(self) -> bool:
        return self.name is not None and self._auto and self._handed > self._acked

    def _auto_ack(self) -> None:
        if self._ack_due():
            self.ack(self._handed)

    @property
    def pruned(self) -> list[PrunedRange]:
        """The pruned ranges this subscription has read across, in position order.

        A range is added before the first event after its start is delivered (or when the
        subscription reads past it with nothing to deliver): events between the last one
        delivered and the next were removed by ``store.prune``, not skipped.
        """
        return list(self._crossed)

    def take_pruned(self) -> list[PrunedRange]:
        """The ranges crossed since the last call (see :attr:`pruned`)."""
        fresh = self._crossed[len(self._crossed) - self._fresh :] if self._fresh else []
        self._fresh = 0
        return fresh

    def _cross(self, upto: int | None) -> None:
        """Move the pending ranges starting at or below ``upto`` (None: all) to crossed."""
        while self._pending and (upto is None or self._pending[0].first <= upto):
            self._crossed.append(self._pending.pop(0))
            self._fresh += 1

    # -- reading ---------------------------------------------------------------------------
    def _take(self) -> EventRecord | None:
        if self._next >= len(self._buffer):
            return None
        record = self._buffer[self._next]
        self._next += 1
        self._cross(record.position)
        self._handed = self._batch_end if self._next == len(self._buffer) else record.position
        return record

    def _read(self, txn: KVTxn) -> tuple[list[EventRecord], int, list[PrunedRange]]:
        after = self._cursor
        records, cursor, dense = read_batch(
            self._engine, txn, after, self._limit, self._run, self._types
        )
        # a dense page has no removed position: only a gap costs the look for pruned ranges
        return records, cursor, [] if dense else pruned_between(txn, after, cursor)

    def _poll(self) -> bool | None:
        """One short read: True = records buffered, None = read past filtered ones, False = idle."""
        after = self._cursor
        try:
            records, cursor, ranges = self._backend.read(self._read)
        except StoreClosedError:
            if self._wakeup.closed:  # the store closed under a running iteration: it ends
                return False
            raise
        if cursor <= after:
            self._cross(None)  # idle: every range read is behind the position
            return False
        self._cursor = cursor
        for found in ranges:
            if found not in self._seen:  # a range longer than one read is read again
                self._seen.add(found)
                self._pending.append(found)
        if not records:
            self._cross(None)
            self._handed = cursor  # nothing to deliver up to here
            return None
        self._buffer, self._next, self._batch_end = records, 0, cursor
        return True

    def _stopped(self) -> bool:
        return self._closed or self._wakeup.closed

    def _wait_plan(
        self, deadline: float | None, delay: float, live: bool
    ) -> tuple[float | None, float]:
        """How long to wait now (None = until woken) and the next polling delay; <0 = timed out.

        ``live``: what ``wakeup.live()`` said (False: poll).
        """
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return -1.0, delay
        if live:
            return remaining, POLL_MIN
        wait = delay if remaining is None else min(delay, remaining)
        return wait, min(delay * 2, POLL_MAX)

    def _deadline(self) -> float | None:
        return None if self.timeout is None else time.monotonic() + self.timeout

    def __iter__(self) -> Iterator[EventRecord]:
        return self

    # The sync and async loops are the same steps; only the I/O differs (the async one runs
    # reads and acks in a worker thread and waits on a future the wake-up resolves).
    def __next__(self) -> EventRecord:
        record = self._take()
        if record is not None:
            return record
        self._auto_ack()
        deadline, delay = self._deadline(), POLL_MIN
        while not self._stopped():
            seen = self._wakeup.generation
            got = self._poll()
            if got:
                record = self._take()
                assert record is not None
                return record
            if got is None:
                continue
            self._auto_ack()
            wait, delay = self._wait_plan(deadline, delay, self._wakeup.live())
            if wait is not None and wait < 0:
                break
            self._wakeup.wait(seen, wait)
        raise StopIteration

    # -- async -----------------------------------------------------------------------------
    # asyncio is imported in the methods that await (where a loop runs, so it is loaded): a
    # sync program that never iterates asynchronously does not load it.
    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> EventRecord:
        import asyncio

        record = self._take()
        if record is not None:
            return record
        await self._async_auto_ack()
        deadline, delay = self._deadline(), POLL_MIN
        while not self._stopped():
            seen = self._wakeup.generation
            got = await asyncio.to_thread(self._poll)  # short, but never on the event loop
            if got:
                record = self._take()
                assert record is not None
                return record
            if got is None:
                continue
            await self._async_auto_ack()
            # live() may (re)connect a listener to the server: never on the event loop
            live = await asyncio.to_thread(self._wakeup.live)
            wait, delay = self._wait_plan(deadline, delay, live)
            if wait is not None and wait < 0:
                break
            await self._async_wait(seen, wait)
        raise StopAsyncIteration

    async def _async_auto_ack(self) -> None:
        import asyncio

        if self._ack_due():
            await asyncio.to_thread(self.ack, self._handed)

    async def _async_wait(self, seen: int, timeout: float | None) -> None:
        import asyncio

        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()

        def done() -> None:
            if not woken.done():
                woken.set_result(None)

        def wake() -> None:  # runs on the committing or watcher thread
            with contextlib.suppress(RuntimeError):  # the loop is closed
                loop.call_soon_threadsafe(done)

        self._wakeup.add_listener(wake)
        try:
            if self._wakeup.generation == seen and not self._stopped():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken, timeout)
        finally:
            self._wakeup.remove_listener(wake)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None and not self._wakeup.closed:
            await self._async_auto_ack()
        self.close()

    # -- closing ---------------------------------------------------------------------------
    def close(self) -> None:
        """End the iteration (thread-safe: a waiting iterator returns at once). Idempotent.

        Does not acknowledge anything (a clean exit from a ``with`` block does, in auto mode).
        """
        if not self._closed:
            self._closed = True
            self._wakeup.poke()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None and not self._wakeup.closed:
            self._auto_ack()
        self.close()

    def __repr__(self) -> str:
        who = "" if self.name is None else f"name={self.name!r}, "
        return f"Subscription({who}position={self._handed}, closed={self._closed})"
