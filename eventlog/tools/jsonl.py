r"""Export a store as JSON Lines, and import such a file all-or-nothing.

One JSON object per line, in this order: ``session`` lines, ``run`` lines (the records needed
to recreate them), ``stream`` lines (streams of other kinds), then ``event`` lines in log
order::

    {"kind":"session","id":…,"title":…,"model":…,"metadata":{…},"created_at":…,"updated_at":…}
    {"kind":"run","id":…,"session_id":…,"status":…,"provider":…,"model":…,"metadata":{…},…}
    {"kind":"stream","id":…,"stream_kind":"agents.session","metadata":{…},"created_at":…,…}
    {"kind":"event","run_id":…,"seq":1,"type":"TextDelta","version":1,"recorded_at":…,
     "event_id":null,"payload":{"type":"TextDelta","delta":"Hi","timestamp":…}}

The last line is the **trailer**: how many lines of each kind came before it and the SHA-256 of
every byte before it (each line and its ``\n``)::

    {"kind":"trailer","format":1,"counts":{"session":1,"run":2,"stream":0,"event":31},
     "sha256":"9f2c…"}

An export that was cut short (Ctrl-C, a full disk, a lost connection) has no trailer, or one
that does not match, and ``eventlog import`` refuses it. ``import_jsonl`` checks a trailer
whenever there is one; ``require_trailer=True`` (what the CLI passes) also refuses lines
without one. Exports from before the trailer existed can be imported with
``require_trailer=False`` (``eventlog import --allow-untrailed``).

Every line is ASCII-safe for a terminal: besides the control characters JSON escapes anyway,
DEL, C1 controls and Unicode bidi/line-separator characters are written as ``\uXXXX``
escapes (the same strings once parsed). Every value is held to ``MAX_NESTING_DEPTH`` on
import, as on append.

A session's messages are ``event`` lines of type ``MessageAppended`` whose ``run_id`` is the
session id; a stream's events have the stream's id there. Positions are not exported: the
target store assigns its own, in the same order. Events of registered types are exported in
their current shape and version (older stored versions upcast), so an export is also a
migration; an event type this version does not know is kept as raw data and round-trips
exactly.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from eventlog.engine.core import Engine
from eventlog.engine.stream_index import StreamKind
from eventlog.errors import EventLogError, NestingTooDeepError
from eventlog.model.events import EVENT_TYPES, AnyEvent, RawEvent, event_type_name, event_version
from eventlog.model.limits import MAX_NESTING_DEPTH, check_depth
from eventlog.model.records import EventRecord, RunRecord, Session, StreamRecord, check_kind
from eventlog.model.registry import registered
from eventlog.model.status import RunStatus
from eventlog.storage.codec import decode_payload
from eventlog.storage.kv import KVTxn

__all__ = [
    "TRAILER_FORMAT",
    "ImportFileError",
    "ImportSummary",
    "IncompleteExportError",
    "export_lines",
    "import_lines",
    "parse_lines",
]

#: The version of the trailer line's shape.
TRAILER_FORMAT = 1


class SessionLine(msgspec.Struct, tag_field="kind", tag="session", forbid_unknown_fields=True):
    """A session record."""

    id: UUID
    title: str
    model: str
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class RunLine(
    msgspec.Struct, tag_field="kind", tag="run", forbid_unknown_fields=True, omit_defaults=True
):
    """A run record (``status`` and ``updated_at`` are recomputed from the events on import).

    A fork names its parent and fork seq (absent for an ordinary run).
    """

    id: UUID
    session_id: UUID
    status: RunStatus
    provider: str
    model: str
    metadata: dict[str, Any]
    client_request_id: str | None
    created_at: datetime
    updated_at: datetime
    parent_run_id: UUID | None = None
    fork_seq: int | None = None


class StreamLine(
    msgspec.Struct, tag_field="kind", tag="stream", forbid_unknown_fields=True, omit_defaults=True
):
    """A stream of another kind (``updated_at`` is recomputed from its events on import).

    A fork names its parent and fork seq (absent for an ordinary stream).
    """

    id: UUID
    stream_kind: str
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    parent_id: UUID | None = None
    fork_seq: int | None = None


class EventLine(msgspec.Struct, tag_field="kind", tag="event", forbid_unknown_fields=True):
    """One event of a run (or a session's message stream)."""

    run_id: UUID
    seq: int
    type: str
    version: int
    recorded_at: datetime
    event_id: UUID | None
    payload: msgspec.Raw


class TrailerLine(msgspec.Struct, tag_field="kind", tag="trailer", forbid_unknown_fields=True):
    """The last line of an export: the lines of each kind before it and their SHA-256."""

    format: int
    counts: dict[str, int]
    sha256: str


class BlobLine(msgspec.Struct, tag_field="kind", tag="blob", forbid_unknown_fields=True):
    """Chunk ``index`` of an artifact's blob (base64 in the JSON), after the event lines."""

    sha256: str
    index: int
    data: bytes


#: ``(sha256, index, chunk)`` of the blobs an export carries, read after its events
BlobChunks = Iterable[tuple[str, int, bytes]]
#: writes one blob (its digest and chunks, checked) inside the import's transaction
BlobSink = Callable[[KVTxn, str, list[bytes]], None]

Line = SessionLine | RunLine | StreamLine | EventLine | BlobLine | TrailerLine
_KINDS = ("session", "run", "stream", "event", "blob")
# DEL, C1 controls, bidi controls and marks, line/paragraph separators, BOM: UTF-8 bytes that
# msgspec writes raw inside strings; written as \uXXXX they parse back to the same string
_TERMINAL_UNSAFE = re.compile(
    rb"\x7f|\xc2[\x80-\x9f]|\xd8\x9c|\xe2\x80[\x8e\x8f\xa8-\xae]|\xe2\x81[\xa6-\xa9]|\xef\xbb\xbf"
)


def _escape(match: re.Match[bytes]) -> bytes:
    return b"\\u%04x" % ord(match.group().decode())


def _ascii_safe(line: bytes) -> bytes:
    return _TERMINAL_UNSAFE.sub(_escape, line)


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


class IncompleteExportError(ImportFileError):
    """The file is not a whole export: no trailer, or one that does not match its lines.

    ``line`` is the trailer's line (or the line after the last one when there is none).
    Nothing was written.
    """

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        self.field = None
        EventLogError.__init__(self, f"not a whole export: {message}; nothing was imported")


@dataclass(frozen=True)
class ImportSummary:
    """What an import wrote."""

    sessions: int
    runs: int
    events: int
    streams: int = 0
    blobs: int = 0


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
    *,
    trailer: bool = True,
    blobs: Callable[[], BlobChunks] | None = None,
    stream_forks: Mapping[UUID, tuple[UUID, int]] | None = None,
) -> Iterator[bytes]:
    """Encode records and events as export lines (no trailing newline), then the trailer.

    ``blobs`` is called after the events: the artifacts' blob chunks, one ``blob`` line each.
    ``stream_forks`` maps a forked stream's id to its parent's id and its fork seq.
    """
    digest = hashlib.sha256()
    counts = dict.fromkeys(_KINDS, 0)

    def out(kind: str, line: bytes) -> bytes:
        line = _ascii_safe(line)
        digest.update(line)
        digest.update(b"\n")
        counts[kind] += 1
        return line

    for s in sessions:
        yield out(
            "session",
            _encoder.encode(
                SessionLine(s.id, s.title, s.model, s.metadata, s.created_at, s.updated_at)
            ),
        )
    for r in runs:
        line = RunLine(
            r.id,
            r.session_id,
            r.status,
            r.provider,
            r.model,
            r.metadata,
            r.client_request_id,
            r.created_at,
            r.updated_at,
            r.parent_run_id,
            r.fork_seq,
        )
        yield out("run", _encoder.encode(line))
    for st in streams:
        parent, at = (stream_forks or {}).get(st.id, (None, None))
        line_st = StreamLine(st.id, st.kind, st.metadata, st.created_at, st.updated_at, parent, at)
        yield out("stream", _encoder.encode(line_st))
    for record in events:
        yield out("event", event_line(record))
    for sha, index, chunk in () if blobs is None else blobs():
        yield out("blob", _encoder.encode(BlobLine(sha, index, chunk)))
    if not counts["blob"]:
        del counts["blob"]  # exports without artifacts read as before
    if trailer:
        yield _encoder.encode(TrailerLine(TRAILER_FORMAT, counts, digest.hexdigest()))


