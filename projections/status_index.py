"""The status index: runs by status and session, newest first, with counts.

Keys (all in this projector's keyspace; ``inv`` = newest-first created_at, ``code`` = 1 byte):

- ``r`` + run_id → ``[code, created_us, session_id]`` (where the run's index keys are)
- ``a`` + inv + run_id, ``s`` + code + inv + run_id, ``S`` + session + inv + run_id,
  ``T`` + session + code + inv + run_id → the run's *listed record* (one ordered list per
  filter combination)
- ``c`` + code → count, ``C`` + session + code → count

The listed record (version 2 of this view; version 1 stored ``b""``) is the run record as
created, msgpack-encoded as a map *without* its two changing fields, ``status`` and
``updated_at``: a covering index. A page of ``limit`` runs after ``offset`` is one cursor walk
over one of the lists, so its cost grows with ``limit + offset``, never with the number of
runs, and it reads no run record: only each run's state, for those two fields
(:func:`listed_page`). The value is stored *open*: the header of a 9-entry map, then the 7
entries it has. Counts read at most 9 keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from itertools import chain, islice, repeat
from operator import attrgetter
from typing import Any, ClassVar
from uuid import UUID

import msgspec

from eventlog.engine.protocols import ProjectionReader, ProjectionTx
from eventlog.model.records import EventRecord, RunRecord
from eventlog.model.state import status_after
from eventlog.model.status import RunStatus
from projections._keys import STATUS_CODE, STATUS_OF_CODE, inv_micros, read_u64, u64
from projections.run_state import ListedState

__all__ = ["StatusIndexProjector", "StatusIndexQuery", "listed_page"]


class _Entry(msgspec.Struct, array_like=True):
    code: bytes
    inv: bytes
    session: bytes


class _Listed(msgspec.Struct):
    """The run record's fields that never change, named as :class:`RunRecord` names them."""

    id: UUID
    session_id: UUID
    provider: str
    model: str
    metadata: dict[str, Any]
    client_request_id: str | None
    created_at: datetime


_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(_Entry)
_record_enc = msgspec.msgpack.Encoder(uuid_format="bytes")
#: a listed record: the header of a 9-entry msgpack map, then its first 7 entries
_OPEN = b"\x89"
#: a listed fork: the header of an 11-entry map, then its first 9 entries
_OPEN_FORK = b"\x8b"
_STATUS, _UPDATED_AT = attrgetter("status"), attrgetter("updated_at")
_STATUS_KEY, _UPDATED_KEY = _record_enc.encode("status"), _record_enc.encode("updated_at")


class _ListedFork(_Listed):
    """A fork's listed fields: a run's, and its parent and fork seq (an 11-entry map)."""

    parent_run_id: UUID | None = None
    fork_seq: int | None = None


def _listed(run: RunRecord) -> bytes:
    head = (
        run.id,
        run.session_id,
        run.provider,
        run.model,
        run.metadata,
        run.client_request_id,
        run.created_at,
    )
    if run.parent_run_id is not None:  # a fork: its parent and fork seq too
        fork = _ListedFork(*head, run.parent_run_id, run.fork_seq)
        return _OPEN_FORK + _record_enc.encode(fork)[1:]
    return _OPEN + _record_enc.encode(_Listed(*head))[1:]  # a fixmap of 7: a one-byte header


def listed_page(listed: list[bytes], states: list[ListedState]) -> bytes | None:
    """The msgpack of the ``list[RunRecord]`` a listing page returns (None: not listed records).

    ``listed`` are the list entries' values, ``states`` the runs' two changing fields: each
    open map gets its two missing entries, so the whole page decodes in one call.
    """
    n = len(listed)
    if len(states) != n or not all(v[:1] in (_OPEN, _OPEN_FORK) and v[1:] for v in listed):
        return None  # an index of version 1 (being rebuilt) has b"" there
    parts = zip(
        listed,
        repeat(_STATUS_KEY),
        map(_STATUS, states),
        repeat(_UPDATED_KEY),
        map(_UPDATED_AT, states),
    )
    return b"\xdd" + n.to_bytes(4, "big") + b"".join(chain.from_iterable(parts))


def _list_prefix(status: RunStatus | None, session_id: UUID | None) -> bytes:
    if session_id is None:
        return b"a" if status is None else b"s" + STATUS_CODE[status]
    if status is None:
        return b"S" + session_id.bytes
    return b"T" + session_id.bytes + STATUS_CODE[status]


