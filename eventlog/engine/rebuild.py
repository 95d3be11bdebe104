"""Replaying the stored records and the log into projectors: rebuilds and ``verify``.

:class:`Replayer` feeds any number of projectors in **one** pass: the lifecycle hooks of every
stored session, run and stream, then every logged event in position order. The log is read in
chunks: a chunk's values are decoded in one msgspec call
(:func:`~eventlog.storage.codec.decode_batch`; event by event only for what it cannot take),
each projector gets the events it wants, and a projector with ``apply_batch`` gets each run of
consecutive events of one stream in one call.

A projector that declares ``replay_order = "stream"`` (its view depends on each stream's
events in seq order, not on how the streams interleave: every built-in view) is fed stream by
stream instead, when the whole log is replayed: one sequential walk of the ``events`` table
(its keys are stream number + seq), no ``positions`` look-up per event, and each stream's
events in chunks as long as ``CHUNK``. Each projector writes through a
:class:`BufferedTx`: its keyspace as a dict over the transaction, written back in sorted
batches (one ``put_many``), so a rebuild does no B-tree write per event.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator, Sequence
from itertools import chain, groupby, islice
from operator import attrgetter, itemgetter
from typing import Any
from uuid import UUID

from eventlog.engine.lineage import iter_fork_bases
from eventlog.engine.projectors import ProjectionTxn, call_hook, is_async
from eventlog.engine.protocols import ProjectionTx, Projector
from eventlog.engine.reads import EventReader
from eventlog.engine.records import Records
from eventlog.engine.streams import OtherStreams
from eventlog.errors import EventLogError, InvalidTransition, ProjectionError, StoreError
from eventlog.model.events import RawEvent, event_type_name
from eventlog.model.records import EventRecord
from eventlog.storage.codec import decode_batch, decode_event
from eventlog.storage.keys import MAX_KEY, pack_u64, unpack_u64
from eventlog.storage.kv import KVTxn

__all__ = ["BufferedTx", "Replayer"]

_MISSING: Any = object()
_NO_STREAM = UUID(int=0)
_EVENT = attrgetter("event")
_RUN_ID = attrgetter("run_id")
_POSITION = attrgetter("position")
_FIRST, _SECOND = itemgetter(0), itemgetter(1)
_NUMBER_OF_REF = itemgetter(slice(0, 8))
#: a ref (``events`` key) is stream number + seq: the seq of each of a run of joined refs
_SEQ_OF_REF = struct.Struct(">8xQ")
#: the stored type name of each event class (raw events name their own)
_NAME_OF: dict[type, str] = {}


def _names(records: list[EventRecord]) -> list[str]:
    """The stored type name of each record's event."""
    name_of = _NAME_OF
    out: list[str] = []
    append = out.append
    for event in map(_EVENT, records):
        name = name_of.get(type(event))
        if name is None:
            name = event_type_name(event)
            if not isinstance(event, RawEvent):
                name_of[type(event)] = name
        append(name)
    return out


#: events read and decoded at a time
CHUNK = 512
#: at most this many records kept for the log-ordered projectors during a stream-ordered pass
KEEP = 100_000

OnBad = Callable[[UUID, int, Exception], None]
OnRefused = Callable[[str, EventRecord, InvalidTransition], None]
Progress = Callable[[str, int, int], None]