def _field_of(message: str) -> str | None:
    marker = "- at `$."
    if marker in message:
        return message.split(marker, 1)[1].rstrip("`").split("[")[0] or None
    if "missing required field `" in message:
        return message.split("missing required field `", 1)[1].split("`")[0]
    return None


_KIND_OF: dict[type[Any], str] = {
    BlobLine: "blob",
    SessionLine: "session",
    RunLine: "run",
    StreamLine: "stream",
    EventLine: "event",
}


def _too_deep(number: int, what: str, field: str | None = None) -> ImportFileError:
    error = ImportFileError(
        number,
        f"{what} is nested more than {MAX_NESTING_DEPTH} levels deep (objects and lists; the "
        f"limit is eventlog.MAX_NESTING_DEPTH = {MAX_NESTING_DEPTH})",
        field,
    )
    error.__cause__ = NestingTooDeepError(f"line {number}", what, MAX_NESTING_DEPTH)
    return error


def parse_lines(
    lines: Iterable[str | bytes], *, require_trailer: bool = False
) -> list[tuple[int, Line, AnyEvent | None]]:
    """Validate every line and decode event payloads; blank lines are skipped.

    Raises :class:`ImportFileError` naming the first bad line (1-based) and field, and
    :class:`IncompleteExportError` when the trailer is missing (with ``require_trailer``),
    is not the last line, or does not match the lines before it (counts, SHA-256). Lines may
    end with their newline (as read from a file) or not.
    """
    parsed: list[tuple[int, Line, AnyEvent | None]] = []
    digest = hashlib.sha256()
    counts = dict.fromkeys(_KINDS, 0)
    trailer: tuple[int, TrailerLine] | None = None
    number = 0
    lines = list(lines)
    last = len(lines)
    while last and not lines[last - 1].strip():
        last -= 1  # the last line that is not blank
    for number, raw in enumerate(lines, start=1):
        data = (raw.encode() if isinstance(raw, str) else raw).rstrip(b"\r\n")
        text = data.strip()
        if trailer is not None:
            if text:
                raise IncompleteExportError(
                    number,
                    f"line {number} comes after the trailer (line {trailer[0]}), which must be "
                    "the last line: two exports were joined, or lines were appended",
                )
            continue
        if text:
            try:
                line = _line_decoder.decode(text)
            except RecursionError:
                raise _too_deep(number, "the line") from None
            except msgspec.ValidationError as exc:
                raise ImportFileError(number, str(exc), _field_of(str(exc))) from None
            except msgspec.DecodeError as exc:
                if number == last:
                    raise IncompleteExportError(
                        number,
                        f"no trailer: the last line (line {number}) is cut off ({exc}), so the "
                        "export was cut short (interrupted, or a full disk); export again",
                    ) from None
                raise ImportFileError(number, f"not valid JSON ({exc})") from None
            if isinstance(line, TrailerLine):
                trailer = (number, line)
                continue
            kind = _KIND_OF[type(line)]
            counts[kind] += 1
            event: AnyEvent | None = None
            if isinstance(line, EventLine):
                if line.seq < 1:
                    raise ImportFileError(number, f"seq must be >= 1, got {line.seq}", "seq")
                event = _decode_event(number, line)
                what = f"the payload of {line.type}"
                try:
                    check_depth(event, f"line {number}", what)
                except NestingTooDeepError:
                    raise _too_deep(number, what, "payload") from None
            else:
                try:
                    check_depth(line, f"line {number}", f"the {kind}")
                except NestingTooDeepError:
                    raise _too_deep(number, f"the {kind}'s metadata", "metadata") from None
            parsed.append((number, line, event))
        digest.update(data)
        digest.update(b"\n")
    if trailer is None:
        if require_trailer:
            raise IncompleteExportError(
                number + 1,
                f"no trailer: the file ends after line {number} without the "
                '{"kind":"trailer",...} line `eventlog export` writes last, so it may have '
                "been cut short (an interrupted export, a full disk); export again, or import "
                "an export written before trailers existed with --allow-untrailed "
                "(require_trailer=False)",
            )
        return parsed
    _check_trailer(trailer[0], trailer[1], counts, digest.hexdigest())
    return parsed


