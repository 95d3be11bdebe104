"""Key encoding. Big-endian ``>Q`` integers so byte order is numeric order.

The tables and their keys (see ARCHITECTURE.md, "Key layout"):

- ``streams``: stream_id (16 bytes: a run or session id) → stream number (>Q) + kind
  (``r``/``s``);  ``stream_ids``: stream number → stream_id (``b""`` = tombstone)
- ``events``: stream number (>Q) + seq (>Q) → envelope ending with a CRC-32 check (see
  ``eventlog.storage.codec``). Stream numbers grow, so a new stream's events go to the end of the
  table (full pages, short keys)
- ``positions``: position (>Q) → stream number + seq (``b""`` = tombstone of a deleted last
  event)
- ``event_ids``: stream_id + event_id (16) → seq;  ``client_requests``: session_id +
  client_request_id → run_id;  ``session_runs``: session_id + run_id → ``b""``
- ``sessions`` / ``runs``: id → the record as created;  ``meta``: ``b"format"`` → version
- ``projections``: projector name + 0x00 + projector key;  ``projector_meta``: name → meta

Every key stays far below LMDB's 511-byte limit (client_request_id and projector keys are
checked against :data:`MAX_KEY`).
"""

from __future__ import annotations

import struct

__all__ = [
    "COPY_MARKER_KEY",
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
#: Present (in ``meta``) while ``eventlog copy`` fills a store: such a store is refused.
COPY_MARKER_KEY = b"copy.incomplete"
FORMAT_VERSION = 3
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


def event_key(stream_number: int, seq: int) -> bytes:
    """Key of event ``seq`` of the stream numbered ``stream_number``.

    >>> event_key(3, 1).hex()
    '00000000000000030000000000000001'
    """
    return _U64.pack(stream_number) + _U64.pack(seq)
