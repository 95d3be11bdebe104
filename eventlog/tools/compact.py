"""``eventlog compact``: give a store's free space back, on LMDB or PostgreSQL.

LMDB: :func:`eventlog.storage.lmdb_compact.compact_lmdb` (a compacted copy renamed into
place while no other process has the store open). PostgreSQL: ``VACUUM (ANALYZE)`` of the
store's tables, or ``VACUUM (FULL, ANALYZE)`` with ``full=True``. A memory store has
nothing to compact.

>>> import tempfile
>>> from eventlog import RunStore
>>> path = tempfile.mkdtemp() + "/store"
>>> RunStore.open(path).close()
>>> report = compact_store(path)
>>> report.backend, report.bytes_after <= report.bytes_before
('lmdb', True)
"""

from __future__ import annotations

import os
import time

import msgspec

from eventlog.errors import ConfigError
from eventlog.storage.config import is_postgres_url
from eventlog.storage.lmdb_compact import compact_lmdb
from eventlog.storage.opening import open_backend

__all__ = ["CompactReport", "compact_store"]


class CompactReport(msgspec.Struct, frozen=True):
    """What ``compact`` did: the store's bytes before and after, and the time it took.

    LMDB: the size of ``data.mdb``; PostgreSQL: the size of the schema's tables with their
    indexes and TOAST (a plain VACUUM rarely shrinks it: it makes the space reusable).
    """

    location: str
    backend: str
    bytes_before: int
    bytes_after: int
    seconds: float
    full: bool = False


def compact_store(
    location: str | os.PathLike[str], *, wait: float = 0.0, full: bool = False
) -> CompactReport:
    """Compact the store at ``location`` (an LMDB directory or a ``postgresql://`` URL).

    LMDB: ``wait`` seconds for other processes to close the store, then
    :class:`~eventlog.errors.StoreBusyError`; ``full`` does not apply. PostgreSQL:
    ``full=True`` runs VACUUM FULL (the tables are locked while each is rewritten).
    """
    if not is_postgres_url(location):
        if full:
            raise ConfigError("--full applies to PostgreSQL stores (LMDB compaction is full)")
        done = compact_lmdb(location, wait=wait)
        return CompactReport(done.path, "lmdb", done.bytes_before, done.bytes_after, done.seconds)
    from eventlog.storage.postgres.backend import PostgresBackend

    started = time.monotonic()
    backend = open_backend(location, create=False).backend
    try:
        assert isinstance(backend, PostgresBackend)
        before = backend.info()["file_bytes"]
        backend.vacuum(full=full)
        after = backend.info()["file_bytes"]
        where = backend.path or str(location)
    finally:
        backend.close()
    return CompactReport(where, "postgresql", before, after, time.monotonic() - started, full)
