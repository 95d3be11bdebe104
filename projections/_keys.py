"""Key helpers shared by the built-in projectors."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta

from eventlog.model.status import RunStatus

__all__ = ["STATUS_CODE", "STATUS_OF_CODE", "inv_micros", "micros", "u64"]

_U64 = struct.Struct(">Q")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX = (1 << 63) - 1

STATUS_CODE: dict[RunStatus, bytes] = {s: bytes([i]) for i, s in enumerate(RunStatus)}
STATUS_OF_CODE: dict[bytes, RunStatus] = {v: k for k, v in STATUS_CODE.items()}


def u64(n: int) -> bytes:
    """Big-endian u64 (byte order = numeric order)."""
    return _U64.pack(n)


def read_u64(raw: bytes | None) -> int:
    """Decode a u64 counter (0 when absent)."""
    return 0 if raw is None else int(_U64.unpack(raw)[0])


def micros(ts: datetime) -> int:
    """Microseconds since the epoch (exact, no float)."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return (ts - _EPOCH) // timedelta(microseconds=1)


def inv_micros(ts: datetime) -> bytes:
    """A key part that sorts newest first."""
    return _U64.pack(_MAX - micros(ts))