class BufferedTx:
    """A projector's keyspace during a replay: writes kept in a dict, flushed in sorted order.

    Reads see the pending writes first, then the keyspace below. ``flush`` writes them with
    one ``put_many`` (and a delete per deleted key); it runs when ``limit`` keys are pending,
    before a ``scan`` (which then reads the keyspace itself) and at the end of the replay.
    Between ``begin`` and ``commit``/``rollback`` nothing is flushed, and ``rollback``
    undoes the writes since ``begin`` (an ``apply_batch`` refused part-way).
    """

    __slots__ = ("_base", "_fresh", "_pending", "_room", "_undo", "limit")

    def __init__(self, base: ProjectionTx, *, limit: int = 200_000, fresh: bool = False) -> None:
        self._base = base
        self._pending: dict[bytes, bytes | None] = {}
        self._undo: list[tuple[bytes, Any]] | None = None
        self._room = base.room if isinstance(base, ProjectionTxn) else MAX_KEY
        self.limit = limit
        # the keyspace below counts as empty (a rebuild that does not clear it first): reads
        # miss it, and the first flush writes only what differs from it and deletes the rest
        self._fresh = fresh

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self._pending.get(key, _MISSING)
        if value is _MISSING:
            return None if self._fresh else self._base.get(key)
        return value

    def _check(self, key: bytes) -> None:
        if type(key) is not bytes or len(key) > self._room:
            check = getattr(self._base, "check_key", None)
            if callable(check):
                check(key)  # raises the keyspace's own error, naming the key
            self._base.put(key, b"")  # (a scratch keyspace checks the key first, and raises)

    def put(self, key: bytes, value: bytes) -> None:
        self._check(key)
        if self._undo is not None:
            self._undo.append((key, self._pending.get(key, _MISSING)))
        self._pending[key] = bytes(value)
        if len(self._pending) >= self.limit and self._undo is None:
            self.flush()

    def delete(self, key: bytes) -> None:
        self._check(key)
        if self._undo is not None:
            self._undo.append((key, self._pending.get(key, _MISSING)))
        self._pending[key] = None

    def scan(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        if self._undo is None:
            self.flush()
            return self._base.scan(prefix)
        return self._merged(prefix)

    def _merged(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        pending = {k: v for k, v in self._pending.items() if k.startswith(prefix)}
        below = {} if self._fresh else dict(self._base.scan(prefix))
        below = {k: v for k, v in below.items() if k not in pending}
        merged = {**below, **{k: v for k, v in pending.items() if v is not None}}
        for key in sorted(merged):
            yield key, merged[key]

    def begin(self) -> None:
        """Start recording undo information (for :meth:`rollback`)."""
        self._undo = []

    def commit(self) -> None:
        """Keep the writes since :meth:`begin`."""
        self._undo = None

    def rollback(self) -> None:
        """Undo the writes since :meth:`begin`."""
        undo, self._undo = self._undo or [], None
        for key, old in reversed(undo):
            if old is _MISSING:
                del self._pending[key]
            else:
                self._pending[key] = old

    def flush(self) -> None:
        """Write the pending keys to the keyspace below, in key order."""
        if self._fresh:
            self._flush_fresh()
            return
        if not self._pending:
            return
        items, self._pending = sorted(self._pending.items()), {}
        puts: list[tuple[bytes, bytes]] = [(k, v) for k, v in items if v is not None]
        put_many = getattr(self._base, "put_many", None)
        if callable(put_many):
            put_many(puts)
        else:
            for key, value in puts:
                self._base.put(key, value)
        for key, old in items:
            if old is None:
                self._base.delete(key)

    def _flush_fresh(self) -> None:
        """The first flush over a keyspace that counts as empty: write only the difference.

        A key below that the replay did not write (or deleted) is deleted; one it wrote with
        the same value is left alone. A rebuild that finds its view unchanged writes nothing.
        """
        self._fresh = False
        pending, self._pending = self._pending, {}
        below = dict(self._base.scan())
        for key, value in below.items():
            if pending.get(key, _MISSING) == value:
                del pending[key]  # unchanged
            elif key not in pending:
                pending[key] = None  # not rebuilt: deleted
        self._pending = {k: v for k, v in pending.items() if v is not None or k in below}
        self.flush()


class _Target:
    """One projector being replayed: where it writes and what it wants."""

    __slots__ = ("batch", "by_stream", "hooks", "name", "projector", "tx", "types")

    def __init__(self, projector: Projector, tx: ProjectionTx, fresh: bool = False) -> None:
        self.projector = projector
        self.name = projector.name
        self.tx = BufferedTx(tx, fresh=fresh)
        self.types: frozenset[str] = frozenset(getattr(projector, "event_types", frozenset()))
        batch = getattr(projector, "apply_batch", None)
        self.batch: Callable[[ProjectionTx, Sequence[EventRecord]], None] | None = (
            batch if callable(batch) else None
        )
        self.hooks = {h for h in _CREATED if callable(getattr(projector, h, None))}
        self.by_stream = getattr(projector, "replay_order", "log") == "stream"


_CREATED = ("on_session_created", "on_run_created", "on_stream_created")


def _pages(txn: KVTxn, table: str) -> Iterator[list[tuple[bytes, bytes]]]:
    """Every item of ``table`` in key order, ``CHUNK`` at a time.

    A backend's ``items(table, start, n)`` (LMDB: the cursor's own loop) reads a page at a
    time; else one ``scan``.
    """
    items = getattr(txn, "items", None)
    if callable(items):
        start = b""
        while pairs := items(table, start, CHUNK):
            yield pairs
            if len(pairs) < CHUNK:
                return
            start = pairs[-1][0] + b"\x00"  # the least key after the last one
        return
    scan = txn.scan(table, b"")
    while pairs := list(islice(scan, CHUNK)):
        yield pairs


class _Kept:
    """The records of some types, collected during a pass for the targets that want them."""

    __slots__ = ("records", "types")

    def __init__(self, targets: list[_Target]) -> None:
        self.types: frozenset[str] = frozenset().union(*(t.types for t in targets))
        self.records: list[EventRecord] | None = []


class Replayer:
    """Feeds projectors the stored records and the log (see the module docstring)."""

    def __init__(self, reads: EventReader, records: Records, streams: OtherStreams) -> None:
        self.reads = reads
        self.records = records
        self.streams = streams

    def replay(
        self,
        txn: KVTxn,
        targets: Sequence[tuple[Projector, ProjectionTx]],
        progress: Progress | None,
        last: int,
        *,
        on_bad: OnBad | None = None,
        to_position: int | None = None,
        on_refused: OnRefused | None = None,
        fresh: bool = False,
    ) -> None:
        """Feed each ``(projector, tx)`` every stored session, run and stream, then the log.

        ``fresh``: each ``tx`` holds the view being rebuilt, not cleared: the replay treats it
        as empty and writes back only what differs (see :class:`BufferedTx`).

        ``to_position`` stops after that position (an async projector's checkpoint).
        ``on_bad(stream_id, seq, error)`` is told of an event that cannot be read (else the
        error propagates); ``on_refused(projector name, record, error)`` of an event a
        projector refuses with ``InvalidTransition`` (else the error propagates), which is
        then left out of that projector's view.
        """
        chosen = [_Target(p, tx, fresh) for p, tx in targets]
        self._hooks(txn, chosen)
        # a fork's shared prefix is in its parent's stream, not in the log under the fork: it is
        # folded into the inline projectors once when the fork is created, so here too, before
        # the log; an async projector catches up from the log, which holds a fork's own events
        # only, so a replay does not feed it the prefix either
        inline = [t for t in chosen if not is_async(t.projector)]
        for _, base in iter_fork_bases(txn) if inline else ():
            if base.at_seq:
                prefix = self.reads.list_events(txn, base.fork_id, to_seq=base.at_seq, kind="any")
                self._feed(inline, iter([(0, prefix)]), None, last, on_refused)
        # the whole log, nothing to report: the projectors that allow it read stream by stream
        whole = to_position is None and on_bad is None
        by_stream = [t for t in chosen if t.by_stream and whole]
        in_log = [t for t in chosen if not (t.by_stream and whole)]
        if by_stream:
            # the others' events, when they want a few types, are kept on the way and fed in
            # position order afterwards (unless there are too many to hold)
            kept = _Kept(in_log) if in_log and all(t.types for t in in_log) else None
            chunks = self._stream_chunks(txn, last)
            self._feed(by_stream, chunks, progress, last, on_refused, kept)
            if kept is not None and kept.records is not None:
                kept.records.sort(key=_POSITION)
                found = kept.records
                parts = (
                    (found[k : k + CHUNK][-1].position, found[k : k + CHUNK])
                    for k in range(0, len(found), CHUNK)
                )
                self._feed(in_log, parts, progress, last, on_refused)
                in_log = []
        if in_log:
            chunks = self._chunks(txn, to_position, on_bad)
            self._feed(in_log, chunks, progress, last, on_refused)
        for target in chosen:
            target.tx.flush()
            if progress is not None:
                progress(target.name, last, last)

    def _feed(
        self,
        chosen: list[_Target],
        chunks: Iterator[tuple[int, list[EventRecord]]],
        progress: Progress | None,
        last: int,
        on_refused: OnRefused | None,
        kept: _Kept | None = None,
    ) -> None:
        """Give each target the records of each chunk it wants (in the chunk's order).

        ``kept`` collects the records of the types it names, for a later pass.
        """
        for position, records in chunks:
            # each type's indexes, ascending: a stable sort by name, grouped (no loop per event)
            names = _names(records)
            name_at = names.__getitem__
            by_type = {
                name: list(found)
                for name, found in groupby(sorted(range(len(names)), key=name_at), name_at)
            }
            if kept is not None and kept.records is not None:
                for name in kept.types.intersection(by_type):
                    kept.records += map(records.__getitem__, by_type[name])
                if len(kept.records) > KEEP:
                    kept.records = None  # too many: they read the log themselves
            for target in chosen:
                picked = records
                if target.types:
                    wanted = [by_type[t] for t in target.types if t in by_type]
                    if len(wanted) == 1:
                        picked = list(map(records.__getitem__, wanted[0]))
                    else:  # back in the chunk's order
                        picked = list(map(records.__getitem__, sorted(chain.from_iterable(wanted))))
                if picked:
                    self._apply(target, picked, on_refused)
                if progress is not None:
                    progress(target.name, position, last)

    def _hooks(self, txn: KVTxn, targets: list[_Target]) -> None:
        sources = (
            ("on_session_created", self.records.iter_sessions),
            ("on_run_created", self.records.iter_runs),
            ("on_stream_created", self.streams.iter_streams),
        )
        for hook, items in sources:
            wanting = [t for t in targets if hook in t.hooks]
            if not wanting:
                continue
            for item in items(txn):
                for target in wanting:
                    call_hook(target.projector, target.tx, hook, item)

    def _stream_chunks(self, txn: KVTxn, last: int) -> Iterator[tuple[int, list[EventRecord]]]:
        """``(events so far, records)`` of every stream in turn, seq order, ``CHUNK`` at a time.

        One walk of ``events`` (stream number + seq: each stream's events in a row). The
        first number is the progress reported: the events fed so far, capped at ``last``.
        """
        ids: dict[bytes, UUID] = {}
        done = 0
        for pairs in _pages(txn, "events"):
            done += len(pairs)
            keys, values = list(map(_FIRST, pairs)), list(map(_SECOND, pairs))
            yield min(done, last), self._decode_keyed(txn, keys, values, ids)

    def _decode_keyed(
        self, txn: KVTxn, keys: list[bytes], values: list[bytes], ids: dict[bytes, UUID]
    ) -> list[EventRecord]:
        """The records of ``events`` items ``keys``/``values`` (see :meth:`_decode`)."""
        joined = b"".join(keys)
        numbers = list(map(_NUMBER_OF_REF, keys))
        for number in set(numbers).difference(ids):
            stream = self.reads.index.stream_of(txn, number)
            if stream is None:
                raise StoreError(
                    f"the log points at stream {unpack_u64(number)}, which has no run, "
                    "session or stream record; run store.verify()"
                )
            ids[number] = stream
        streams = list(map(ids.__getitem__, numbers))
        seqs = list(map(_FIRST, _SEQ_OF_REF.iter_unpack(joined)))
        decoded = decode_batch(streams, seqs, values)
        if decoded is not None:
            return decoded
        # event by event: upcasts, raw data, damage by name
        return list(map(decode_event, streams, seqs, values))

    def _chunks(
        self, txn: KVTxn, to_position: int | None, on_bad: OnBad | None
    ) -> Iterator[tuple[int, list[EventRecord]]]:
        """``(last position, records)`` of the log in position order, ``CHUNK`` at a time."""
        ids: dict[bytes, UUID] = {}
        refs: list[bytes] = []
        key = b""
        # positions are big-endian: comparing the keys' bytes compares the numbers
        stop = None if to_position is None else pack_u64(to_position)
        for key, ref in txn.scan("positions", pack_u64(1)):
            if stop is not None and key > stop:
                break
            if not ref:
                continue  # a deleted stream's tombstone
            refs.append(ref)
            if len(refs) >= CHUNK:
                yield unpack_u64(key), self._decode(txn, refs, ids, on_bad)
                refs = []
        if refs:
            yield unpack_u64(key), self._decode(txn, refs, ids, on_bad)

    def _decode(
        self, txn: KVTxn, refs: list[bytes], ids: dict[bytes, UUID], on_bad: OnBad | None
    ) -> list[EventRecord]:
        many = getattr(txn, "get_many", None)  # a backend's one-call read (LMDB)
        if callable(many):
            values: list[bytes | None] = many("events", refs)
        else:
            get = txn.get
            values = [get("events", ref) for ref in refs]
        streams = [ids.get(ref[:8]) for ref in refs]
        if not all(streams):  # (not `None in`: that would call UUID.__eq__ per item)
            for ref, found in zip(refs, streams, strict=True):
                if found is None and ref[:8] not in ids:
                    stream = self.reads.index.stream_of(txn, ref[:8])
                    if stream is not None:
                        ids[ref[:8]] = stream
            streams = [ids.get(ref[:8]) for ref in refs]
        if None not in values and all(streams):
            seqs = list(map(_FIRST, _SEQ_OF_REF.iter_unpack(b"".join(refs))))
            decoded = decode_batch(streams, seqs, values)  # type: ignore[arg-type]
            if decoded is not None:
                return decoded
        out: list[EventRecord] = []  # event by event: upcasts, raw data, damage by name
        for ref in refs:
            try:
                out.append(self.reads.read_ref(txn, ref, ids))
            except StoreError as exc:
                if on_bad is None:
                    raise
                on_bad(ids.get(ref[:8], _NO_STREAM), unpack_u64(ref[8:]), exc)
        return out

    @staticmethod
    def _apply(target: _Target, records: list[EventRecord], on_refused: OnRefused | None) -> None:
        tx, batch = target.tx, target.batch
        if batch is None:
            for record in records:
                _apply_one(target, record, on_refused)
            return
        # one stream's records share one id object (the chunk's cache): group by identity
        for _, group in groupby(zip(map(id, map(_RUN_ID, records)), records, strict=True), _FIRST):
            run = list(map(_SECOND, group))
            if len(run) == 1:
                _apply_one(target, run[0], on_refused)
                continue
            tx.begin()
            try:
                batch(tx, run)
            except InvalidTransition:
                tx.rollback()  # one of them is refused: apply them one by one
                for record in run:
                    _apply_one(target, record, on_refused)
                continue
            except EventLogError:
                tx.rollback()
                raise
            except Exception as exc:
                tx.rollback()
                raise ProjectionError(target.name, run[0].run_id, run[0].seq, exc) from exc
            tx.commit()


def _apply_one(target: _Target, record: EventRecord, on_refused: OnRefused | None) -> None:
    try:
        target.projector.apply(target.tx, record)
    except InvalidTransition as exc:
        if on_refused is None:
            raise
        on_refused(target.name, record, exc)
    except EventLogError:
        raise
    except Exception as exc:
        raise ProjectionError(target.name, record.run_id, record.seq, exc) from exc
