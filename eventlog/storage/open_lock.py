"""Who has an LMDB store open: a shared ``flock`` per process, exclusive for ``compact``.

Compaction rewrites ``data.mdb`` into a new file and renames it into place. That is safe only
when no process has the old file open (see docs/explanation/compaction.md: LMDB's lock file
and every open map belong to the old file), so every process that opens a store holds
``eventlog.open.lock`` shared for as long as it has the environment open, and ``compact``
takes it exclusive. A second file, ``eventlog.compact.lock``, gives compaction priority:
``compact`` holds it exclusive while it waits for the open ones to close, and an opener takes
it shared only for the moment of taking the open lock - so a stream of new openers cannot
starve a waiting compaction, and an opener waits while one runs.

``flock`` locks belong to the open file description: the kernel drops them when the process
dies (a killed compaction never leaves the store locked), and a child forked while the
store was open holds the lock with its parent until it exits or execs.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from eventlog.errors import StoreBusyError, StoreError
from eventlog.log import get_logger

__all__ = ["COMPACT_LOCK", "OPEN_LOCK", "OPEN_WAIT_SECONDS", "OpenLock", "exclusive_use"]

OPEN_LOCK = "eventlog.open.lock"
COMPACT_LOCK = "eventlog.compact.lock"
#: how long opening a store waits for a compaction in another process to finish
OPEN_WAIT_SECONDS = 600.0
_POLL = 0.01

log = get_logger("eventlog.lmdb")


def _open_file(path: str) -> int | None:
    """A descriptor of the lock file (created if it can be), None if neither works."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        pass
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)  # flock works on a read-only fd
    except OSError:
        return None


def _try(fd: int, how: int) -> bool:
    try:
        fcntl.flock(fd, how | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _take(fd: int, how: int, wait: float) -> bool:
    """Take the lock, polling up to ``wait`` seconds; False when it stayed taken."""
    deadline = time.monotonic() + wait
    while not _try(fd, how):
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL)
    return True


class OpenLock:
    """The shared open lock of one store directory, held while this process has it open."""

    def __init__(self, realpath: str, wait: float = OPEN_WAIT_SECONDS) -> None:
        self._fd: int | None = None
        intent = _open_file(os.path.join(realpath, COMPACT_LOCK))
        fd = _open_file(os.path.join(realpath, OPEN_LOCK))
        try:
            if fd is None:
                # a directory this process cannot create files in and that has no lock file
                # yet: nobody compacted it (compact creates both files first)
                return
            if intent is not None and not _try(intent, fcntl.LOCK_SH):
                log.info("store_open_waits_for_compaction", path=realpath)
                if not _take(intent, fcntl.LOCK_SH, wait):
                    raise StoreBusyError(
                        f"store {realpath} is being compacted by another process (eventlog "
                        f"compact) for more than {wait:.0f}s; open it again when it is done"
                    )
            if not _take(fd, fcntl.LOCK_SH, wait):
                raise StoreBusyError(
                    f"store {realpath} is being compacted by another process; open it again "
                    "when it is done"
                )
            self._fd, fd = fd, None
        finally:
            if intent is not None:
                os.close(intent)  # closing drops the intent lock: only the open lock stays
            if fd is not None:
                os.close(fd)

    def release(self) -> None:
        """Drop the lock (the environment is closed)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


@contextmanager
def exclusive_use(realpath: str, wait: float) -> Iterator[None]:
    """Hold the store alone: no other process has it open, none opens it until the exit.

    Waits up to ``wait`` seconds for the processes that have it open to close it, then
    raises :class:`~eventlog.errors.StoreBusyError`.
    """
    fds = []
    try:
        for name in (COMPACT_LOCK, OPEN_LOCK):
            path = os.path.join(realpath, name)
            try:
                fds.append(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644))
            except OSError as exc:
                raise StoreError(f"cannot create the lock file {path}: {exc}") from exc
        intent, opened = fds
        if not _take(intent, fcntl.LOCK_EX, wait):
            raise StoreBusyError(
                f"store {realpath} is being compacted by another process; wait for it"
            )
        if not _take(opened, fcntl.LOCK_EX, wait):
            raise StoreBusyError(
                f"store {realpath} is open in another process (a writer, a reader or a "
                "subscriber): compaction needs it alone; close them, or wait for them with "
                "`eventlog compact --wait SECONDS`"
            )
        yield
    finally:
        for fd in fds:
            os.close(fd)
