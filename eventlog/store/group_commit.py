"""Group commit: every write of a process shares one write transaction with its neighbours.

A durable commit costs one or two disk flushes (~0.3 ms here), so one commit per append caps a
store at a few thousand appends per second. :class:`GroupCommitter` queues every write request
of the process (threads of the sync API, tasks of the async API) and lets one *leader* at a
time apply every request waiting at that moment in one write transaction with one commit:

- **No fixed wait.** A lonely writer finds no leader, becomes the leader and commits at once;
  while a commit is flushing, new requests queue up and the next leader takes them all.
- **Each request keeps its own semantics.** A request that raises (a conflicting
  ``expected_seq``, an unknown run, a terminal run, a projector error) leaves nothing written
  and its caller gets its exception; its neighbours commit (on LMDB: those before it commit,
  it runs again alone, those after it follow in another transaction). Requests are applied
  in arrival order, so per-run order is the order in which callers' requests arrived.
- **Each caller returns only after its own data is committed** (durable in durable mode):
  followers are woken after the group's commit.
- **Bounded groups.** At most ``max_requests`` requests and about ``max_bytes`` bytes of
  encoded events per transaction (the backend stops adding requests once the bytes written
  pass the cap; the rest go into the next group), so one group's latency stays bounded.

Leadership is handed from caller to caller: a sync caller that leads applies groups until its
own request is done, then hands the lead to the oldest waiting sync caller (or, when only
async callers wait, to a drain thread), so no caller leads for more than its own share.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from _thread import allocate_lock as _allocate_lock
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from eventlog.storage.kv import KVTxn

if TYPE_CHECKING:  # the sync API must not import asyncio
    import asyncio

__all__ = ["GroupCommitter", "GroupRunner", "LoopWaker", "PendingWrite", "loop_waker"]

T = TypeVar("T")


class GroupRunner(Protocol):
    """Runs a group of requests in one write transaction (the backend's ``write_group``)."""

    def __call__(
        self, fns: Sequence[Callable[[KVTxn], Any]], max_bytes: int
    ) -> list[tuple[bool, Any]]:
        """Run a prefix of ``fns``; ``(ok, result or exception)`` for each one run."""
        ...


class _Wakeup:
    """A one-shot wake-up for one waiting thread: a C lock, cheaper than ``threading.Event``."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = _allocate_lock()
        self._lock.acquire()

    def set(self) -> None:
        self._lock.release()

    def wait(self) -> None:
        self._lock.acquire()


class PendingWrite(Generic[T]):
    """A queued write of :meth:`GroupCommitter.submit_nowait`: read :meth:`outcome` once done."""

    __slots__ = ("done", "event", "fn", "lead", "notify", "ok", "result")

    def __init__(self, fn: Callable[[KVTxn], T], notify: Callable[[], None] | None) -> None:
        self.fn = fn
        self.notify = notify  # async callers: called (from the leader's thread) when done
        self.event = _Wakeup() if notify is None else None
        self.done = False
        self.lead = False
        self.ok = False
        self.result: Any = None

    def outcome(self) -> T:
        """The write's result, or its exception raised (call it after ``notify``)."""
        if self.ok:
            value: T = self.result
            return value
        raise self.result


class LoopWaker:
    """Resolves an event loop's awaited writes, one ``call_soon_threadsafe`` per batch.

    The committing thread calls :meth:`wake` for each async caller of a group; the first call
    schedules one :meth:`_drain` on the loop (a self-pipe write), later ones only queue their
    future until it runs - so a group of 64 tasks costs the loop one wake-up, not 64.
    """

    __slots__ = ("__weakref__", "_lock", "_loop", "_ready", "_scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = _allocate_lock()
        self._ready: list[asyncio.Future[None]] = []
        self._scheduled = False

    def wake(self, future: asyncio.Future[None]) -> None:
        """Resolve ``future`` on its loop (any thread); ``RuntimeError``: the loop is closed."""
        with self._lock:
            self._ready.append(future)
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self._loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop is closed: nobody awaits these futures any more
            with self._lock:
                self._ready.clear()
                self._scheduled = False
            raise

    def _drain(self) -> None:
        with self._lock:
            ready, self._ready = self._ready, []
            self._scheduled = False
        for future in ready:
            if not future.done():  # a cancelled caller's future stays cancelled
                future.set_result(None)


_wakers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopWaker] = (
    weakref.WeakKeyDictionary()
)
_wakers_lock = threading.Lock()


def loop_waker(loop: asyncio.AbstractEventLoop) -> LoopWaker:
    """The :class:`LoopWaker` of ``loop`` (one per loop, made on first use)."""
    waker = _wakers.get(loop)
    if waker is None:
        with _wakers_lock:
            waker = _wakers.get(loop)
            if waker is None:
                waker = _wakers[loop] = LoopWaker(loop)
    return waker


_committers: weakref.WeakSet[GroupCommitter] = weakref.WeakSet()


def _reset_in_child() -> None:
    # After os.fork() the child has only the forking thread: a lock held, a lead taken or a
    # queue filled by another thread of the parent would make the child's writes wait forever.
    # Start afresh, so a write reaches the backend, whose fork guard raises a clear StoreError.
    for committer in list(_committers):
        committer.reset_after_fork()


os.register_at_fork(after_in_child=_reset_in_child)


class GroupCommitter:
    """The one writer of a backend in this process (see the module docstring)."""

    def __init__(
        self,
        run: GroupRunner,
        write: Callable[[Callable[[KVTxn], Any]], Any],
        *,
        max_requests: int = 256,
        max_bytes: int = 8 << 20,
    ) -> None:
        self._run = run
        self._write = write  # one request alone: the backend's plain write
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._queue: deque[PendingWrite[Any]] = deque()
        self._busy = False
        self._drainer: ThreadPoolExecutor | None = None
        #: groups committed and requests applied (for tests, stats and the benchmarks)
        self.groups = 0
        self.requests = 0
        _committers.add(self)

    def reset_after_fork(self) -> None:
        """Forget the parent's lock, queue, lead and drain thread (internal: the fork hook)."""
        self._lock = threading.Lock()
        self._queue = deque()
        self._busy = False
        self._drainer = None

    @property
    def busy(self) -> bool:
        """True while a caller or the drain thread leads (writes then queue up)."""
        return self._busy

    @property
    def queued(self) -> int:
        """How many requests wait for the next group."""
        return len(self._queue)

    # -- submitting ----------------------------------------------------------------------
    def submit(self, fn: Callable[[KVTxn], T]) -> T:
        """Apply ``fn`` in a shared write transaction; return its result once committed."""
        with self._lock:
            alone = not self._busy
            self._busy = True
            if not alone:
                pending: PendingWrite[T] = PendingWrite(fn, None)
                self._queue.append(pending)
        if alone:  # nobody leads: commit at once (no queue, no wait)
            try:
                value: T = self._write(fn)
                return value
            finally:
                self.groups += 1
                self.requests += 1
                self._hand_off()
        assert pending.event is not None
        pending.event.wait()
        if not pending.done:  # handed the lead: apply groups until ours is done
            self._lead(pending)
        return pending.outcome()

    def submit_nowait(
        self, fn: Callable[[KVTxn], T], notify: Callable[[], None]
    ) -> PendingWrite[T]:
        """Queue ``fn`` without blocking; ``notify()`` runs (on another thread) when it is done.

        Used by the async API: the caller awaits a future that ``notify`` resolves, and reads
        the result with ``pending.outcome()``. A drain thread leads when nobody else does.
        """
        pending: PendingWrite[T] = PendingWrite(fn, notify)
        with self._lock:
            self._queue.append(pending)
            start = not self._busy
            self._busy = True
        if start:
            self._drain_pool().submit(self._lead, None)
        return pending

    # -- leading -------------------------------------------------------------------------
    def _lead(self, own: PendingWrite[Any] | None) -> None:
        """Apply groups until ``own`` is done (or, for a drain thread, the queue is empty)."""
        try:
            while True:
                with self._lock:
                    if not self._queue or (own is not None and own.done):
                        break
                    n = min(len(self._queue), self.max_requests)
                    group = [self._queue.popleft() for _ in range(n)]
                self._apply(group)
        finally:
            self._hand_off()

    def _apply(self, group: list[PendingWrite[Any]]) -> None:
        try:
            results = self._run([p.fn for p in group], self.max_bytes)
        except BaseException as exc:  # the group's transaction failed as a whole
            results = [(False, exc)] * len(group)
        done = len(results)
        if done < len(group):  # the byte cap stopped the group: the rest go first next time
            with self._lock:
                self._queue.extendleft(reversed(group[done:]))
        self.groups += 1
        self.requests += done
        for pending, (ok, result) in zip(group, results, strict=False):
            pending.ok, pending.result, pending.done = ok, result, True
            if pending.notify is not None:
                # a RuntimeError: the caller's event loop is gone, nobody waits for the result
                with contextlib.suppress(RuntimeError):
                    pending.notify()
            elif pending.event is not None:
                pending.event.set()

    def _hand_off(self) -> None:
        with self._lock:
            if not self._queue:
                self._busy = False
                return
            nxt = next((p for p in self._queue if p.event is not None), None)
            if nxt is not None:
                nxt.lead = True
            elif self._queue:  # only async callers wait: a drain thread leads
                self._drain_pool().submit(self._lead, None)
                return
            else:
                self._busy = False
                return
        assert nxt.event is not None
        nxt.event.set()

    def _drain_pool(self) -> ThreadPoolExecutor:
        if self._drainer is None:
            self._drainer = ThreadPoolExecutor(1, thread_name_prefix="eventlog-commit")
        return self._drainer

    def close(self) -> None:
        """Stop the drain thread (queued requests are finished first)."""
        drainer, self._drainer = self._drainer, None
        if drainer is not None:
            drainer.shutdown(wait=True)
