"""How everything is stored: msgspec msgpack, one reused Encoder/Decoder per type.

A stored event is an :class:`Envelope` (array-like, compact) that carries the event's type name
and schema version, its log position, the time the store recorded it, the optional
idempotency key, the payload (the event Struct encoded as a msgpack map, tag included) and a
CRC-32 of all of it. Readers check the CRC, then decode the envelope and the payload in one
pass; a type this code does not know becomes a :class:`~eventlog.model.events.RawEvent` instead of
an exception, and damaged bytes raise :class:`CorruptRecordError` naming the run and seq.

The check is the envelope's last element, a msgpack ``uint32`` (``0xce`` + 4 bytes) whose 4
bytes are the little-endian CRC-32 of every byte before them. CRC-32 has a constant residue:
the CRC of a value that ends with its own CRC is always ``0x2144DF1C``, so a reader checks
the whole value with one ``zlib.crc32`` call and no slicing (~0.15 µs for a 120-byte event),
and any change of up to 32 consecutive bits - every single-byte change - is detected.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from itertools import islice, repeat
from operator import attrgetter
from typing import Any, Generic, TypeVar, Union
from uuid import UUID
from zlib import crc32

import msgspec

from eventlog.errors import CorruptRecordError
from eventlog.model.events import EVENT_NAMES, EVENT_TYPES, AnyEvent, RawEvent
from eventlog.model.records import EventRecord, RunRecord, Session, StreamRecord
from eventlog.model.registry import EventType, UpcastFailed, registered, upcast
from eventlog.model.state import RunState

__all__ = [
    "MAX_EVENT_BYTES",
    "Envelope",
    "EnvelopeView",
    "decode_event",
    "decode_payload",
    "decode_view",
    "decode_views",
    "decode_stream",
    "as_read",
    "decode_batch",
    "decode_values",
    "encode_event",
    "encode_raw_payload",
    "recorded_at_of",
    "why_raw",
]

#: The largest stored event (its encoded envelope) an append accepts: 16 MiB. LMDB itself takes
#: values up to 4 GiB, but every event is read whole by replays, exports and readers; a bigger
#: one raises :class:`~eventlog.errors.EventTooLargeError` and nothing is written.
MAX_EVENT_BYTES = 16 << 20

_encoder = msgspec.msgpack.Encoder(uuid_format="bytes")
_raw_decoder = msgspec.msgpack.Decoder()


class Envelope(msgspec.Struct, array_like=True):
    """The stored form of one event (what is written; ``check`` is filled after encoding)."""

    type: str
    version: int
    position: int
    recorded_at: datetime
    event_id: UUID | None
    payload: Any
    check: msgspec.Raw


#: the check's placeholder: a msgpack uint32 whose 4 bytes are replaced by the CRC
_CHECK_SLOT = msgspec.Raw(b"\xce\x00\x00\x00\x00")
#: CRC-32 of any value that ends with its own little-endian CRC-32
_RESIDUE = 0x2144DF1C


def _seal(raw: bytes) -> bytes:
    head = raw[:-4]
    return head + crc32(head).to_bytes(4, "little")


def _intact(value: bytes) -> bool:
    """Whether ``value`` is a sealed envelope whose bytes are unchanged."""
    return crc32(value) == _RESIDUE


class EnvelopeView(msgspec.Struct, array_like=True):
    """The stored form of one event as read: the payload stays undecoded until needed."""

    type: str
    version: int
    position: int
    recorded_at: datetime
    event_id: UUID | None
    payload: msgspec.Raw
    check: int


_envelope_decoder = msgspec.msgpack.Decoder(EnvelopeView)
_payload_decoders: dict[str, msgspec.msgpack.Decoder[Any]] = {}


_class_decoders: dict[type, msgspec.msgpack.Decoder[Any]] = {}


def _decoder_for(type_name: str) -> msgspec.msgpack.Decoder[Any] | None:
    """The reused decoder of a built-in event type (built once, on first use)."""
    decoder = _payload_decoders.get(type_name)
    if decoder is None:
        cls = EVENT_TYPES.get(type_name)
        if cls is None:
            return None
        decoder = _payload_decoders[type_name] = msgspec.msgpack.Decoder(cls)
    return decoder


def _class_decoder(cls: type) -> msgspec.msgpack.Decoder[Any]:
    decoder = _class_decoders.get(cls)
    if decoder is None:
        decoder = _class_decoders[cls] = msgspec.msgpack.Decoder(cls)
    return decoder


class _Builtin:
    """The msgpack-encoded names of the built-in types (rebuilt when the table grows)."""

    size = -1
    names: frozenset[bytes] = frozenset()

    @classmethod
    def get(cls) -> frozenset[bytes]:
        if cls.size != len(EVENT_TYPES):
            cls.names = frozenset(n.encode() for n in EVENT_TYPES)
            cls.size = len(EVENT_TYPES)
        return cls.names


def _is_builtin(value: bytes) -> bool:
    """Whether the envelope ``value`` names a built-in type (peeks at the type name's bytes).

    The envelope is a 7-array (``0x97``) whose first item is the name: a fixstr (``0xa0`` +
    length) or a str8 (``0xd9``, length). Only built-ins are in the one-pass decoder's union,
    so registered and unknown types go straight to the two-pass path.
    """
    head = value[1] if len(value) > 1 else 0
    if 0xA0 <= head <= 0xBF:
        return value[2 : 2 + (head & 0x1F)] in _Builtin.get()
    if head == 0xD9 and len(value) > 2:
        return value[3 : 3 + value[2]] in _Builtin.get()
    return False


def encode_event(
    event: AnyEvent, position: int, recorded_at: datetime, event_id: UUID | None
) -> bytes:
    """Encode ``event`` into its stored envelope (``ValueError`` when it cannot be stored)."""
    try:
        if isinstance(event, RawEvent):
            envelope = Envelope(
                event.type, event.version, position, recorded_at, event_id, event.data, _CHECK_SLOT
            )
        else:
            info = EVENT_NAMES.get(type(event))
            if info is None:
                raise TypeError(f"{type(event).__name__} is not a registered event type")
            envelope = Envelope(
                info[0],
                info[1],
                position,
                recorded_at,
                event_id,
                event,
                _CHECK_SLOT,
            )
        return _seal(_encoder.encode(envelope))
    except (OverflowError, TypeError) as exc:
        name = event.type if isinstance(event, RawEvent) else type(event).__name__
        raise ValueError(
            f"{name} cannot be stored: {exc} (integers must fit in 64 bits, values must be "
            "JSON-like); nothing was written"
        ) from exc


def decode_payload(type_name: str, version: int, payload: bytes | msgspec.Raw) -> AnyEvent:
    """Decode a payload of ``type_name`` stored at ``version``.

    Built-in types decode directly; registered types (or their aliases) are upcast from
    ``version`` to their current version first. Unknown types, and payloads that cannot be
    brought to the current shape, read as :class:`RawEvent` (see :func:`why_raw`).
    """
    decoder = _decoder_for(type_name)
    if decoder is not None:
        try:
            event: AnyEvent = decoder.decode(payload)
            return event
        except msgspec.ValidationError:
            pass  # a newer, incompatible shape of a known type: keep it readable as raw data
    else:
        info = registered(type_name)
        if info is not None:
            try:
                return _decode_registered(info, version, payload)
            except (UpcastFailed, msgspec.ValidationError, ValueError):
                pass  # readable as raw data; verify() says why
    return _raw(type_name, version, payload)


def _raw(type_name: str, version: int, payload: bytes | msgspec.Raw) -> RawEvent:
    data = _raw_decoder.decode(payload)
    if not isinstance(data, dict):
        raise msgspec.ValidationError(f"payload of {type_name} is not a mapping")
    return RawEvent(type_name, version, data)


def _decode_registered(info: EventType, version: int, payload: bytes | msgspec.Raw) -> AnyEvent:
    """A registered type's payload in its current shape (raises when it cannot be)."""
    decoder = _class_decoder(info.cls)
    if version >= info.version:  # current (or newer: new fields are ignored) - as stored
        event: AnyEvent = decoder.decode(payload)
        return event
    data = _raw_decoder.decode(payload)
    if not isinstance(data, dict):
        raise msgspec.ValidationError(f"payload of {info.name} is not a mapping")
    try:
        upcasted = _encoder.encode(upcast(info.name, version, data))
    except (OverflowError, TypeError, msgspec.EncodeError) as exc:
        raise UpcastFailed(
            f"the upcasted payload of {info.name!r} cannot be encoded: {exc}"
        ) from exc
    upcast_event: AnyEvent = decoder.decode(upcasted)
    return upcast_event


def why_raw(type_name: str, version: int, payload: bytes | msgspec.Raw) -> str | None:
    """Why a payload of a registered type reads as raw data (None: it does not, or unknown).

    >>> why_raw("NoSuchType", 1, bytes([0x80])) is None
    True
    """
    info = registered(type_name)
    if info is None:
        return None
    try:
        _decode_registered(info, version, payload)
    except UpcastFailed as exc:
        return str(exc)
    except (msgspec.ValidationError, ValueError) as exc:
        return (
            f"the payload of {info.name!r} v{version} does not fit {info.cls.__qualname__}: {exc}"
        )
    return None


def encode_raw_payload(event: RawEvent) -> bytes:
    """The payload bytes a raw event is stored with."""
    return _encoder.encode(event.data)


def as_read(event: RawEvent) -> AnyEvent:
    """``event`` as a later read returns it: raw data of a known type decodes as that type."""
    if event.type not in EVENT_TYPES and registered(event.type) is None:
        return event
    return decode_payload(event.type, event.version, _encoder.encode(event.data))


class _Typed:
    """The one-pass decoder of stored events.

    The envelope with the payload typed as the union of every known event type (tag ``type``),
    rebuilt when the registry of event types changes.
    """

    size = -1
    decoder: msgspec.msgpack.Decoder[Any] | None = None
    #: the same envelope, a whole msgpack array of them in one call
    many: msgspec.msgpack.Decoder[Any] | None = None

    @classmethod
    def get_many(cls) -> msgspec.msgpack.Decoder[Any]:
        cls.get()
        assert cls.many is not None
        return cls.many

    @classmethod
    def get(cls) -> msgspec.msgpack.Decoder[Any]:
        if cls.decoder is None or cls.size != len(EVENT_TYPES):
            payload_type = Union[tuple(EVENT_TYPES.values())]  # type: ignore[valid-type]  # noqa: UP007
            envelope = msgspec.defstruct(
                "TypedEnvelope",
                [
                    ("type", str),
                    ("version", int),
                    ("position", int),
                    ("recorded_at", datetime),
                    ("event_id", UUID | None),
                    ("payload", payload_type),
                    ("check", int),
                ],
                array_like=True,
                gc=False,  # holds no containers: never part of a cycle, never traced
            )
            cls.decoder = msgspec.msgpack.Decoder(envelope)
            cls.many = msgspec.msgpack.Decoder(list[envelope])  # type: ignore[valid-type]
            cls.size = len(EVENT_TYPES)
        return cls.decoder


def decode_stream(run_id: UUID, items: Iterable[tuple[bytes, bytes]]) -> list[EventRecord]:
    """Decode a run's ``(key, value)`` pairs (key = stream number + seq), seq from the keys."""
    return [decode_event(run_id, int.from_bytes(key[8:], "big"), value) for key, value in items]


#: values decoded per msgspec call (small enough that the envelopes stay in the CPU cache
#: while the records are built from them)
_BATCH = 256
_POSITION = attrgetter("position")
_PAYLOAD = attrgetter("payload")
_RECORDED_AT = attrgetter("recorded_at")
_EVENT_ID = attrgetter("event_id")
_VERSION = attrgetter("version")
_TYPE = attrgetter("type")
_CLASS_NAME = attrgetter("__class__.__name__")


def decode_batch(
    stream_ids: Iterable[UUID], seqs: Iterable[int], values: list[bytes]
) -> list[EventRecord] | None:
    """The records of ``values`` decoded in one msgspec call, or None when that cannot be done.

    Every value's CRC is checked (in C, ``map(crc32, ...)``), the values are joined into one
    msgpack array and decoded by the typed decoder at once, and the records are built by
    ``map`` over the envelopes' fields: no Python loop per event. None - the caller decodes
    value by value, naming any damaged one - when a CRC does not match, a value names a type
    that is not built in, or a payload's type disagrees with its envelope's.
    """
    n = len(values)
    if list(map(crc32, values)).count(_RESIDUE) != n:
        return None
    decode = _Typed.get_many().decode
    ids, numbers = iter(stream_ids), iter(seqs)
    out: list[EventRecord] = []
    for k in range(0, n, _BATCH):  # a slice at a time: its objects are still in the CPU cache
        part = values[k : k + _BATCH]
        try:
            envs = decode(b"\xdd" + len(part).to_bytes(4, "big") + b"".join(part))
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
        payloads = list(map(_PAYLOAD, envs))
        if list(map(_TYPE, envs)) != list(map(_CLASS_NAME, payloads)):
            return None
        out += map(
            EventRecord,
            islice(ids, len(part)),
            islice(numbers, len(part)),
            map(_POSITION, envs),
            payloads,
            map(_RECORDED_AT, envs),
            map(_EVENT_ID, envs),
            map(_VERSION, envs),
        )
    return out


def decode_values(run_id: UUID, first_seq: int, values: Iterable[bytes]) -> list[EventRecord]:
    """Decode the values of a run's consecutive events ``first_seq, first_seq + 1, …``.

    The replay path: the whole list in one msgspec call (:func:`decode_batch`); else one typed
    decode per event (envelope and payload in one pass), and the two-pass path
    (:func:`decode_event`) only for what the typed decoder refuses.
    """
    values = values if isinstance(values, list) else list(values)
    if len(values) > 1:
        n = len(values)
        found = decode_batch(repeat(run_id, n), range(first_seq, first_seq + n), values)
        if found is not None:
            return found
    decode = _Typed.get().decode
    out: list[EventRecord] = []
    append = out.append
    seq = first_seq
    for value in values:
        if crc32(value) != _RESIDUE:
            append(decode_event(run_id, seq, value))  # raises CorruptRecordError
            continue
        if _is_builtin(value):
            try:
                env = decode(value)
                payload = env.payload
                if type(payload).__name__ == env.type:
                    append(
                        EventRecord(
                            run_id,
                            seq,
                            env.position,
                            payload,
                            env.recorded_at,
                            env.event_id,
                            env.version,
                        )
                    )
                    seq += 1
                    continue
            except (msgspec.DecodeError, msgspec.ValidationError):
                pass
        append(_decode_two_pass(run_id, seq, value))
        seq += 1
    return out


_view_decoders: dict[type, msgspec.msgpack.Decoder[Any]] = {}
V = TypeVar("V")


def _view_decoder(view: type) -> msgspec.msgpack.Decoder[Any]:
    """The envelope with the payload decoded as ``view`` (built once per view)."""
    decoder = _view_decoders.get(view)
    if decoder is None:
        envelope = msgspec.defstruct(
            "ViewEnvelope",
            [
                ("type", str),
                ("version", int),
                ("position", int),
                ("recorded_at", msgspec.Raw),
                ("event_id", msgspec.Raw),
                ("payload", view),
                ("check", int),
            ],
            array_like=True,
        )
        decoder = _view_decoders[view] = msgspec.msgpack.Decoder(envelope)
    return decoder


def decode_view(stream_id: UUID, seq: int, value: bytes, view: type[V]) -> tuple[int, str, V]:
    """``(seq, stored type name, payload decoded as view)`` of one stored event.

    A view is a msgspec Struct naming only the payload fields a reader needs (with defaults
    for those some types lack): msgspec skips the rest without building them, and nothing is
    upcast. Damaged bytes raise :class:`CorruptRecordError`; a payload the view refuses, a
    ``ValueError`` naming the event.
    """
    if crc32(value) != _RESIDUE:
        decode_event(stream_id, seq, value)  # raises CorruptRecordError
    try:
        env = _view_decoder(view).decode(value)
    except msgspec.ValidationError as exc:
        raise ValueError(
            f"stream {stream_id} seq {seq}: the stored payload does not fit the view "
            f"{view.__qualname__}: {exc}; give the view's fields defaults or looser types"
        ) from None
    except msgspec.DecodeError as exc:
        raise _undecodable(stream_id, seq, exc) from exc
    payload: V = env.payload
    return seq, env.type, payload


def decode_views(
    stream_id: UUID, first_seq: int, values: Iterable[bytes], view: type[V]
) -> list[tuple[int, str, V]]:
    """:func:`decode_view` of the consecutive events ``first_seq, first_seq + 1, ...``."""
    decode = _view_decoder(view).decode
    out: list[tuple[int, str, V]] = []
    append = out.append
    seq = first_seq
    for value in values:
        if crc32(value) != _RESIDUE:
            append(decode_view(stream_id, seq, value, view))  # raises CorruptRecordError
        else:
            try:
                env = decode(value)
                append((seq, env.type, env.payload))
            except (msgspec.DecodeError, msgspec.ValidationError):
                append(decode_view(stream_id, seq, value, view))  # raises, naming the event
        seq += 1
    return out


def decode_event(run_id: UUID, seq: int, value: bytes) -> EventRecord:
    """Decode one stored event value (the key gives ``run_id`` and ``seq``).

    Known types decode in one pass; anything else (an unknown type, a shape this version does
    not accept) takes the two-pass path and may come back as a ``RawEvent``. Raises
    :class:`CorruptRecordError` naming the run and seq when the bytes are damaged (the CRC
    does not match, or the bytes do not decode).
    """
    if not _intact(value):
        raise CorruptRecordError(
            f"run {run_id} seq {seq}: stored event is damaged (its CRC-32 does not match); "
            "run `store.verify()` / restore the store from a backup",
            run_id=run_id,
            seq=seq,
        )
    if _is_builtin(value):
        try:
            env = _Typed.get().decode(value)
            if type(env.payload).__name__ == env.type:
                return EventRecord(
                    run_id,
                    seq,
                    env.position,
                    env.payload,
                    env.recorded_at,
                    env.event_id,
                    env.version,
                )
        except (msgspec.DecodeError, msgspec.ValidationError):
            pass
    return _decode_two_pass(run_id, seq, value)


def _undecodable(run_id: UUID, seq: int, exc: Exception) -> CorruptRecordError:
    return CorruptRecordError(
        f"run {run_id} seq {seq}: stored event cannot be decoded ({exc}); "
        "run `store.verify()` / restore the store from a backup",
        run_id=run_id,
        seq=seq,
    )


def recorded_at_of(stream_id: UUID, seq: int, value: bytes) -> datetime:
    """When the stored event ``value`` was recorded (its payload is not decoded)."""
    try:
        return _envelope_decoder.decode(value).recorded_at
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise _undecodable(stream_id, seq, exc) from exc


def _decode_two_pass(run_id: UUID, seq: int, value: bytes) -> EventRecord:
    """The envelope first (payload undecoded), then the payload by its stored type name."""
    try:
        env = _envelope_decoder.decode(value)
        event = decode_payload(env.type, env.version, env.payload)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise _undecodable(run_id, seq, exc) from exc
    return EventRecord(run_id, seq, env.position, event, env.recorded_at, env.event_id, env.version)


T = TypeVar("T")


class RecordCodec(Generic[T]):
    """Encoder/decoder pair for one stored record type, both built once."""

    def __init__(self, cls: type[T]) -> None:
        self._decoder: msgspec.msgpack.Decoder[T] = msgspec.msgpack.Decoder(cls)

    def encode(self, obj: T) -> bytes:
        """Encode ``obj`` (``ValueError`` when a value cannot be stored)."""
        try:
            return _encoder.encode(obj)
        except (OverflowError, TypeError) as exc:
            raise ValueError(
                f"{type(obj).__name__} cannot be stored: {exc} (integers must fit in 64 bits, "
                "values must be JSON-like); nothing was written"
            ) from None

    def decode(self, value: bytes, kind: str, key: object, part: str = "") -> T:
        """Decode ``value``; ``kind``/``key``/``part`` name the record if the bytes are damaged.

        (The name is only formatted on error: this runs on the append path.)
        """
        try:
            return self._decoder.decode(value)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            what = f"{kind} {key} {part}".rstrip()
            raise CorruptRecordError(
                f"{what}: stored record cannot be decoded ({exc}); restore the store from a "
                "backup or delete the damaged run",
                run_id=key if kind == "run" and isinstance(key, UUID) else None,
            ) from exc


SESSION = RecordCodec(Session)
RUN_RECORD = RecordCodec(RunRecord)
RUN_STATE = RecordCodec(RunState)
STREAM_RECORD = RecordCodec(StreamRecord)
