"""The one error tree of eventlog, rooted at :class:`EventLogError`.

Every error message names the thing (run id, session id, seq, path) and says what to do.
Callers never need to import ``lmdb`` (or, later, ``psycopg``): driver errors are converted at
the backend boundary into these classes.
"""

from __future__ import annotations

from uuid import UUID

__all__ = [
    "AckError",
    "AlreadyExistsError",
    "ArtifactNotFound",
    "ArtifactTooLargeError",
    "ConcurrencyError",
    "ConfigError",
    "ConsumerNotFound",
    "CopyMismatchError",
    "CorruptRecordError",
    "EventFileError",
    "EventLogError",
    "EventTooLargeError",
    "InvalidRecordError",
    "InvalidArtifactName",
    "ForkPointError",
    "EmbeddingDimensionError",
    "EmbeddingsUnavailableError",
    "InvalidVectorError",
    "InvalidTransition",
    "NestingTooDeepError",
    "ProjectionError",
    "ProjectionTimeoutError",
    "ProjectorFailedError",
    "QueryError",
    "ReplayEditError",
    "RunHasForks",
    "RunNotFound",
    "SessionNotFound",
    "StoreBusyError",
    "StoreClosedError",
    "StoreError",
    "StoreFullError",
    "StreamHasForks",
    "StreamKindError",
    "StreamNotFound",
    "TelemetryExportError",
    "ThreadDeletedError",
]


class EventLogError(Exception):
    """Base class of every error raised by eventlog."""


class RunNotFound(EventLogError, LookupError):
    """The run does not exist (never created, or deleted)."""

    def __init__(self, run_id: UUID) -> None:
        self.run_id = run_id
        super().__init__(f"run {run_id} not found: create it with store.create_run() first")


class SessionNotFound(EventLogError, LookupError):
    """The session does not exist."""

    def __init__(self, session_id: UUID) -> None:
        self.session_id = session_id
        super().__init__(
            f"session {session_id} not found: create it with store.create_session() "
            "or store.ensure_session(None)"
        )


class StreamNotFound(EventLogError, LookupError):
    """The stream does not exist, or the id is a run's or a session's (``found`` says which)."""

    def __init__(self, stream_id: UUID, found: str | None = None) -> None:
        self.stream_id = stream_id
        self.found = found
        if found == "run":
            hint = "it is a run: use append_event / list_events / delete_run"
        elif found == "session":
            hint = "it is a session: use append_message / list_messages / delete_session"
        else:
            hint = (
                "create it with store.create_stream() or store.ensure_stream() first, or "
                "append its first events with expected_seq=0 and kind= (that creates it)"
            )
        super().__init__(f"stream {stream_id} not found: {hint}")


class StreamKindError(EventLogError, ValueError):
    """An append named a kind of stream that the existing stream is not; nothing was written.

    ``kind`` is what the request named (``"run"``, ``"session"`` or a stream kind), ``found``
    what the stream is.
    """

    def __init__(self, stream_id: UUID, kind: str, found: str) -> None:
        self.stream_id = stream_id
        self.kind = kind
        self.found = found
        super().__init__(
            f"stream {stream_id} is a {found!r} stream, not {kind!r}: nothing was written - "
            f"name its kind (kind={found!r}, or kind=None for any existing stream), or use "
            "another id (stream_id_for(kind, name) gives different ids per kind)"
        )


