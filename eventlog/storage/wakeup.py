"""Waking subscribers when a commit lands: in this process and across processes.

LMDB has no notifications, so the store adds the cheapest one that works across processes:

- **Writer side** (:meth:`Wakeup.committed`, called by the backend right after every successful
  ``txn.commit()``): one non-blocking ``os.pwrite`` of one byte at offset 0 of the file
  ``notify`` in the store directory (no fsync, the content never changes: the write exists
  only to raise an inotify ``IN_MODIFY`` event; measured ~0.6 us), then a bump of this
  process's wake-up generation under a :class:`threading.Condition`.
- **Reader side**: one watcher thread per store and process (started by the first subscriber
  that waits) sleeps in ``select`` on an inotify descriptor watching ``notify``; an event bumps
  the generation and wakes every waiter. An idle subscriber therefore sleeps in the kernel and
  uses no CPU. Where inotify is missing (not Linux) or ``notify`` does not exist yet (a
  read-only store never opened by this version's writer) waiters poll the log instead, with an
  adaptive delay from 1 ms up to 40 ms (:data:`POLL_MIN`, :data:`POLL_MAX`).

No lost wake-up: a waiter reads :attr:`Wakeup.generation` *before* it reads the log and then
waits only while the generation is unchanged. A commit that the read missed happened after
that read began, and its signal (local bump, or the inotify event of its ``pwrite``, which the
watch set up before the first read queues) changes the generation.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import select
import sys
import threading
import weakref
from collections.abc import Callable

from eventlog.log import get_logger

__all__ = ["NOTIFY_FILE", "POLL_MAX", "POLL_MIN", "Wakeup"]

log = get_logger("eventlog.storage.wakeup")

#: The file in the store directory whose modification wakes other processes' subscribers.
NOTIFY_FILE = "notify"
#: Adaptive polling bounds (seconds) where no inotify watch is available.
POLL_MIN = 0.001
POLL_MAX = 0.04  # + the read: under the 50 ms latency target

_IN_MODIFY = 0x00000002
_IN_ATTRIB = 0x00000004
_IN_DELETE_SELF = 0x00000400
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = 0o2000000


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.inotify_init1  # noqa: B018 - probe the symbol
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


def _inotify_watch(path: str) -> int | None:
    """An inotify descriptor watching ``path`` for modifications, or None if unavailable."""
    if _LIBC is None:
        return None
    fd = int(_LIBC.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC))
    if fd < 0:
        log.warning("inotify_unavailable", path=path, errno=ctypes.get_errno())
        return None
    mask = _IN_MODIFY | _IN_ATTRIB | _IN_DELETE_SELF
    if int(_LIBC.inotify_add_watch(fd, os.fsencode(path), mask)) < 0:
        os.close(fd)
        return None
    return fd


class Wakeup:
    """One store's wake-up point in this process (the store owns one).

    ``generation`` changes on every commit seen (local, or another process's through
    inotify). Waiters call :meth:`wait` with the generation they read before reading the log.
    """

    def __init__(self, directory: str | None, *, readonly: bool) -> None:
        self._counter = itertools.count(1)
        self.generation = 0
        self._cond = threading.Condition(threading.Lock())
        self._waiting = 0
        self._listeners: list[Callable[[], None]] = []
        self._notify = None if directory is None else os.path.join(directory, NOTIFY_FILE)
        self._signal_fd: int | None = None
        self._watch_lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        self._watch_fd: int | None = None
        self._stop_pipe: tuple[int, int] | None = None
        self._closed = False
        if self._notify is not None and not readonly:
            try:
                self._signal_fd = os.open(
                    self._notify, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NONBLOCK, 0o600
                )
            except OSError as exc:  # subscribers of other processes will poll instead
                log.warning("notify_file_unavailable", path=self._notify, error=str(exc))
            else:
                # closed only when nothing can call committed() any more: closing it in
                # close() could let a late commit pwrite into a reused descriptor
                weakref.finalize(self, os.close, self._signal_fd)

    # -- the writer side: called after every successful commit -----------------------------
    def committed(self) -> None:
        """Signal a commit: wake other processes (inotify) and this process's waiters."""
        fd = self._signal_fd
        if fd is not None:
            try:  # noqa: SIM105 - contextlib.suppress costs more than the pwrite
                os.pwrite(fd, b"\x01", 0)
            except OSError:  # a committed write never fails on its signal
                pass
        self.poke()

    def poke(self) -> None:
        """Bump the generation and wake this process's waiters (also used by ``close``).

        Lock-free when nobody waits: the generation takes a fresh value of an atomic counter
        (so it always differs from any value a waiter saw), then waiters are woken only if a
        waiter registered - a waiter registers *before* it checks the generation, so either it
        sees the new value or this sees it registered.
        """
        self.generation = next(self._counter)
        if self._waiting:
            with self._cond:
                self._cond.notify_all()
        if self._listeners:
            for listener in tuple(self._listeners):
                listener()

    # -- the reader side -------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """True once the store closed: waiters stop."""
        return self._closed

    def live(self) -> bool:
        """Make sure other processes' commits wake this process; False means: poll.

        In-memory stores have no other processes: always live.
        """
        if self._notify is None:
            return True
        if self._watcher is not None:
            return True
        with self._watch_lock:
            if self._watcher is not None:
                return True
            if self._closed or not os.path.exists(self._notify):
                return False
            fd = _inotify_watch(self._notify)
            if fd is None:
                return False
            self._watch_fd = fd
            self._stop_pipe = os.pipe()
            self._watcher = threading.Thread(
                target=self._watch, name=f"eventlog-wakeup:{self._notify}", daemon=True
            )
            self._watcher.start()
            return True

    def _watch(self) -> None:
        fd, stop = self._watch_fd, self._stop_pipe
        assert fd is not None
        assert stop is not None
        while True:
            try:
                ready, _, _ = select.select([fd, stop[0]], [], [])
            except OSError:
                return
            if stop[0] in ready:
                return
            with contextlib.suppress(BlockingIOError):
                while os.read(fd, 4096):
                    pass
            self.poke()

    def wait(self, seen: int, timeout: float | None) -> bool:
        """Block until the generation differs from ``seen`` (True) or ``timeout`` passes."""
        with self._cond:
            self._waiting += 1  # before checking: see poke()
            try:
                return self._cond.wait_for(lambda: self.generation != seen, timeout)
            finally:
                self._waiting -= 1

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` (from the committing or watcher thread) on every wake-up."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[], None]) -> None:
        """Stop calling ``listener``."""
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def close(self) -> None:
        """Stop the watcher thread, close its descriptors and wake every waiter.

        The signal descriptor stays open until this object is collected (see ``__init__``).
        """
        with self._watch_lock:
            self._closed = True
            watcher, self._watcher = self._watcher, None
            stop, self._stop_pipe = self._stop_pipe, None
            watch_fd, self._watch_fd = self._watch_fd, None
        if watcher is not None and stop is not None:
            os.write(stop[1], b"x")
            watcher.join()
        for fd in (watch_fd, *(stop or ())):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.poke()