def _check_trailer(number: int, trailer: TrailerLine, counts: dict[str, int], sha: str) -> None:
    if trailer.format > TRAILER_FORMAT:
        raise IncompleteExportError(
            number,
            f"the trailer on line {number} is of format {trailer.format}, newer than this "
            f"version reads ({TRAILER_FORMAT}): upgrade eventlog",
        )
    said = {k: trailer.counts.get(k, 0) for k in _KINDS}
    if said != counts or set(trailer.counts) - set(_KINDS):
        raise IncompleteExportError(
            number,
            f"counts mismatch: the trailer on line {number} counts {_counts(trailer.counts)} "
            f"but the lines before it hold {_counts(counts)}: lines were lost or added",
        )
    if trailer.sha256 != sha:
        raise IncompleteExportError(
            number,
            f"digest mismatch: the trailer on line {number} says sha256 {trailer.sha256[:16]}… "
            f"but the lines before it hash to {sha[:16]}…: the file was changed after export",
        )


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{v} {k}s" for k, v in counts.items())


def _decode_event(number: int, line: EventLine) -> AnyEvent:
    try:
        data = msgspec.json.decode(line.payload)
    except RecursionError:
        raise _too_deep(number, f"the payload of {line.type}", "payload") from None
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


class _PendingForks:
    """Imported forks not yet linked to their parents (whose events may come later)."""

    def __init__(self, engine: Engine, txn: KVTxn) -> None:
        self.engine = engine
        self.txn = txn
        self.pending: dict[UUID, tuple[int, UUID, int]] = {}

    def add(self, number: int, fork: UUID, parent: UUID | None, at_seq: int | None) -> None:
        if (parent is None) != (at_seq is None):
            raise ImportFileError(number, "a fork needs both its parent and its fork_seq")
        if parent is not None and at_seq is not None:
            self.pending[fork] = (number, parent, at_seq)

    def link(self, fork: UUID) -> None:
        """Link ``fork`` (its pending ancestors first) if it is pending."""
        found = self.pending.pop(fork, None)
        if found is None:
            return
        number, parent, at_seq = found
        self.link(parent)
        try:
            self.engine.forks.link(self.txn, fork, parent, at_seq)
        except EventLogError as exc:
            raise ImportFileError(number, f"fork {fork}: {exc}") from None

    def link_all(self) -> None:
        for fork in list(self.pending):
            self.link(fork)