class ConsumerNotFound(EventLogError, LookupError):
    """An acknowledgement named a persistent consumer that does not exist."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"consumer {name!r} not found: nothing was written - subscribe with "
            f"store.subscribe(name={name!r}) first (that registers it), or check the name"
        )


class AckError(EventLogError, ValueError):
    """An acknowledgement that would move a consumer backwards or past the log's end.

    Nothing of the call was written (neither the acknowledgement nor the append it came with).
    """

    def __init__(self, name: str, position: int, reason: str) -> None:
        self.name = name
        self.position = position
        super().__init__(f"consumer {name!r}: cannot acknowledge position {position}: {reason}")


class ConcurrencyError(EventLogError):
    """An optimistic-concurrency check failed: the stream moved on since the caller read it.

    Nothing of the append was written. Re-read the stream (``list_events``, ``read_stream``
    or ``get_run_state``) and retry with the new ``expected_seq``. ``kind`` says what the
    stream is - ``"run"`` (the default, for callers that predate other streams),
    ``"session"`` or a stream kind such as ``"langgraph.thread"`` - and the message names it.
    ``stream_id`` and ``run_id`` are the same id.

    >>> from uuid import UUID
    >>> sid = UUID(int=7)
    >>> str(ConcurrencyError(sid, 2, 3, kind="doc.counter")).split(":")[0]
    "stream 00000000-0000-0000-0000-000000000007 of kind 'doc.counter'"
    >>> err = ConcurrencyError(sid, 0, 1)
    >>> (err.kind, err.stream_id == err.run_id, str(err).split(":")[0])
    ('run', True, 'run 00000000-0000-0000-0000-000000000007')
    """

    def __init__(
        self, run_id: UUID, expected_seq: int, actual_seq: int, *, kind: str = "run"
    ) -> None:
        self.run_id = run_id
        self.stream_id = run_id
        self.kind = kind
        self.expected_seq = expected_seq
        self.actual_seq = actual_seq
        if kind in ("run", "session"):
            what, noun = f"{kind} {run_id}", kind
        else:
            what, noun = f"stream {run_id} of kind {kind!r}", "stream"
        super().__init__(
            f"{what}: expected last seq {expected_seq} but it is {actual_seq}; "
            f"nothing was written - re-read the {noun} and retry with expected_seq="
            f"{actual_seq}"
        )


class InvalidTransition(EventLogError, ValueError):
    """A status change that the run lifecycle forbids (leaving a terminal status)."""

    def __init__(self, run_id: UUID, current: str, requested: str, seq: int | None = None) -> None:
        self.run_id = run_id
        self.current = current
        self.requested = requested
        self.seq = seq
        where = f" (event seq {seq})" if seq is not None else ""
        super().__init__(
            f"run {run_id}: cannot move from terminal status {current!r} to {requested!r}"
            f"{where}; a completed, failed or cancelled run is final - start a new run instead"
        )


class ForkPointError(EventLogError, ValueError):
    """A fork was asked at a seq the stream does not have (``0 <= at_seq <= head``).

    >>> from uuid import UUID
    >>> str(ForkPointError(UUID(int=1), 9, 4)).split(";")[0]
    'cannot fork run 00000000-0000-0000-0000-000000000001 at seq 9: its events are 1..4'
    """

    def __init__(self, stream_id: UUID, at_seq: int, head: int, *, kind: str = "run") -> None:
        self.stream_id = stream_id
        self.at_seq = at_seq
        self.head = head
        what = "run" if kind == "run" else f"stream of kind {kind!r}"
        super().__init__(
            f"cannot fork {what} {stream_id} at seq {at_seq}: its events are 1..{head}; "
            f"choose at_seq from 0 (an empty fork) to {head}; nothing was written"
        )


class StreamHasForks(EventLogError):
    """A stream that forks still read (their shared prefix) cannot be deleted.

    ``forks`` are the direct forks; delete them first (or the whole session, for runs).
    """

    def __init__(self, stream_id: UUID, forks: list[UUID], *, kind: str = "stream") -> None:
        self.stream_id = stream_id
        self.forks = forks
        shown = ", ".join(str(f) for f in forks[:5]) + (" ..." if len(forks) > 5 else "")
        super().__init__(
            f"{kind} {stream_id} has {len(forks)} fork(s) that read its events ({shown}); "
            "delete the forks first (delete_session deletes a session with its forks); "
            "nothing was deleted"
        )


class RunHasForks(StreamHasForks):
    """``delete_run`` of a run that forks still read: delete the forks first.

    >>> from uuid import UUID
    >>> str(RunHasForks(UUID(int=1), [UUID(int=2)])).split(" that")[0]
    'run 00000000-0000-0000-0000-000000000001 has 1 fork(s)'
    """

    def __init__(self, run_id: UUID, forks: list[UUID]) -> None:
        super().__init__(run_id, forks, kind="run")
        self.run_id = run_id


class StoreError(EventLogError):
    """The storage backend failed, or the store is unusable (closed, forked, wrong format)."""


class StoreFullError(StoreError):
    """The store reached its configured ``max_map_size``; nothing of the failed write was kept."""


class StoreClosedError(StoreError):
    """The store was closed; open it again with ``RunStore.open``."""


class CopyMismatchError(StoreError):
    """``copy_store``: the destination read back differs from the source (counts or checksum)."""


class CorruptRecordError(StoreError):
    """A stored record cannot be decoded: the bytes on disk are damaged."""

    def __init__(self, message: str, *, run_id: UUID | None = None, seq: int | None = None) -> None:
        self.run_id = run_id
        self.seq = seq
        super().__init__(message)


class EventTooLargeError(EventLogError, ValueError):
    """An event's stored form is larger than ``max_bytes``; nothing of the append was written."""

    def __init__(self, run_id: UUID, seq: int, event_type: str, size: int, max_bytes: int) -> None:
        self.run_id = run_id
        self.seq = seq
        self.event_type = event_type
        self.size = size
        self.max_bytes = max_bytes
        super().__init__(
            f"run {run_id} seq {seq}: {event_type} is {size} bytes encoded, over the maximum "
            f"event size of {max_bytes} bytes ({max_bytes >> 20} MiB); nothing was written - "
            "store large outputs elsewhere (a file, a blob store) and put a reference in the event"
        )