class StatusIndexQuery:
    """Reads of the status index."""

    def __init__(self, reader: ProjectionReader) -> None:
        self._reader = reader

    def page(
        self,
        *,
        status: RunStatus | None = None,
        session_id: UUID | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[UUID]:
        """Run ids, newest first (by created_at), matching the filters."""
        return [UUID(bytes=rid) for rid, _ in self.entries(status, session_id, limit, offset)]

    def entries(
        self,
        status: RunStatus | None,
        session_id: UUID | None,
        limit: int,
        offset: int,
        after: UUID | None = None,
    ) -> list[tuple[bytes, bytes]]:
        """``(run id bytes, listed record)`` of a page, newest first (see :func:`listed_page`).

        ``after``: keyset pagination, the page starts after this run (the last one of the
        previous page) wherever it is in the list, so a deep page costs what the first does;
        ``offset`` then counts from there. A run that is not in the index starts nowhere
        (an empty page).
        """
        out: list[tuple[bytes, bytes]] = []
        if limit <= 0:
            return out
        prefix = _list_prefix(status, session_id)
        if after is None:
            pairs = self._reader.scan(prefix)
        else:
            raw = self._reader.get(b"r" + after.bytes)
            if raw is None:
                return out
            pairs = self._after(prefix, _dec.decode(raw).inv, after.bytes)
        for key, value in islice(pairs, offset, offset + limit):
            out.append((key[-16:], value))
        return out

    def _after(self, prefix: bytes, inv: bytes, rid: bytes) -> Iterator[tuple[bytes, bytes]]:
        """The list's entries after ``prefix + inv + rid``, in key order, with prefix scans only.

        A reader with ``scan_from`` (the store's, in a transaction) seeks once and walks one
        range. Any other: the range after a key is a union of prefix ranges, the same ``inv``
        with a greater run id, then for each byte of ``inv`` from the last, every greater
        value of that byte under the bytes before it (one seek each; the walk stops when the
        caller has its page).
        """
        scan_from = getattr(self._reader, "scan_from", None)
        if callable(scan_from):
            for key, value in scan_from(prefix, inv + rid):
                if key != prefix + inv + rid:
                    yield key, value
            return
        for key, value in self._reader.scan(prefix + inv):
            if key[-16:] > rid:
                yield key, value
        for i in range(len(inv) - 1, -1, -1):
            for b in range(inv[i] + 1, 256):
                yield from self._reader.scan(prefix + inv[:i] + bytes((b,)))

    def count(self, *, status: RunStatus | None = None, session_id: UUID | None = None) -> int:
        """How many runs match the filters (read from counters, not by scanning runs)."""
        codes = list(STATUS_CODE.values()) if status is None else [STATUS_CODE[status]]
        base = b"c" if session_id is None else b"C" + session_id.bytes
        return sum(read_u64(self._reader.get(base + code)) for code in codes)

    def status_of(self, run_id: UUID) -> RunStatus | None:
        """The indexed status of a run."""
        raw = self._reader.get(b"r" + run_id.bytes)
        if raw is None:
            return None
        code = _dec.decode(raw).code
        return STATUS_OF_CODE[code]


def _bump(tx: ProjectionTx, key: bytes, delta: int) -> None:
    n = read_u64(tx.get(key)) + delta
    if n:
        tx.put(key, u64(n))
    else:
        tx.delete(key)


def _add(tx: ProjectionTx, run_id: bytes, entry: _Entry, listed: bytes) -> None:
    tx.put(b"s" + entry.code + entry.inv + run_id, listed)
    tx.put(b"T" + entry.session + entry.code + entry.inv + run_id, listed)
    _bump(tx, b"c" + entry.code, 1)
    _bump(tx, b"C" + entry.session + entry.code, 1)


def _remove(tx: ProjectionTx, run_id: bytes, entry: _Entry) -> None:
    tx.delete(b"s" + entry.code + entry.inv + run_id)
    tx.delete(b"T" + entry.session + entry.code + entry.inv + run_id)
    _bump(tx, b"c" + entry.code, -1)
    _bump(tx, b"C" + entry.session + entry.code, -1)


class StatusIndexProjector:
    """Maintains the status index (see the module docstring for the key layout)."""

    name: ClassVar[str] = "status_index"
    #: 2: the lists' values hold the listed record (1: ``b""``); a store rebuilds it on open
    version: ClassVar[int] = 2
    #: a rebuild may feed it stream by stream:
    #: each run's keys follow its own events; the counters are sums
    replay_order: ClassVar[str] = "stream"
    event_types: ClassVar[frozenset[str]] = frozenset(
        {
            "RunStarted",
            "ModelStarted",
            "RunCompleted",
            "RunFailed",
            "RunCancelled",
            "RunStatusChanged",
        }
    )

    def on_run_created(self, tx: ProjectionTx, run: RunRecord) -> None:
        rid = run.id.bytes
        entry = _Entry(
            STATUS_CODE[RunStatus.PENDING], inv_micros(run.created_at), run.session_id.bytes
        )
        listed = _listed(run)
        tx.put(b"r" + rid, _enc.encode(entry))
        tx.put(b"a" + entry.inv + rid, listed)
        tx.put(b"S" + entry.session + entry.inv + rid, listed)
        _add(tx, rid, entry, listed)

    def on_run_deleted(self, tx: ProjectionTx, run: RunRecord) -> None:
        rid = run.id.bytes
        raw = tx.get(b"r" + rid)
        if raw is None:
            return
        entry = _dec.decode(raw)
        _remove(tx, rid, entry)
        tx.delete(b"a" + entry.inv + rid)
        tx.delete(b"S" + entry.session + entry.inv + rid)
        tx.delete(b"r" + rid)

    def apply(self, tx: ProjectionTx, record: EventRecord) -> None:
        rid = record.run_id.bytes
        raw = tx.get(b"r" + rid)
        if raw is None:
            return  # not a run
        entry = _dec.decode(raw)
        current = STATUS_OF_CODE[entry.code]
        new = status_after(current, record.event)
        if new == current:
            return
        listed = tx.get(b"a" + entry.inv + rid) or b""
        _remove(tx, rid, entry)
        entry.code = STATUS_CODE[new]
        _add(tx, rid, entry, listed)
        tx.put(b"r" + rid, _enc.encode(entry))

    def query(self, reader: ProjectionReader) -> StatusIndexQuery:
        """The query object ``store.projection("status_index")`` returns."""
        return StatusIndexQuery(reader)
