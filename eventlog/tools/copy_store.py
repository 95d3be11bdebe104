"""Copying a whole store between backends (LMDB -> PostgreSQL and back): ``copy_store``.

Both backends hold the same key-value tables (:data:`eventlog.storage.kv.TABLES`) with the same
bytes in the same key order, so a copy is exact: every event keeps its run, seq, position, time and
id; runs, sessions, views, idempotency keys and consumer positions come along. The source is
read in one snapshot (a writer may keep appending to it meanwhile); the destination must hold
no data yet. Rows go over in batches of about ``batch_bytes``.

While the copy runs the destination carries a marker that makes every open refuse it ("an
incomplete copy"); the source's format stamp and the marker's removal are the last write. At
the end the destination is read back: the row count of every table and a SHA-256 over every
``(table, key, value)`` must equal the source's, or :class:`CopyMismatchError` is raised.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from os import PathLike
from typing import Protocol

from eventlog.errors import CopyMismatchError, StoreError
from eventlog.storage.blobs import copy_blobs
from eventlog.storage.keys import COPY_MARKER_KEY
from eventlog.storage.kv import TABLES, KVBackend, KVTxn
from eventlog.storage.opening import open_backend

__all__ = ["CopyReport", "copy_store"]

#: The tables copied row by row; artifact blobs (files on LMDB, the ``blobs`` table elsewhere)
#: are copied blob by blob after them (see :func:`eventlog.storage.blobs.copy_blobs`).
_ROW_TABLES = tuple(t for t in TABLES if t != "blobs")

#: Tables that may hold rows in an "empty" destination: what opening a store writes.
_SETUP_TABLES = frozenset({"meta", "projector_meta", "projections"})


@dataclass
class CopyReport:
    """What ``copy_store`` copied and checked."""

    rows: dict[str, int] = field(default_factory=dict)
    bytes: int = 0
    #: artifact blobs copied (each checked against its SHA-256)
    blobs: int = 0
    checksum: str = ""
    seconds: float = 0.0

    @property
    def total_rows(self) -> int:
        """Rows over every table."""
        return sum(self.rows.values())


class _Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...


def _digest_rows(digest: _Digest, table: str, key: bytes, value: bytes) -> None:
    digest.update(
        b"%s\x00%d:%s%d:%s" % (table.encode(), len(key), bytes(key), len(value), bytes(value))
    )


def _checksum(txn: KVTxn) -> tuple[dict[str, int], str]:
    digest = hashlib.sha256()
    rows: dict[str, int] = {}
    for table in _ROW_TABLES:
        n = 0
        for key, value in txn.scan(table, b""):
            if table == "meta" and key == COPY_MARKER_KEY:
                continue
            _digest_rows(digest, table, key, value)
            n += 1
        rows[table] = n
    return rows, digest.hexdigest()


def _count(txn: KVTxn) -> int:
    return sum(1 for table in _ROW_TABLES for _ in txn.scan(table, b""))


def _check_empty(dst: KVBackend, where: str) -> None:
    def holds(txn: KVTxn) -> str | None:
        for table in TABLES:
            if table in _SETUP_TABLES:
                continue
            for _ in txn.scan(table, b""):
                return table
        return None

    table = dst.read(holds)
    if table is not None:
        raise StoreError(
            f"the destination {where} already holds data (table {table!r}); copy into a new, "
            "empty store (a new directory, or a new schema: ?schema=NAME)"
        )


def _clear(txn: KVTxn) -> None:
    for table in _SETUP_TABLES:
        for key, _ in list(txn.scan(table, b"")):
            txn.discard(table, key)


def copy_store(
    source: str | PathLike[str],
    destination: str | PathLike[str],
    *,
    batch_bytes: int = 4 << 20,
    progress: Callable[[int, int], None] | None = None,
) -> CopyReport:
    """Copy the store at ``source`` into the new store at ``destination``; check; report.

    Either may be a directory (LMDB) or a ``postgresql://`` URL. ``progress(done, total)``
    is called with row counts as batches commit.

    >>> import tempfile
    >>> from eventlog import RunStore
    >>> from eventlog.events import TextDelta
    >>> src, dst = tempfile.mkdtemp() + "/a", tempfile.mkdtemp() + "/b"
    >>> with RunStore.open(src) as store:
    ...     run = store.create_run(store.ensure_session(), provider="p", model="m")
    ...     _ = store.append_event(run.id, TextDelta("hi"))
    >>> report = copy_store(src, dst)
    >>> with RunStore.open(dst, readonly=True) as copy:
    ...     [r.event for r in copy.list_events(run.id)]
    [TextDelta(delta='hi', timestamp=...)]
    """
    started = time.perf_counter()
    src = open_backend(source, readonly=True, create=False).backend
    try:
        dst = open_backend(destination, durability="fast", create=True).backend
        try:
            report = _copy(src, dst, dst.path or str(destination), batch_bytes, progress)
        finally:
            dst.close()
    finally:
        src.close()
    report.seconds = time.perf_counter() - started
    return report


def _copy(
    src: KVBackend,
    dst: KVBackend,
    where: str,
    batch_bytes: int,
    progress: Callable[[int, int], None] | None,
) -> CopyReport:
    _check_empty(dst, where)

    def start(txn: KVTxn) -> None:
        _clear(txn)
        txn.put("meta", COPY_MARKER_KEY, b"copying")

    dst.write(start)
    report = CopyReport()

    def send(table: str, items: list[tuple[bytes, bytes]]) -> None:
        dst.write(lambda txn: txn.put_many(table, items, append=True))

    def run(txn: KVTxn) -> tuple[dict[str, int], str, list[tuple[bytes, bytes]]]:
        total = _count(txn)
        done = 0
        digest = hashlib.sha256()
        rows: dict[str, int] = {}
        meta: list[tuple[bytes, bytes]] = []
        for table in _ROW_TABLES:
            items: list[tuple[bytes, bytes]] = []
            size = 0
            rows[table] = 0
            for key, value in txn.scan(table, b""):
                _digest_rows(digest, table, key, value)
                rows[table] += 1
                report.bytes += len(key) + len(value)
                if table == "meta":  # the format stamp goes last, with the marker's removal
                    meta.append((bytes(key), bytes(value)))
                    continue
                items.append((bytes(key), bytes(value)))
                size += len(key) + len(value)
                if size >= batch_bytes:
                    send(table, items)
                    done += len(items)
                    items, size = [], 0
                    if progress is not None:
                        progress(done, total)
            if items:
                send(table, items)
                done += len(items)
                if progress is not None:
                    progress(done, total)
        return rows, digest.hexdigest(), meta

    rows, checksum, meta = src.read(run)
    report.blobs = copy_blobs(src, dst)

    def finish(txn: KVTxn) -> None:
        txn.put_many("meta", meta)
        txn.discard("meta", COPY_MARKER_KEY)

    dst.write(finish)
    dst.flush()
    if progress is not None:
        progress(sum(rows.values()), sum(rows.values()))
    got_rows, got_checksum = dst.read(_checksum)
    if got_rows != rows or got_checksum != checksum:
        differ = [t for t in _ROW_TABLES if got_rows.get(t) != rows.get(t)]
        raise CopyMismatchError(
            f"the copy at {where} differs from the source (tables with other row counts: "
            f"{differ or 'none'}; checksum {got_checksum[:16]} vs {checksum[:16]}); "
            "delete the destination and copy again"
        )
    report.rows = rows
    report.checksum = checksum
    return report
