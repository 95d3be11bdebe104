"""Export a store as JSON Lines, and import such a file all-or-nothing.

One JSON object per line, in this order: ``session`` lines, ``run`` lines (the records needed
to recreate them), ``stream`` lines (streams of other kinds), then ``event`` lines in log
order::

    {"kind":"session","id":…,"title":…,"model":…,"metadata":{…},"created_at":…,"updated_at":…}
    {"kind":"run","id":…,"session_id":…,"status":…,"provider":…,"model":…,"metadata":{…},…}
    {"kind":"stream","id":…,"stream_kind":"agents.session","metadata":{…},"created_at":…,…}
    {"kind":"event","run_id":…,"seq":1,"type":"TextDelta","version":1,"recorded_at":…,
     "event_id":null,"payload":{"type":"TextDelta","delta":"Hi","timestamp":…}}

A session's messages are ``event`` lines of type ``MessageAppended`` whose ``run_id`` is the
session id; a stream's events have the stream's id there. Positions are not exported: the
target store assigns its own, in the same order. Events of registered types are exported in
their current shape and version (older stored versions upcast), so an export is also a
migration; an event type this version does not know is kept as raw data and round-trips
exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from eventlog.engine.core import Engine
from eventlog.engine.stream_index import StreamKind
from eventlog.errors import EventLogError
from eventlog.model.events import EVENT_TYPES, AnyEvent, RawEvent, event_type_name, event_version
from eventlog.model.records import EventRecord, RunRecord, Session, StreamRecord, check_kind
from eventlog.model.registry import registered
from eventlog.model.status import RunStatus
from eventlog.storage.codec import decode_payload
from eventlog.storage.kv import KVTxn

__all__ = ["ImportFileError", "ImportSummary", "export_lines", "import_lines"]


class SessionLine(msgspec.Struct, tag_field="kind", tag="session", forbid_unknown_fields=True):
    """A session record."""

    id: UUID
    title: str
    model: str
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class RunLine(msgspec.Struct, tag_field="kind", tag="run", forbid_unknown_fields=True):
    """A run record (``status`` and ``updated_at`` are recomputed from the events on import)."""

    id: UUID
    session_id: UUID
    status: RunStatus
    provider: str
    model: str
    metadata: dict[str, Any]
    client_request_id: str | None
    created_at: datetime
    updated_at: datetime


class StreamLine(msgspec.Struct, tag_field="kind", tag="stream", forbid_unknown_fields=True):
    """A stream of another kind (``updated_at`` is recomputed from its events on import)."""

    id: UUID
    stream_kind: str
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class EventLine(msgspec.Struct, tag_field="kind", tag="event", forbid_unknown_fields=True):
    """One event of a run (or a session's message stream)."""

    run_id: UUID
    seq: int
    type: str
    version: int
    recorded_at: datetime
    event_id: UUID | None
    payload: msgspec.Raw


Line = SessionLine | RunLine | StreamLine | EventLine
_line_decoder = msgspec.json.Decoder(Line)
_encoder = msgspec.json.Encoder()


class ImportFileError(EventLogError, ValueError):
    """A line of an import file is invalid; nothing was written.

    ``line`` is 1-based; ``field`` names the offending field when there is one.
    """

    def __init__(self, line: int, message: str, field: str | None = None) -> None:
        self.line = line
        self.field = field
        where = f"line {line}" + (f", field `{field}`" if field else "")
        super().__init__(f"{where}: {message}; nothing was imported")


@dataclass(frozen=True)
class ImportSummary:
    """What an import wrote."""

    sessions: int
    runs: int
    events: int
    streams: int = 0


def _payload(event: AnyEvent) -> Any:
    if isinstance(event, RawEvent):
        return event.data
    return msgspec.to_builtins(event)


def event_line(record: EventRecord) -> bytes:
    """The export line of one stored event."""
    event = record.event
    version = event_version(event)  # the current version: the event is in its current shape
    line = EventLine(
        record.run_id,
        record.seq,
        event_type_name(event),
        version,
        record.recorded_at,
        record.event_id,
        msgspec.Raw(_encoder.encode(_payload(event))),
    )
    return _encoder.encode(line)


def export_lines(
    sessions: Iterable[Session],
    runs: Iterable[RunRecord],
    events: Iterable[EventRecord],
    streams: Iterable[StreamRecord] = (),
) -> Iterator[bytes]:
    """Encode records and events as export lines (no trailing newline)."""
    for s in sessions:
        yield _encoder.encode(
            SessionLine(s.id, s.title, s.model, s.metadata, s.created_at, s.updated_at)
        )
    for r in runs:
        yield _encoder.encode(
            RunLine(
                r.id,
                r.session_id,
                r.status,
                r.provider,
                r.model,
                r.metadata,
                r.client_request_id,
                r.created_at,
                r.updated_at,
            )
        )
    for st in streams:
        yield _encoder.encode(StreamLine(st.id, st.kind, st.metadata, st.created_at, st.updated_at))
    for record in events:
        yield event_line(record)


def _field_of(message: str) -> str | None:
    marker = "- at `$."
    if marker in message:
        return message.split(marker, 1)[1].rstrip("`").split("[")[0] or None
    if "missing required field `" in message:
        return message.split("missing required field `", 1)[1].split("`")[0]
    return None


def parse_lines(lines: Iterable[str | bytes]) -> list[tuple[int, Line, AnyEvent | None]]:
    """Validate every line and decode event payloads; blank lines are skipped.

    Raises :class:`ImportFileError` naming the first bad line (1-based) and field.
    """
    parsed: list[tuple[int, Line, AnyEvent | None]] = []
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        try:
            line = _line_decoder.decode(text)
        except msgspec.ValidationError as exc:
            raise ImportFileError(number, str(exc), _field_of(str(exc))) from None
        except msgspec.DecodeError as exc:
            raise ImportFileError(number, f"not valid JSON ({exc})") from None
        event: AnyEvent | None = None
        if isinstance(line, EventLine):
            if line.seq < 1:
                raise ImportFileError(number, f"seq must be >= 1, got {line.seq}", "seq")
            event = _decode_event(number, line)
        parsed.append((number, line, event))
    return parsed


def _decode_event(number: int, line: EventLine) -> AnyEvent:
    try:
        data = msgspec.json.decode(line.payload)
    except msgspec.DecodeError as exc:
        raise ImportFileError(number, f"payload is not valid JSON ({exc})", "payload") from None
    if not isinstance(data, dict):
        raise ImportFileError(number, "payload must be a JSON object", "payload")
    cls: type[msgspec.Struct] | None = EVENT_TYPES.get(line.type)
    current_version = 1 if cls is None else cls.version  # type: ignore[attr-defined]
    if cls is None:
        info = registered(line.type)
        if info is None:
            return RawEvent(line.type, line.version, data)  # unknown type: kept as raw data
        if line.type != info.name or line.version < info.version:
            # an old name or version: stored as it is, upcast when read (like the original)
            return RawEvent(line.type, line.version, data)
        cls, current_version = info.cls, info.version
    try:
        event: AnyEvent = msgspec.json.decode(line.payload, type=cls)
    except msgspec.ValidationError as exc:
        if line.version > current_version:  # a newer shape of a known type: keep it raw
            return decode_payload(line.type, line.version, msgspec.msgpack.encode(data))
        field = _field_of(str(exc))
        raise ImportFileError(
            number, f"payload of {line.type}: {exc}", f"payload.{field}"
        ) from None
    return event


def import_lines(
    engine: Engine, txn: KVTxn, parsed: list[tuple[int, Line, AnyEvent | None]]
) -> ImportSummary:
    """Write ``parsed`` lines in ``txn`` (the caller commits, or aborts on any error)."""
    kinds: dict[UUID, StreamKind] = {}
    counts = {"session": 0, "run": 0, "stream": 0, "event": 0}
    for number, line, event in parsed:
        try:
            if isinstance(line, SessionLine):
                engine.records.create_session(
                    txn,
                    Session(
                        line.id,
                        line.title,
                        line.model,
                        line.metadata,
                        line.created_at,
                        line.updated_at,
                    ),
                )
                kinds[line.id] = "session"
                counts["session"] += 1
            elif isinstance(line, RunLine):
                engine.records.create_run(
                    txn,
                    RunRecord(
                        line.id,
                        line.session_id,
                        RunStatus.PENDING,
                        line.provider,
                        line.model,
                        line.metadata,
                        line.client_request_id,
                        line.created_at,
                        line.created_at,
                    ),
                )
                kinds[line.id] = "run"
                counts["run"] += 1
            elif isinstance(line, StreamLine):
                kind_name = check_kind(line.stream_kind)
                created = line.created_at
                engine.streams.create_stream(
                    txn, StreamRecord(line.id, kind_name, line.metadata, created, created)
                )
                kinds[line.id] = "stream"
                counts["stream"] += 1
            else:
                assert event is not None
                kind = kinds.get(line.run_id)
                if kind is None:
                    kind = engine.index.stream_kind(txn, line.run_id)
                    if kind is None:
                        raise ImportFileError(
                            number,
                            f"run {line.run_id} is not defined: its run (or session) line must "
                            "come before its events",
                            "run_id",
                        )
                engine.appends.import_event(
                    txn, line.run_id, kind, line.seq, event, line.recorded_at, line.event_id
                )
                counts["event"] += 1
        except ImportFileError:
            raise
        except EventLogError as exc:  # a rule, or a projector's failure
            # the chain is kept: a storage failure under a projector (LMDB's full map) is the
            # backend's to handle - it grows the map and runs the import again
            raise ImportFileError(number, str(exc)) from exc
        except (ValueError, TypeError) as exc:  # a value too big, or of the wrong type
            raise ImportFileError(number, str(exc)) from None
    return ImportSummary(counts["session"], counts["run"], counts["event"], counts["stream"])
