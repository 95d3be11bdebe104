"""Embeddings as events: what an upsert and a delete store, and what a search returns.

An embedding is a stream of kind ``eventlog.embedding`` whose id is derived from the
embedding's own id (:func:`embedding_stream_id`); :class:`EmbeddingUpserted` and
:class:`EmbeddingDeleted` are its events, so embeddings replay, export, import, copy, verify
and subscribe like any stream. :class:`EmbeddingsConfigured` (in the one stream
:data:`CONFIG_STREAM`) fixes the store's dimension ahead of the first upsert.

Vectors are stored as little-endian float32 bytes (``pack_vector``), read back as a tuple of
floats: this module is pure (no numpy). :func:`check_vector` is the one check of a vector
argument: a sequence of finite real numbers, not all zero (cosine similarity is undefined
for the zero vector), at most :data:`MAX_DIMENSION` of them.

>>> vec = check_vector([3, 4])
>>> unpack_vector(pack_vector(vec))
(3.0, 4.0)
>>> check_vector([0.0, 0.0])  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
eventlog.errors.InvalidVectorError: the zero vector has no direction ...
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import msgspec

from eventlog.errors import EmbeddingDimensionError, InvalidVectorError
from eventlog.model.records import stream_id_for
from eventlog.model.registry import event_type

__all__ = [
    "CONFIG_STREAM",
    "EMBEDDING_KIND",
    "MAX_DIMENSION",
    "MAX_ID_LENGTH",
    "EmbeddingDeleted",
    "EmbeddingHit",
    "EmbeddingRecord",
    "EmbeddingUpserted",
    "EmbeddingsConfigured",
    "check_embedding_id",
    "check_vector",
    "embedding_stream_id",
    "pack_vector",
    "unpack_vector",
]

#: The stream kind of every embedding's stream.
EMBEDDING_KIND = "eventlog.embedding"
#: The stream kind of the store's embedding configuration (one stream).
CONFIG_KIND = "eventlog.embeddings"
#: The id of the configuration stream.
CONFIG_STREAM = stream_id_for(CONFIG_KIND, "config")
#: The largest dimension accepted (a vector is at most 64 KiB of float32).
MAX_DIMENSION = 16384
#: The longest embedding id accepted, in characters.
MAX_ID_LENGTH = 256


@event_type("EmbeddingUpserted")
class EmbeddingUpserted(msgspec.Struct, frozen=True):
    """An embedding stored or replaced: its vector (float32 bytes) and what it describes."""

    embedding_id: str
    vector: bytes
    session_id: UUID | None = None
    run_id: UUID | None = None
    text: str | None = None
    metadata: dict[str, Any] = {}


@event_type("EmbeddingDeleted")
class EmbeddingDeleted(msgspec.Struct, frozen=True):
    """An embedding removed (by ``delete``, ``delete_by_session`` or ``delete_session``)."""

    embedding_id: str


@event_type("EmbeddingsConfigured")
class EmbeddingsConfigured(msgspec.Struct, frozen=True):
    """The store's embedding dimension, fixed before (or by) the first upsert."""

    dimension: int


class EmbeddingRecord(msgspec.Struct, frozen=True):
    """A stored embedding as ``store.embeddings.get`` returns it."""

    id: str
    vector: tuple[float, ...]
    session_id: UUID | None
    run_id: UUID | None
    text: str | None
    metadata: dict[str, Any]


class EmbeddingHit(msgspec.Struct, frozen=True):
    """One search result: the embedding and its cosine similarity to the query (-1..1)."""

    id: str
    score: float
    session_id: UUID | None
    run_id: UUID | None
    text: str | None
    metadata: dict[str, Any]


def embedding_stream_id(embedding_id: str) -> UUID:
    """The id of embedding ``embedding_id``'s stream (a UUID 5: never changes)."""
    return stream_id_for(EMBEDDING_KIND, embedding_id)


def check_embedding_id(value: object) -> str:
    """``value`` if it is a valid embedding id: a non-empty str of at most 256 characters."""
    if not isinstance(value, str):
        raise TypeError(f"embedding_id must be a str, got {value!r:.80}")
    if not value or len(value) > MAX_ID_LENGTH:
        raise ValueError(f"embedding_id {value!r:.80} must be 1 to {MAX_ID_LENGTH} characters long")
    return value


def check_vector(vector: object, dimension: int | None = None) -> tuple[float, ...]:
    """The vector as a tuple of floats, else :class:`InvalidVectorError` saying why.

    Accepts any sequence of real numbers (a list, a tuple, a 1-d numpy array).
    """
    if isinstance(vector, str | bytes | bytearray | memoryview) or not hasattr(vector, "__len__"):
        raise InvalidVectorError(f"a vector must be a sequence of floats, got {vector!r:.80}")
    try:
        # a numpy array's tolist() makes Python floats at C speed; map(float) checks each
        items: Any = vector.tolist() if hasattr(vector, "tolist") else vector
        values = tuple(map(float, items))
    except (TypeError, ValueError):
        raise InvalidVectorError(
            f"a vector must be a sequence of real numbers, got {vector!r:.80}"
        ) from None
    if not values:
        raise InvalidVectorError("the vector is empty: give at least one component")
    if len(values) > MAX_DIMENSION:
        raise InvalidVectorError(
            f"the vector has {len(values)} components; at most {MAX_DIMENSION} are accepted"
        )
    if dimension is not None and len(values) != dimension:
        raise EmbeddingDimensionError(len(values), dimension)
    if not math.isfinite(sum(values)):  # NaN and infinity reach the sum (or it overflows)
        bad = next((i for i, x in enumerate(values) if not math.isfinite(x)), None)
        if bad is not None:
            raise InvalidVectorError(
                f"component {bad} of the vector is {values[bad]}: NaN and infinity are not "
                "accepted; give finite numbers"
            )
    try:
        stored = struct.unpack(f"<{len(values)}f", pack_vector(values))
    except OverflowError:
        raise InvalidVectorError(
            "a component of the vector is too large for float32 (above 3.4e38): scale it down"
        ) from None
    if not any(stored):  # what is stored: float32 (1e-50 is 0 there)
        raise InvalidVectorError(
            "the zero vector has no direction (cosine similarity is undefined): store a "
            "vector with a non-zero component"
        )
    return values


def pack_vector(values: Sequence[float]) -> bytes:
    """The vector as little-endian float32 bytes (how it is stored)."""
    return struct.pack(f"<{len(values)}f", *values)


def unpack_vector(raw: bytes) -> tuple[float, ...]:
    """The stored float32 bytes as a tuple of floats."""
    return struct.unpack(f"<{len(raw) // 4}f", raw)
