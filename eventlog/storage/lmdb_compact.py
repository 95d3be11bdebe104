"""Compacting an LMDB store: a copy without its free pages, renamed over ``data.mdb``.

LMDB reuses the pages that deletes free, but never gives them back: the file keeps its
largest size. :func:`compact_lmdb` writes a compacted copy (``mdb_env_copyfd2`` with
``MDB_CP_COMPACT``: live pages only, renumbered) to ``data.mdb.compacting`` in the store
directory, makes it durable, and renames it over ``data.mdb`` - all while it holds the store
alone (:func:`eventlog.storage.open_lock.exclusive_use`: no other process has it open, and
none opens it until the rename is done). Killed at any point, the store is the old file (the
rename has not happened: a partial copy is left, removed by the next compaction) or the new
one (it has): never a mix. Why the store must be held alone, rather than swapped under open
processes, is in docs/explanation/compaction.md.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import lmdb
import msgspec

from eventlog.errors import StoreError
from eventlog.storage.lmdb import open_in_this_process
from eventlog.storage.lmdb_env import open_env
from eventlog.storage.open_lock import exclusive_use

__all__ = ["TEMP_NAME", "CompactResult", "compact_lmdb"]

#: the compacted copy before it is renamed into place
TEMP_NAME = "data.mdb.compacting"


class CompactResult(msgspec.Struct, frozen=True):
    """What a compaction did: the file's size before and after, and how long it took."""

    path: str
    bytes_before: int
    bytes_after: int
    seconds: float


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def compact_lmdb(path: str | os.PathLike[str], *, wait: float = 0.0) -> CompactResult:
    """Compact the LMDB store in directory ``path`` (see the module docstring).

    ``wait``: seconds to wait for other processes that have the store open to close it;
    then :class:`~eventlog.errors.StoreBusyError`. A store open in this very process is a
    :class:`~eventlog.errors.StoreError` (close it first).
    """
    realpath = os.path.realpath(Path(path).expanduser())
    data = os.path.join(realpath, "data.mdb")
    if not os.path.isfile(data):
        raise StoreError(f"no eventlog store at {realpath}: check the path")
    if open_in_this_process(realpath):
        raise StoreError(
            f"store {realpath} is open in this process: close it (store.close()) before "
            "compacting it"
        )
    started = time.monotonic()
    with exclusive_use(realpath, wait):
        temp = os.path.join(realpath, TEMP_NAME)
        if os.path.exists(temp):
            os.unlink(temp)  # left by a compaction that was killed before its rename
        st = os.stat(data)
        before = st.st_size
        try:
            env = open_env(
                realpath,
                {"readonly": True, "max_dbs": 64, "subdir": True, "lock": True, "create": False},
            )
        except lmdb.Error as exc:
            raise StoreError(f"cannot open LMDB store at {realpath} to compact it: {exc}") from exc
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                os.fchmod(fd, st.st_mode & 0o777)  # the copy keeps the file's mode and owner
                if os.geteuid() == 0:
                    os.fchown(fd, st.st_uid, st.st_gid)
                env.copyfd(fd, compact=True)
                os.fsync(fd)
            finally:
                os.close(fd)
        except (lmdb.Error, OSError) as exc:
            env.close()
            if os.path.exists(temp):
                os.unlink(temp)
            raise StoreError(
                f"compacting {realpath} failed (the store is unchanged): {exc}"
            ) from exc
        env.close()
        os.replace(temp, data)
        _fsync_dir(realpath)
        after = os.stat(data).st_size
    return CompactResult(realpath, before, after, time.monotonic() - started)
