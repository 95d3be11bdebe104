"""Input checks at the edge of the facade: clear TypeError/ValueError before any write."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from eventlog.events import AnyEvent, Event, RawEvent

__all__ = ["check_event", "check_seq", "metadata", "uuid_of"]


def uuid_of(value: object, what: str) -> UUID:
    """``value`` as a UUID (a UUID or its string form), else ``TypeError`` naming ``what``."""
    if isinstance(value, UUID):
        return value
    if isinstance(value, str):
        try:
            return UUID(value)
        except ValueError:
            pass
    raise TypeError(f"{what} must be a UUID (or its string form), got {value!r}")


def check_event(event: object, where: str) -> AnyEvent:
    """``event`` if it is an event, else ``TypeError`` naming the accepted types."""
    if isinstance(event, Event | RawEvent):
        return event
    raise TypeError(
        f"{where}: expected an event (an instance of an eventlog.events class such as "
        f"TextDelta, or eventlog.events.RawEvent), got {type(event).__name__}: {event!r:.80}"
    )


def check_seq(value: object, what: str) -> int | None:
    """An int >= 0 (or None), else ``ValueError`` naming ``what``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be an int >= 0, got {value!r}")
    return value


def metadata(value: Mapping[str, object] | None, what: str) -> dict[str, Any]:
    """A metadata mapping copied into a dict."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} must be a mapping of str to JSON values, got {value!r:.80}")
    return dict(value)
