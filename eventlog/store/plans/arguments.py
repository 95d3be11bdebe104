"""Checks of the facades' arguments that several plans share (every one raises at once).

The sync and async facades build each operation through the same plan, so an argument is
checked once, in the caller's thread or task, before anything is queued or written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec

from eventlog.engine.appends import AppendRequest
from eventlog.model.events import AnyEvent
from eventlog.model.records import StreamRecord, check_kind
from eventlog.model.status import RunStatus
from eventlog.model.validation import check_events, check_fields, check_seq, metadata, uuid_of

__all__ = [
    "append_request",
    "check_id_prefix",
    "check_target",
    "check_meta",
    "check_page",
    "check_status",
    "run_status",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # a placeholder time: only the metadata is checked


def run_status(value: RunStatus | str) -> RunStatus:
    """``value`` as a :class:`RunStatus`, else ``ValueError`` listing the valid ones."""
    try:
        return RunStatus(value)
    except ValueError:
        valid = ", ".join(s.value for s in RunStatus)
        raise ValueError(f"unknown run status {value!r}; use one of: {valid}") from None


def check_status(value: RunStatus | str | None) -> RunStatus | None:
    """An optional status filter (see :func:`run_status`)."""
    return None if value is None else run_status(value)


def check_page(limit: object, offset: object) -> tuple[int, int]:
    """``(limit, offset)`` of a listing: ints >= 0, the limit 100 when None."""
    lim = check_seq(limit, "limit")
    off = check_seq(offset, "offset")
    return (100 if lim is None else lim), (off or 0)


def check_meta(value: Mapping[str, object] | None) -> dict[str, Any]:
    """A ``metadata`` argument copied into a dict."""
    return metadata(value, "metadata")


def append_request(
    rid: UUID,
    events: Iterable[AnyEvent],
    expected_seq: int | None,
    event_ids: Sequence[UUID | str | None] | None,
    where: str,
    kind: str | None = None,
    meta: Mapping[str, object] | None = None,
) -> AppendRequest:
    """A checked :class:`AppendRequest` of a batch (``where`` names the call in errors).

    ``kind`` and ``meta`` as :func:`check_target` checks them.
    """
    if isinstance(events, msgspec.Struct | str | bytes | dict):
        raise TypeError(f"{where}: events must be a list of events, got {events!r:.80}")
    # every event's fields are checked (and the checked copy appended): msgspec does not
    # check types on construction, and a wrong-typed event would break its run's state
    evs = check_events(events, where)
    ids: tuple[UUID | None, ...] | None = None
    if event_ids is not None:
        ids = tuple(None if e is None else uuid_of(e, "event_ids item") for e in event_ids)
        if len(ids) != len(evs):
            raise ValueError(
                f"{where}: {len(ids)} event_ids for {len(evs)} events; give one per event"
            )
    seq = check_seq(expected_seq, "expected_seq")
    if kind is None and meta is None:  # the common case
        return AppendRequest(rid, evs, seq, ids)
    return AppendRequest(rid, evs, seq, ids, *check_target(rid, kind, meta, where))


def check_target(
    rid: UUID, kind: object, meta: Mapping[str, object] | None, where: str
) -> tuple[str | None, dict[str, Any] | None]:
    """``(kind, metadata)`` of a request: a kind is ``"run"``, ``"session"`` or a stream kind.

    ``metadata`` describes a stream that the append may create, so it needs a stream kind
    (runs and sessions are created by ``create_run``/``create_session``); its values must be
    storable (checked as ``create_stream`` checks them).
    """
    if kind is None:
        if meta is not None:
            raise ValueError(
                f"{where}: metadata describes a new stream; give its kind= too (and "
                "expected_seq=0 to create it with these events)"
            )
        return None, None
    if kind in ("run", "session"):
        if meta is not None:
            raise ValueError(
                f"{where}: an append does not create a {kind}, so it takes no metadata; "
                f"create it with store.create_{kind}() (create_run takes events= for one commit)"
            )
        return str(kind), None
    checked = check_kind(kind)
    if meta is None:
        return checked, None
    data = metadata(meta, "metadata")
    record = StreamRecord(rid, checked, data, _EPOCH, _EPOCH)
    return checked, check_fields(record, where).metadata


def check_id_prefix(prefix: str, limit: int) -> tuple[str, int]:
    """``(hex digits, limit)`` of a ``find_*`` call: an id or a prefix of one (dashes allowed)."""
    digits = str(prefix).replace("-", "").lower()
    if not digits or len(digits) > 32 or any(c not in "0123456789abcdef" for c in digits):
        raise ValueError(f"{prefix!r} is not an id or an id prefix (hex digits, dashes allowed)")
    return digits, check_seq(limit, "limit") or 1