class NestingTooDeepError(EventLogError, ValueError):
    """A value is nested deeper than ``max_depth`` (``MAX_NESTING_DEPTH``); nothing was written.

    ``where`` names the call (``append_event``, ``create_run``, ``import line 7``) and ``what``
    the value (``TextDelta``, ``RunRecord``). Deeper JSON cannot be read back safely by every
    reader (JSON encoders, terminals, other languages' parsers), so it is refused where it
    enters the store.
    """

    def __init__(self, where: str, what: str, max_depth: int) -> None:
        self.where = where
        self.what = what
        self.max_depth = max_depth
        super().__init__(
            f"{where}: {what} is nested more than {max_depth} levels deep (objects and lists; "
            f"the limit is eventlog.MAX_NESTING_DEPTH = {max_depth}); nothing was written - "
            "flatten it, or store the deep part as a JSON string"
        )


class AlreadyExistsError(EventLogError, ValueError):
    """A run or session with that explicit id already exists; pick another id (or omit it)."""


class ConfigError(EventLogError, ValueError):
    """The store configuration is invalid; the message names each bad field."""


class ProjectionError(EventLogError):
    """A projector raised inside ``apply``; the whole append was rolled back."""

    def __init__(self, projector: str, run_id: UUID, seq: int, cause: BaseException) -> None:
        self.projector = projector
        self.run_id = run_id
        self.seq = seq
        super().__init__(
            f"projector {projector!r} failed on run {run_id} seq {seq}: "
            f"{type(cause).__name__}: {cause}; nothing of this append was written - "
            "fix the projector (or remove it) and retry"
        )


class ProjectorFailedError(EventLogError):
    """An async projector raised on an event and stopped; its view stays at its checkpoint.

    The writers were not affected. Fix the projector and reopen the store (it retries from the
    checkpoint) or rebuild it with ``store.rebuild_projections([name])``.
    """

    def __init__(self, projector: str, checkpoint: int, error: str) -> None:
        self.projector = projector
        self.checkpoint = checkpoint
        self.error = error
        super().__init__(
            f"async projector {projector!r} stopped after position {checkpoint}: {error}; fix "
            "the projector, then reopen the store (it retries from there) or run "
            f"store.rebuild_projections([{projector!r}])"
        )


class ProjectionTimeoutError(EventLogError, TimeoutError):
    """``wait_for_projections`` gave up: an async projector had not reached the position."""

    def __init__(self, position: int, timeout: float, behind: dict[str, int]) -> None:
        self.position = position
        self.timeout = timeout
        self.behind = behind
        where = ", ".join(f"{name} at {cp}" for name, cp in sorted(behind.items()))
        super().__init__(
            f"async projectors did not reach position {position} within {timeout:g}s ({where}); "
            "wait longer, or check store.projector_status() for a stopped or slow projector"
        )


class ThreadDeletedError(EventLogError):
    """A write to a LangGraph thread that was deleted: a deleted thread stays deleted.

    Nothing of the write was stored. Use a new ``thread_id`` for new work.
    """

    def __init__(self, thread_id: str, stream_id: UUID) -> None:
        self.thread_id = thread_id
        self.stream_id = stream_id
        super().__init__(
            f"LangGraph thread {thread_id!r} (stream {stream_id}) was deleted and stays "
            "deleted; nothing was written - start a new thread (another thread_id) instead"
        )


class QueryError(EventLogError, ValueError):
    """A query's argument is not valid (a time, a regular expression, a ``key=value`` filter).

    ``option`` names the argument (``"--since"``, ``"pattern"``), so a caller can say which.
    """

    def __init__(self, option: str, value: str, reason: str) -> None:
        self.option = option
        self.value = value
        super().__init__(f"{option} {value!r} is not valid: {reason}")


