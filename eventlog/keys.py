"""The key layout on disk. Big-endian ``>Q`` integers so byte order is numeric order.

======================  ==================================  ==================================
table                   key                                 value
======================  ==================================  ==================================
meta                    b"format"                           store format version
sessions                session_id (16 bytes)               Session
runs                    run_id (16)                         RunRecord as created
states                  run_id (16)                         RunState (materialized fold)
events                  run_id (16) + seq (>Q)              Envelope (type, version, position,
                                                            recorded_at, event_id, payload)
positions               position (>Q)                       run_id (16) + seq (>Q); b"" is the
                                                            tombstone of a deleted last event
event_ids               run_id (16) + event_id (16)         seq (>Q)
client_requests         session_id (16) + client_request_id run_id (16)
projections             projector name + 0x00 + user key    user value
projector_meta          projector name                      ProjectorMeta (version, checkpoint)
======================  ==================================  ==================================

Every key stays far below LMDB's 511-byte limit (client_request_id and projector keys are
checked).
"""

from __future__ import annotations

import struct
from uuid import UUID

__all__ = [
    "FORMAT_KEY",
    "FORMAT_VERSION",
    "MAX_KEY",
    "event_key",
    "pack_u64",
    "prefix_end",
    "unpack_u64",
]

_U64 = struct.Struct(">Q")
pack_u64 = _U64.pack


def unpack_u64(value: bytes) -> int:
    """Decode a big-endian u64."""
    n: int = _U64.unpack(value)[0]
    return n


FORMAT_KEY = b"format"
FORMAT_VERSION = 1
MAX_KEY = 480
SEQ_END = b"\xff" * 8


def prefix_end(prefix: bytes) -> bytes | None:
    r"""The smallest key greater than every key that starts with ``prefix`` (None: no bound).

    >>> prefix_end(b"ab"), prefix_end(b"a\xff"), prefix_end(b"\xff")
    (b'ac', b'b', None)
    """
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


def event_key(run_id: UUID, seq: int) -> bytes:
    """Key of event ``seq`` of ``run_id``."""
    return run_id.bytes + _U64.pack(seq)
