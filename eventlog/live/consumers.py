"""Persistent consumers: their stored positions, and acknowledgements written with an append.

A named subscription (``store.subscribe(name="indexer")``) is a persistent consumer: the
``consumers`` table stores its acknowledged position under its name, and a restarted
consumer resumes after it. :class:`Ack` names a consumer and a position so that the position
can be committed in the same transaction as an append (``store.append_many(requests,
ack=...)``): a process manager's output and its checkpoint land together or not at all.

>>> Ack("orders-to-invoices", 42)
Ack(consumer='orders-to-invoices', position=42)
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import NamedTuple

import msgspec

from eventlog.engine.core import Engine
from eventlog.errors import AckError, ConsumerNotFound
from eventlog.model.validation import check_seq
from eventlog.storage.kv import KVTxn

__all__ = [
    "Ack",
    "ConsumerInfo",
    "ConsumerRecord",
    "check_ack",
    "check_consumer_name",
    "consumer_record",
    "delete_consumer",
    "list_consumers",
    "put_consumer",
    "write_ack",
]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")


class Ack(NamedTuple):
    """A persistent consumer's new acknowledged position, committed with an append.

    Give it as ``ack=`` to ``append_many`` (a plain ``(name, position)`` tuple works too).
    In the append's transaction the consumer must exist (``ConsumerNotFound``), ``position``
    must not be below its stored position nor beyond the log's last position before the
    append (``AckError``); on any failure nothing of the call is written.

    >>> Ack("indexer", 7).position
    7
    """

    #: the consumer's name, as given to ``store.subscribe(name=...)``
    consumer: str
    #: every input event up to this log position has been processed
    position: int


class ConsumerInfo(msgspec.Struct, frozen=True):
    """A persistent consumer: its acknowledged position and how far behind the log it is.

    ``lag`` = the log's last position minus ``position`` (deleted runs' positions count).
    """

    name: str
    position: int
    lag: int
    updated_at: datetime


class ConsumerRecord(msgspec.Struct, array_like=True):
    """What the ``consumers`` table stores under the consumer's name."""

    position: int
    updated_at: datetime


_CONSUMER_ENCODER = msgspec.msgpack.Encoder()
_CONSUMER_DECODER = msgspec.msgpack.Decoder(ConsumerRecord)


def check_consumer_name(name: object) -> str:
    """Validate a consumer name (1-100 of letters, digits, ``_ . : -``; a letter or digit first).

    >>> check_consumer_name("indexer")
    'indexer'
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"consumer name {name!r} is not valid: use 1-100 letters, digits, '_', '.', ':' or "
            "'-', starting with a letter or digit (for example 'indexer')"
        )
    return name


def check_ack(ack: object) -> Ack | None:
    """An ``ack=`` argument as a checked :class:`Ack` (None stays None); raises at once.

    >>> check_ack(("indexer", 3))
    Ack(consumer='indexer', position=3)
    """
    if ack is None:
        return None
    if not isinstance(ack, tuple) or len(ack) != 2:
        raise TypeError(
            f"ack must be an Ack(consumer, position) or a (name, position) tuple, got {ack!r:.80}"
        )
    name, position = ack
    return Ack(check_consumer_name(name), check_seq(position, "ack position") or 0)


def consumer_record(txn: KVTxn, name: str) -> ConsumerRecord | None:
    """The stored record of consumer ``name`` (None: no such consumer)."""
    raw = txn.get("consumers", name.encode())
    return None if raw is None else _CONSUMER_DECODER.decode(raw)


def put_consumer(txn: KVTxn, name: str, position: int) -> None:
    """Store ``position`` as consumer ``name``'s acknowledged position (now)."""
    record = ConsumerRecord(position, datetime.now(UTC))
    txn.put("consumers", name.encode(), _CONSUMER_ENCODER.encode(record))


def write_ack(engine: Engine, txn: KVTxn, ack: Ack) -> None:
    """Check ``ack`` against the stored consumer and the log, then store it (see :class:`Ack`).

    Called before the append it comes with, so "the log's last position" is the one the
    consumer could have read.
    """
    name, position = ack
    stored = consumer_record(txn, name)
    if stored is None:
        raise ConsumerNotFound(name)
    if position < stored.position:
        raise AckError(
            name,
            position,
            f"it already acknowledged {stored.position} and acknowledgements only move "
            "forward; nothing was written - acknowledge what you processed after that",
        )
    last = engine.index.last_position(txn)
    if position > last:
        raise AckError(
            name,
            position,
            f"the log ends at position {last}; nothing was written - acknowledge a position "
            "you have read",
        )
    put_consumer(txn, name, position)


def list_consumers(engine: Engine, txn: KVTxn) -> list[ConsumerInfo]:
    """Every persistent consumer, by name, with its lag behind the log's last position."""
    last = engine.index.last_position(txn)
    out = []
    for key, raw in txn.scan("consumers", b""):
        record = _CONSUMER_DECODER.decode(raw)
        lag = max(0, last - record.position)
        out.append(ConsumerInfo(key.decode(), record.position, lag, record.updated_at))
    return out


def delete_consumer(txn: KVTxn, name: str) -> bool:
    """Forget consumer ``name``; True if it existed."""
    return txn.delete("consumers", name.encode())