class TelemetryExportError(EventLogError, ConnectionError):
    """Spans could not be delivered to an OpenTelemetry receiver (``eventlog otel``).

    ``endpoint`` is the URL that was tried. A persistent exporter (``eventlog otel follow``)
    does not acknowledge what it could not deliver: it sends it again when it runs next.
    """

    def __init__(self, endpoint: str, reason: str) -> None:
        self.endpoint = endpoint
        super().__init__(
            f"the OpenTelemetry receiver at {endpoint} did not accept the spans ({reason}); "
            "check that it runs and listens for OTLP/HTTP there (e.g. http://localhost:4318)"
        )


class InvalidRecordError(EventLogError, ValueError):
    """A framework record handed to an integration cannot be stored as it is.

    ``what`` names the record and field (``"StepEvent.run_id"``); nothing of it was written.
    """

    def __init__(self, what: str, reason: str) -> None:
        self.what = what
        super().__init__(f"{what}: {reason}; nothing was written - fix the value and retry")


class ReplayEditError(EventLogError, ValueError):
    """A what-if replay's edit names a seq the run does not have (or names it twice).

    ``seq`` is the seq the edit named, ``run_id`` the run; nothing is written by a replay.
    """

    def __init__(self, run_id: UUID, seq: int, reason: str) -> None:
        self.run_id = run_id
        self.seq = seq
        super().__init__(f"replay of run {run_id}: seq {seq} {reason}")


class EventFileError(EventLogError, ValueError):
    """A JSON file meant to hold events (``eventlog replay --what-if``) does not.

    ``path`` names the file; the message says what is wrong and what shape is expected.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        super().__init__(
            f"{path}: {reason}; expected an event as JSON, "
            '{"type": "RunFailed", "payload": {"error": "..."}} (what `eventlog event RUN SEQ '
            "--json` prints), or a list of them"
        )


class StoreBusyError(StoreError):
    """The store is busy with an operation that needs it alone (``eventlog compact``).

    Raised to ``eventlog compact`` when other processes have the store open, and to a process
    opening the store while a compaction keeps it longer than the open is willing to wait.
    """


class ArtifactNotFound(EventLogError, LookupError):
    """No artifact has this id (``store.artifacts.read``/``open``)."""

    def __init__(self, artifact_id: UUID) -> None:
        self.artifact_id = artifact_id
        super().__init__(
            f"artifact {artifact_id} not found: list a session's artifacts with "
            "store.artifacts.list_by_session(session_id) or `eventlog artifacts SESSION`"
        )


class ArtifactTooLargeError(EventLogError, ValueError):
    """An artifact is larger than the store's ``max_artifact_bytes``; nothing was written."""

    def __init__(self, name: str, size: int, limit: int) -> None:
        self.name = name
        self.size = size
        self.limit = limit
        shown = f"{size}" if size <= limit + 1 else f"at least {size}"
        super().__init__(
            f"artifact {name!r} is {shown} bytes, over the limit of {limit} bytes "
            "(max_artifact_bytes); nothing was written - raise the limit with "
            "RunStore.open(..., max_artifact_bytes=N) or store a smaller file"
        )


class InvalidArtifactName(EventLogError, ValueError):
    """An artifact name is empty, too long, or holds control characters; nothing was written."""


class InvalidVectorError(EventLogError, ValueError):
    """An embedding vector is not usable: empty, not numbers, NaN, infinity or all zeros.

    Nothing was written. Cosine similarity is undefined for the zero vector, so it is refused.
    """


class EmbeddingDimensionError(EventLogError, ValueError):
    """A vector's length is not the store's embedding dimension; nothing was written."""

    def __init__(self, got: int, dimension: int) -> None:
        self.got = got
        self.dimension = dimension
        super().__init__(
            f"the vector has {got} components but this store's embeddings have dimension "
            f"{dimension} (set by its first upsert or set_dimension); give a vector of "
            f"{dimension} floats, or use another store for another model"
        )


class EmbeddingsUnavailableError(EventLogError, ImportError):
    """``store.embeddings`` needs numpy and usearch: the ``embeddings`` extra is missing."""

    def __init__(self, missing: str) -> None:
        super().__init__(
            f"store.embeddings needs the 'embeddings' extra ({missing} is not installed): "
            "pip install 'agent-eventlog[embeddings]'"
        )