def import_lines(
    engine: Engine,
    txn: KVTxn,
    parsed: list[tuple[int, Line, AnyEvent | None]],
    blob_sink: BlobSink | None = None,
) -> ImportSummary:
    """Write ``parsed`` lines in ``txn`` (the caller commits, or aborts on any error).

    ``blob`` lines go to ``blob_sink`` (each blob's chunks, in order, once all are read).
    """
    kinds: dict[UUID, StreamKind] = {}
    counts = {"session": 0, "run": 0, "stream": 0, "event": 0}
    blobs: dict[str, list[bytes]] = {}
    # forks wait for their parents' events: linked before their own first event, or at the end
    forks = _PendingForks(engine, txn)
    for number, line, event in parsed:
        try:
            if isinstance(line, BlobLine):
                chunks = blobs.setdefault(line.sha256, [])
                if line.index != len(chunks):
                    raise ImportFileError(
                        number, f"blob {line.sha256}: chunk {line.index} out of order", "index"
                    )
                chunks.append(line.data)
            elif isinstance(line, SessionLine):
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
                        line.parent_run_id,
                        line.fork_seq,
                    ),
                )
                forks.add(number, line.id, line.parent_run_id, line.fork_seq)
                kinds[line.id] = "run"
                counts["run"] += 1
            elif isinstance(line, StreamLine):
                kind_name = check_kind(line.stream_kind)
                created = line.created_at
                engine.streams.create_stream(
                    txn, StreamRecord(line.id, kind_name, line.metadata, created, created)
                )
                forks.add(number, line.id, line.parent_id, line.fork_seq)
                kinds[line.id] = "stream"
                counts["stream"] += 1
            elif isinstance(line, EventLine):
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
                forks.link(line.run_id)
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
    forks.link_all()
    for sha, chunks in blobs.items():
        digest = hashlib.sha256()
        for chunk in chunks:
            digest.update(chunk)
        if digest.hexdigest() != sha:
            raise ImportFileError(0, f"blob {sha}: its chunks hash to {digest.hexdigest()}")
        if blob_sink is not None:
            blob_sink(txn, sha, chunks)
    return ImportSummary(
        counts["session"], counts["run"], counts["event"], counts["stream"], len(blobs)
    )
