"""How everything is stored: msgspec msgpack, one reused Encoder/Decoder per type.

A stored event is an :class:`Envelope` (array-like, compact) that carries the event's type name
and schema version, its log position, the time the store recorded it, the optional
idempotency key, the payload (the event Struct encoded as a msgpack map, tag included) and a
CRC-32 of all of it. Readers check the CRC, then decode the envelope and the payload in one
pass; a type this code does not know becomes a :class:`~eventlog.events.RawEvent` instead of
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
from typing import Any, Generic, TypeVar, Union
from uuid import UUID
from zlib import crc32

import msgspec

from eventlog.errors import CorruptRecordError
from eventlog.events import EVENT_TYPES, AnyEvent, Event, RawEvent
from eventlog.records import EventRecord, RunRecord, RunState, Session

__all__ = [
    "MAX_EVENT_BYTES",
    "Envelope",
    "EnvelopeView",
    "decode_event",
    "decode_payload",
    "decode_stream",
    "decode_values",
    "encode_event",
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


def _decoder_for(type_name: str) -> msgspec.msgpack.Decoder[Any] | None:
    """The reused decoder of a registered event type (built once, on first use)."""
    decoder = _payload_decoders.get(type_name)
    if decoder is None:
        cls = EVENT_TYPES.get(type_name)
        if cls is None:
            return None
        decoder = _payload_decoders[type_name] = msgspec.msgpack.Decoder(cls)
    return decoder


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
            envelope = Envelope(
                type(event).__name__,
                event.version,
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
    """Decode a payload of ``type_name``; unknown or undecodable-as-known types read as raw."""
    decoder = _decoder_for(type_name)
    if decoder is not None:
        try:
            event: Event = decoder.decode(payload)
            return event
        except msgspec.ValidationError:
            pass  # a newer, incompatible shape of a known type: keep it readable as raw data
    data = _raw_decoder.decode(payload)
    if not isinstance(data, dict):
        raise msgspec.ValidationError(f"payload of {type_name} is not a mapping")
    return RawEvent(type_name, version, data)


class _Typed:
    """The one-pass decoder of stored events.

    The envelope with the payload typed as the union of every known event type (tag ``type``),
    rebuilt when the registry of event types changes.
    """

    size = -1
    decoder: msgspec.msgpack.Decoder[Any] | None = None

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
            )
            cls.decoder = msgspec.msgpack.Decoder(envelope)
            cls.size = len(EVENT_TYPES)
        return cls.decoder


def decode_stream(run_id: UUID, items: Iterable[tuple[bytes, bytes]]) -> list[EventRecord]:
    """Decode a run's ``(key, value)`` pairs (key = stream number + seq), seq from the keys."""
    return [decode_event(run_id, int.from_bytes(key[8:], "big"), value) for key, value in items]


def decode_values(run_id: UUID, first_seq: int, values: Iterable[bytes]) -> list[EventRecord]:
    """Decode the values of a run's consecutive events ``first_seq, first_seq + 1, …``.

    The replay path: one typed decode per event (envelope and payload in one pass), and the
    two-pass path (:func:`decode_event`) only for what the typed decoder refuses.
    """
    decode = _Typed.get().decode
    out: list[EventRecord] = []
    append = out.append
    seq = first_seq
    for value in values:
        if crc32(value) != _RESIDUE:
            append(decode_event(run_id, seq, value))  # raises CorruptRecordError
            continue
        try:
            env = decode(value)
            payload = env.payload
            if type(payload).__name__ == env.type:
                append(
                    EventRecord(run_id, seq, env.position, payload, env.recorded_at, env.event_id)
                )
                seq += 1
                continue
        except (msgspec.DecodeError, msgspec.ValidationError):
            pass
        append(decode_event(run_id, seq, value))
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
    try:
        env = _Typed.get().decode(value)
        if type(env.payload).__name__ == env.type:
            return EventRecord(
                run_id, seq, env.position, env.payload, env.recorded_at, env.event_id
            )
    except (msgspec.DecodeError, msgspec.ValidationError):
        pass
    try:
        env = _envelope_decoder.decode(value)
        event = decode_payload(env.type, env.version, env.payload)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise CorruptRecordError(
            f"run {run_id} seq {seq}: stored event cannot be decoded ({exc}); "
            "run `store.verify()` / restore the store from a backup",
            run_id=run_id,
            seq=seq,
        ) from exc
    return EventRecord(run_id, seq, env.position, event, env.recorded_at, env.event_id)


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
