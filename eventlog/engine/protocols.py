"""The projector protocol and the narrow facade a projector writes through.

A projector keeps a view of the log. Inline projectors run inside the append transaction, so
the view and the projector's checkpoint commit atomically with the events; async projectors
(``mode = "async"``) are fed after the commit, their view and checkpoint written together. A
projector only sees its own keyspace (``tx``): it never imports lmdb and cannot touch another
projector's keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, Protocol, runtime_checkable

from eventlog.model.records import EventRecord

__all__ = ["ProjectionReader", "ProjectionTx", "Projector"]


class ProjectionReader(Protocol):
    """Read access to one projector's keyspace."""

    def get(self, key: bytes) -> bytes | None:
        """Return the value at ``key`` or None."""
        ...

    def scan(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """Iterate ``(key, value)`` pairs whose key starts with ``prefix``, in key order."""
        ...


class ProjectionTx(ProjectionReader, Protocol):
    """Read/write access to one projector's keyspace inside the append transaction."""

    def put(self, key: bytes, value: bytes) -> None:
        """Store ``value`` at ``key``."""
        ...

    def delete(self, key: bytes) -> None:
        """Delete ``key`` (no error if absent)."""
        ...


@runtime_checkable
class Projector(Protocol):
    """What a projector is: a name, a version, the event types it wants, and ``apply``.

    Bump ``version`` when the view's shape or logic changes: the store rebuilds it from the
    log on the next open. ``event_types`` empty means every event.

    Optional ``mode``: ``"inline"`` (the default, no attribute needed) applies the projector in
    the append transaction; ``"async"`` makes it a catch-up projector - a background thread
    feeds it batches of committed events and writes its checkpoint with its view, so appends
    never wait for it (``store.wait_for_projections()`` waits for it instead). Async projectors
    see events only: they may not define the lifecycle hooks.

    Optional ``replay_order``: ``"log"`` (the default) replays the log into the projector in
    position order when it is rebuilt; ``"stream"`` declares that its view depends only on
    each stream's events in seq order, never on how streams interleave (what it keeps per
    stream is that stream's own; what it keeps across streams is order-free, like counts or
    maxima), so a rebuild may feed it stream by stream: one sequential walk of the events
    instead of a look-up per position. Every built-in view but LangGraph's declares it.
    ``verify()`` still replays in position order, so a view that breaks the declaration shows
    up there as ``view_mismatch``.

    >>> import msgspec
    >>> class ToolCount:
    ...     name = "tool_count"
    ...     version = 1
    ...     event_types = frozenset({"ToolExecutionFinished"})
    ...     def apply(self, tx, record):
    ...         key = record.event.tool_name.encode()
    ...         n = int(tx.get(key) or b"0")
    ...         tx.put(key, str(n + 1).encode())
    >>> isinstance(ToolCount(), Projector)
    True
    """

    name: ClassVar[str]
    version: ClassVar[int]
    event_types: ClassVar[frozenset[str]]

    def apply(self, tx: ProjectionTx, record: EventRecord) -> None:
        """Update the view with ``record``."""
        ...
