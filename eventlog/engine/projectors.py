"""Running projectors: the keyspace facade, inline application, lifecycle hooks, metadata.

A projector sees only its own keyspace - a ``name + 0x00`` prefix of the ``projections``
table - through :class:`ProjectionTxn`. Besides ``apply(tx, record)`` for each event, a
projector may define lifecycle hooks the engine calls in the same transaction:
``on_session_created(tx, session)``, ``on_session_deleted(tx, session)``,
``on_run_created(tx, run)`` and ``on_run_deleted(tx, run)`` (with the ``RunRecord`` as
created), ``on_stream_created(tx, stream)`` and ``on_stream_deleted(tx, stream)`` (with the
``StreamRecord`` of a stream of another kind). Rebuilding replays the creation hooks for every
stored session, run and stream, then the log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any
from uuid import UUID

import msgspec

from eventlog.engine.protocols import ProjectionReader, ProjectionTx, Projector
from eventlog.errors import EventLogError, ProjectionError
from eventlog.model.events import RawEvent, event_type_name
from eventlog.model.records import EventRecord, RunRecord, Session, StreamRecord
from eventlog.storage.keys import MAX_KEY, prefix_end
from eventlog.storage.kv import KVTxn

__all__ = ["HOOKS", "ProjectionTxn", "ProjectorMeta", "ProjectorSet", "ScratchTx", "is_async"]

#: The optional lifecycle hooks (a rebuild replays the ``*_created`` ones in this order).
HOOKS = (
    "on_session_created",
    "on_run_created",
    "on_stream_created",
    "on_run_deleted",
    "on_stream_deleted",
    "on_session_deleted",
)


class ProjectorMeta(msgspec.Struct, array_like=True):
    """What the store remembers of a projector: version, checkpoint, ready flag, error.

    Inline projectors commit with the events, so a ready projector is always at the head of
    the log: its effective checkpoint is the log's last position (``checkpoint`` is the one of
    its last rebuild). An async projector writes ``checkpoint`` (the last position it applied)
    in the same transaction as each batch of its view.
    """

    version: int
    checkpoint: int
    ready: bool
    #: An async projector that failed: ``"position N: <error>"``; it stopped at ``checkpoint``.
    error: str | None = None


_META_ENCODER = msgspec.msgpack.Encoder()
_META_DECODER = msgspec.msgpack.Decoder(ProjectorMeta)


#: a projector's bound ``apply(tx, record)``
_Apply = Callable[[ProjectionTx, EventRecord], None]


def _check_key(key: bytes, room: int) -> None:
    if not isinstance(key, bytes):
        raise TypeError(f"projection keys are bytes, got {type(key).__name__}")
    if len(key) > room:
        raise ValueError(f"projection key too long ({len(key)} bytes, max {room}); keep keys short")


_PREFIXES: dict[str, bytes] = {}


class ProjectionTxn:
    """The facade over one projector's keyspace inside a store transaction."""

    __slots__ = ("_prefix", "_room", "_txn")

    def __init__(self, txn: KVTxn, name: str) -> None:
        self._txn = txn
        prefix = _PREFIXES.get(name)
        if prefix is None:
            prefix = _PREFIXES[name] = name.encode() + b"\x00"
        self._prefix = prefix
        self._room = MAX_KEY - len(prefix)

    def prefetch(self, keys: Sequence[bytes]) -> None:
        """Hint that ``get`` will be asked for ``keys`` (one query on a remote backend)."""
        self._txn.prefetch("projections", [self._prefix + k for k in keys])

    @property
    def room(self) -> int:
        """The longest key this keyspace takes (the store's limit minus the prefix)."""
        return self._room

    def put_many(self, items: Sequence[tuple[bytes, bytes]]) -> None:
        """``put`` of each ``(key, value)``, keys in ascending order (one call: a rebuild)."""
        room, prefix = self._room, self._prefix
        keys = [k for k, _ in items]
        if set(map(type, keys)) - {bytes} or max(map(len, keys), default=0) > room:
            for key in keys:
                _check_key(key, room)  # raises, naming the first bad key
        self._txn.put_many("projections", [(prefix + k, bytes(v)) for k, v in items])

    def check_key(self, key: bytes) -> None:
        """Raise ``TypeError``/``ValueError`` unless ``key`` is bytes that fit this keyspace."""
        _check_key(key, self._room)

    def get(self, key: bytes) -> bytes | None:
        if type(key) is not bytes or len(key) > self._room:  # the hot path: one test
            _check_key(key, self._room)
        return self._txn.get("projections", self._prefix + key)

    def get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        """``get`` of each of ``keys``, in order (one call for a page of reads)."""
        room, prefix, get = self._room, self._prefix, self._txn.get
        if set(map(type, keys)) - {bytes} or max(map(len, keys), default=0) > room:
            for key in keys:
                _check_key(key, room)  # raises, naming the first bad key
        many = getattr(self._txn, "get_many", None)  # a backend's one-call read (LMDB)
        if callable(many):
            found: list[bytes | None] = many("projections", [prefix + key for key in keys])
            return found
        return [get("projections", prefix + key) for key in keys]

    def put(self, key: bytes, value: bytes) -> None:
        if type(key) is not bytes or len(key) > self._room:
            _check_key(key, self._room)
        if type(value) is not bytes:  # a bytearray or memoryview: store a copy
            value = bytes(value)
        self._txn.put("projections", self._prefix + key, value)

    def delete(self, key: bytes) -> None:
        _check_key(key, self._room)
        self._txn.discard("projections", self._prefix + key)

    def scan(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        _check_key(prefix, self._room)
        start = self._prefix + prefix
        n = len(self._prefix)
        for key, value in self._txn.scan("projections", start, prefix_end(start)):
            yield key[n:], value

    def scan_from(self, prefix: bytes, start: bytes) -> Iterator[tuple[bytes, bytes]]:
        """:meth:`scan` of ``prefix`` from key ``prefix + start`` on: one seek, one range.

        Not in :class:`ProjectionReader`: a query may use it where its reader has it (the
        status index's keyset pages do), and fall back to prefix scans elsewhere.
        """
        _check_key(prefix + start, self._room)
        first = self._prefix + prefix
        n = len(self._prefix)
        for key, value in self._txn.scan("projections", first + start, prefix_end(first)):
            yield key[n:], value

    def clear(self) -> None:
        """Delete every key of this keyspace."""
        keys = [k for k, _ in self.scan()]
        for key in keys:
            self.delete(key)


class ScratchTx:
    """A dict-backed keyspace with the same facade: where ``verify`` replays a projector."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        _check_key(key, MAX_KEY)
        self.data[key] = bytes(value)

    def delete(self, key: bytes) -> None:
        self.data.pop(key, None)

    def scan(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        for key in sorted(k for k in self.data if k.startswith(prefix)):
            if key in self.data:
                yield key, self.data[key]


def _validate(projectors: Sequence[Projector]) -> None:
    names: set[str] = set()
    for p in projectors:
        name = getattr(p, "name", None)
        if not isinstance(name, str) or not name or "\x00" in name or len(name) > 100:
            raise ValueError(f"projector {p!r}: `name` must be a non-empty str (<= 100 chars)")
        if name in names:
            raise ValueError(f"two projectors are named {name!r}; names must be unique")
        version = getattr(p, "version", None)
        if not isinstance(version, int) or isinstance(version, bool):
            raise ValueError(f"projector {name!r}: `version` must be an int")
        if not callable(getattr(p, "apply", None)):
            raise ValueError(f"projector {name!r}: it needs an apply(tx, record) method")
        types: object = getattr(p, "event_types", frozenset())
        if not isinstance(types, frozenset | set) or not all(isinstance(t, str) for t in types):
            raise ValueError(f"projector {name!r}: `event_types` must be a frozenset of str")
        mode = getattr(p, "mode", "inline")
        if mode not in ("inline", "async"):
            raise ValueError(
                f"projector {name!r}: `mode` must be 'inline' or 'async', not {mode!r}"
            )
        hooks = [h for h in HOOKS if callable(getattr(p, h, None))]
        if mode == "async" and hooks:
            raise ValueError(
                f"projector {name!r}: an async projector sees only events, but it defines "
                f"{', '.join(hooks)}; drop the hooks or use mode='inline'"
            )
        names.add(name)


def is_async(projector: Projector) -> bool:
    """Whether ``projector`` is a catch-up projector (``mode = "async"``)."""
    return getattr(projector, "mode", "inline") == "async"


class ProjectorSet:
    """The registered projectors, in order, with what each wants."""

    def __init__(self, projectors: Sequence[Projector]) -> None:
        _validate(projectors)
        self.all: tuple[Projector, ...] = tuple(projectors)
        self.by_name = {p.name: p for p in self.all}
        #: the projectors applied in the append transaction (async ones are fed by a thread)
        self.inline: tuple[Projector, ...] = tuple(p for p in self.all if not is_async(p))
        self.deferred: tuple[Projector, ...] = tuple(p for p in self.all if is_async(p))
        self._wants = tuple(frozenset(getattr(p, "event_types", frozenset())) for p in self.inline)
        # per event type (and per class, skipping the type's name): who wants it, and how
        self._for_type: dict[str, tuple[tuple[Projector, _Apply], ...]] = {}
        self._for_class: dict[type, tuple[tuple[Projector, _Apply], ...]] = {}
        self._hooks: dict[str, tuple[Projector, ...]] = {
            hook: tuple(p for p in self.inline if callable(getattr(p, hook, None)))
            for hook in HOOKS
        }

    def __bool__(self) -> bool:
        """Whether any projector runs inline (in the append transaction)."""
        return bool(self.inline)

    def subset(self, names: Sequence[str]) -> ProjectorSet:
        """The projectors named ``names``, in registration order."""
        wanted = set(names)
        return ProjectorSet([p for p in self.all if p.name in wanted])

    # -- inline application ---------------------------------------------------------------
    def apply_batch(self, txn: KVTxn, records: Sequence[EventRecord]) -> None:
        """Apply one append's records (one stream, in seq order) to every projector.

        A projector with ``apply_batch(tx, records)`` gets the records it wants in one call
        (the run-state projector folds a batch with one read and one write); the others get
        ``apply`` once per record.
        """
        if len(records) == 1:
            self.apply(txn, records[0])
            return
        names = [event_type_name(r.event) for r in records]
        for projector, wants in zip(self.inline, self._wants, strict=True):
            if wants:
                chosen = [r for r, name in zip(records, names, strict=True) if name in wants]
            else:
                chosen = list(records)
            if not chosen:
                continue
            tx = ProjectionTxn(txn, projector.name)
            batch = getattr(projector, "apply_batch", None)
            if callable(batch):
                try:
                    batch(tx, chosen)
                except EventLogError:
                    raise
                except Exception as exc:
                    first = chosen[0]
                    raise ProjectionError(projector.name, first.run_id, first.seq, exc) from exc
            else:
                for record in chosen:
                    apply_one(projector, tx, record)

    def apply(self, txn: KVTxn, record: EventRecord) -> None:
        """Apply ``record`` to every projector that wants its type."""
        event_type = type(record.event)
        chosen = self._for_class.get(event_type) if event_type is not RawEvent else None
        if chosen is None:
            chosen = self._chosen(event_type_name(record.event))
            if event_type is not RawEvent:
                self._for_class[event_type] = chosen
        for projector, apply in chosen:
            try:
                apply(ProjectionTxn(txn, projector.name), record)
            except EventLogError:
                raise  # a rule of the store (e.g. the model's InvalidTransition)
            except Exception as exc:
                raise ProjectionError(projector.name, record.run_id, record.seq, exc) from exc

    def _chosen(self, type_name: str) -> tuple[tuple[Projector, _Apply], ...]:
        """The inline projectors that want events of ``type_name``, with their ``apply``."""
        chosen = self._for_type.get(type_name)
        if chosen is None:
            chosen = self._for_type[type_name] = tuple(
                (p, p.apply)
                for p, wants in zip(self.inline, self._wants, strict=True)
                if not wants or type_name in wants
            )
        return chosen

    def hook(self, txn: KVTxn, hook: str, item: RunRecord | Session | StreamRecord) -> None:
        """Call lifecycle ``hook`` on every projector that defines it."""
        for projector in self._hooks[hook]:
            call_hook(projector, ProjectionTxn(txn, projector.name), hook, item)

    @staticmethod
    def wants(projector: Projector, type_name: str) -> bool:
        """Whether ``projector`` wants events of ``type_name``."""
        types: frozenset[str] = getattr(projector, "event_types", frozenset())
        return not types or type_name in types

    # -- metadata -------------------------------------------------------------------------
    @staticmethod
    def meta(txn: KVTxn, name: str) -> ProjectorMeta | None:
        """The stored metadata of projector ``name``."""
        raw = txn.get("projector_meta", name.encode())
        return None if raw is None else _META_DECODER.decode(raw)

    @staticmethod
    def set_meta(txn: KVTxn, name: str, meta: ProjectorMeta) -> None:
        """Store the metadata of projector ``name``."""
        txn.put("projector_meta", name.encode(), _META_ENCODER.encode(meta))

    def stale(self, txn: KVTxn) -> list[str]:
        """Projectors that are new, changed version, or whose rebuild did not finish."""
        out = []
        for p in self.all:
            meta = self.meta(txn, p.name)
            if meta is None or meta.version != p.version or not meta.ready:
                out.append(p.name)
        return out


def apply_one(projector: Projector, tx: ProjectionTx, record: EventRecord) -> None:
    """Apply one record; a non-eventlog exception becomes :class:`ProjectionError`."""
    try:
        projector.apply(tx, record)
    except EventLogError:
        raise  # a rule of the store (e.g. the model's InvalidTransition, via the run state)
    except Exception as exc:
        raise ProjectionError(projector.name, record.run_id, record.seq, exc) from exc


def call_hook(
    projector: Projector, tx: ProjectionTx, hook: str, item: RunRecord | Session | StreamRecord
) -> None:
    """Call one lifecycle hook; a non-eventlog exception becomes :class:`ProjectionError`."""
    fn: Callable[[ProjectionTx, Any], None] = getattr(projector, hook)
    try:
        fn(tx, item)
    except EventLogError:
        raise
    except Exception as exc:
        raise ProjectionError(projector.name, item.id, 0, exc) from exc


def reader(txn: KVTxn, name: str) -> ProjectionReader:
    """Read access to projector ``name``'s keyspace in ``txn``."""
    return ProjectionTxn(txn, name)


def stream_id_of(record: RunRecord | Session | StreamRecord) -> UUID:
    """The id of the stream a record owns (its own id)."""
    return record.id
