"""Points in time as a person types them: an ISO date/time, or a span back from now (``2h``).

>>> from datetime import UTC, datetime
>>> now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
>>> parse_time("2h", now=now)
datetime.datetime(2025, 3, 1, 10, 0, tzinfo=datetime.timezone.utc)
>>> parse_time("2025-02-27", now=now)
datetime.datetime(2025, 2, 27, 0, 0, tzinfo=datetime.timezone.utc)
>>> parse_time("2025-02-27T08:30:00+01:00", now=now).isoformat()
'2025-02-27T07:30:00+00:00'
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from eventlog.errors import QueryError

__all__ = ["parse_time"]

_SPAN = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_UNITS = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}


def parse_time(text: str, *, now: datetime | None = None, option: str = "time") -> datetime:
    """The aware UTC datetime ``text`` names.

    ``text`` is an ISO 8601 date or date-time (a time without an offset is UTC; ``Z`` is
    accepted), or a span back from ``now`` (default: the current time): a number and a unit
    among ``ms s m h d w`` (``90s``, ``30m``, ``2h``, ``7d``, ``1.5h``). Anything else is a
    :class:`~eventlog.errors.QueryError` naming ``option`` and the accepted forms.
    """
    value = text.strip()
    span = _SPAN.fullmatch(value)
    if span is not None:
        base = datetime.now(UTC) if now is None else now.astimezone(UTC)
        return base - float(span.group(1)) * _UNITS[span.group(2)]
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise QueryError(
            option,
            text,
            "give an ISO time (2025-03-01, 2025-03-01T14:13:43, ...+02:00) or a span "
            "back from now (90s, 30m, 2h, 7d, 1w)",
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
