"""Async (catch-up) projectors: fed from the log by a background thread, never by an append.

A projector with ``mode = "async"`` is not applied in the append transaction. The store starts
one :class:`AsyncProjectorRunner` thread per async projector (when it opens for writing) and
stops it on close. The thread waits for commits like a subscription (same wake-up), then
takes the next batch - at most ``batch_size`` events, or what fits in ``max_batch_seconds``:

1. in a short **read** transaction it reads its checkpoint and the batch, and applies the
   events to an overlay of its keyspace (:class:`_Overlay`: reads fall through to the
   snapshot, writes are buffered) - so an expensive projector never holds LMDB's writer lock;
2. in one short **write** transaction it checks that its ``projector_meta`` entry is unchanged
   (else another process applied that batch, or a rebuild reset it: the work is dropped and
   redone from the new state), then writes the buffered changes and the new checkpoint (the
   last position applied) together - the view and its checkpoint can never disagree.

Only the projector writes its keyspace, so the snapshot it read cannot have gone stale.

A projector that raises stops: the batch is rolled back, the error is recorded in its
``projector_meta`` entry (visible to every process through ``projector_status()``, ``verify()``
and ``wait_for_projections``) and its thread ends. Writers are never affected and no event is
skipped: reopening the store retries from the checkpoint; ``rebuild_projections`` starts over.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from functools import partial
from uuid import UUID

from eventlog.engine.core import Engine
from eventlog.engine.projectors import ProjectionTxn, ProjectorMeta, ProjectorSet, apply_one
from eventlog.engine.protocols import Projector
from eventlog.errors import ProjectionTimeoutError, ProjectorFailedError, StoreClosedError
from eventlog.log import get_logger
from eventlog.storage.kv import KVBackend, KVTxn
from eventlog.storage.wakeup import POLL_MAX, POLL_MIN, Wakeup

__all__ = ["AsyncProjectorRunner", "clear_errors", "wait_for_projections"]

log = get_logger("eventlog.live.async_projectors")

#: A batch applied in a read snapshot: the metadata it started from, its new checkpoint, and
#: the buffered changes of the keyspace (None = delete).
_Prepared = tuple[ProjectorMeta, int, dict[bytes, bytes | None]]
DEFAULT_BATCH = 256
DEFAULT_BATCH_SECONDS = 0.02


class AsyncProjectorRunner:
    """The thread that keeps one async projector's view caught up with the log."""

    def __init__(
        self,
        backend: KVBackend,
        engine: Engine,
        wakeup: Wakeup,
        projector: Projector,
        *,
        batch_size: int = DEFAULT_BATCH,
        max_batch_seconds: float = DEFAULT_BATCH_SECONDS,
    ) -> None:
        self._backend = backend
        self._engine = engine
        self._wakeup = wakeup
        self.projector = projector
        self._batch = batch_size
        self._seconds = max_batch_seconds
        self._stop = False
        self._position = 0  # the position being applied (for the error record)
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """True while the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the thread (again, after it stopped on an error and was rebuilt)."""
        if self.running:
            return
        self._stop = False
        self._thread = threading.Thread(
            target=self._run, name=f"eventlog-projector:{self.projector.name}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to stop after its current batch, and wait for it."""
        self._stop = True
        self._wakeup.poke()
        if self._thread is not None:
            self._thread.join()

    # -- the loop --------------------------------------------------------------------------
    def _run(self) -> None:
        name = self.projector.name
        delay = POLL_MIN
        while not self._stop and not self._wakeup.closed:
            live = self._wakeup.live()
            seen = self._wakeup.generation
            try:
                prepared = self._backend.read(self._prepare)
                if prepared is not None:
                    self._backend.write(partial(self._commit, prepared=prepared))
                    delay = POLL_MIN
                    continue
            except StoreClosedError:
                return
            except Exception as exc:
                self._fail(exc)
                return
            self._wakeup.wait(seen, None if live else delay)
            delay = delay if live else min(delay * 2, POLL_MAX)
        log.debug("async_projector_stopped", projector=name)

    def _prepare(self, txn: KVTxn) -> _Prepared | None:
        """Apply the next batch to an overlay in a read snapshot; None when caught up."""
        projector = self.projector
        engine = self._engine
        meta = ProjectorSet.meta(txn, projector.name)
        if meta is None or not meta.ready or meta.error is not None:
            return None  # being rebuilt (it will be reset), or failed
        last = engine.index.last_position(txn)
        if meta.checkpoint >= last:
            return None
        overlay = _Overlay(ProjectionTxn(txn, projector.name))
        types = frozenset(getattr(projector, "event_types", frozenset()))
        started = time.monotonic()
        checkpoint = last  # the log is exhausted unless the batch fills up
        items = engine.reads.iter_log(txn, after_position=meta.checkpoint)
        ids: dict[bytes, UUID] = {}
        for done, (position, ref) in enumerate(items, 1):
            self._position = position
            record = engine.reads.read_ref(txn, ref, ids)
            if not types or record.type in types:
                apply_one(projector, overlay, record)
            if done >= self._batch or time.monotonic() - started > self._seconds:
                checkpoint = position
                break
        return meta, checkpoint, overlay.changes

    def _commit(self, txn: KVTxn, prepared: _Prepared) -> None:
        """Write the batch's changes and checkpoint, unless someone else moved the projector."""
        read_meta, checkpoint, changes = prepared
        name = self.projector.name
        if ProjectorSet.meta(txn, name) != read_meta:
            return  # another process applied it, or a rebuild reset it: redo from there
        tx = ProjectionTxn(txn, name)
        for key, value in changes.items():
            if value is None:
                tx.delete(key)
            else:
                tx.put(key, value)
        ProjectorSet.set_meta(txn, name, ProjectorMeta(read_meta.version, checkpoint, True))

    def _fail(self, exc: Exception) -> None:
        name = self.projector.name
        error = f"position {self._position}: {type(exc).__name__}: {exc}"
        log.error("async_projector_failed", projector=name, position=self._position, error=error)

        def record(txn: KVTxn) -> None:
            meta = ProjectorSet.meta(txn, name)
            if meta is not None:
                failed = ProjectorMeta(meta.version, meta.checkpoint, meta.ready, error)
                ProjectorSet.set_meta(txn, name, failed)

        try:
            self._backend.write(record)
        except Exception as again:  # the store is going away: the log line is what is left
            log.error("async_projector_error_not_recorded", projector=name, error=str(again))


class _Overlay:
    """A projector's keyspace in a read snapshot, with its writes buffered in ``changes``."""

    def __init__(self, base: ProjectionTxn) -> None:
        self._base = base
        self.changes: dict[bytes, bytes | None] = {}  # None = deleted

    def get(self, key: bytes) -> bytes | None:
        if key in self.changes:
            return self.changes[key]
        return self._base.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self._base.check_key(key)
        self.changes[key] = bytes(value)

    def delete(self, key: bytes) -> None:
        self._base.check_key(key)
        self.changes[key] = None

    def scan(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        items = dict(self._base.scan(prefix))
        for key, value in self.changes.items():
            if key.startswith(prefix):
                if value is None:
                    items.pop(key, None)
                else:
                    items[key] = value
        for key in sorted(items):
            yield key, items[key]


def clear_errors(engine: Engine, txn: KVTxn) -> None:
    """Forget the recorded errors of async projectors, so they retry from their checkpoints."""
    for projector in engine.projectors.deferred:
        meta = ProjectorSet.meta(txn, projector.name)
        if meta is not None and meta.error is not None:
            retry = ProjectorMeta(meta.version, meta.checkpoint, meta.ready)
            ProjectorSet.set_meta(txn, projector.name, retry)


def _progress(engine: Engine, projectors: Sequence[Projector], txn: KVTxn) -> dict[str, int]:
    """Checkpoint of each async projector; raise ProjectorFailedError for a failed one."""
    out = {}
    for projector in projectors:
        meta = ProjectorSet.meta(txn, projector.name)
        if meta is not None and meta.error is not None:
            raise ProjectorFailedError(projector.name, meta.checkpoint, meta.error)
        ready = meta is not None and meta.ready and meta.version == projector.version
        out[projector.name] = meta.checkpoint if ready and meta is not None else 0
    return out


def wait_for_projections(
    backend: KVBackend,
    engine: Engine,
    wakeup: Wakeup,
    position: int | None,
    timeout: float,
) -> None:
    """Block until every async projector's checkpoint is at least ``position``.

    ``position=None`` means the log's last position when the call starts.
    """
    projectors = engine.projectors.deferred
    if not projectors:
        return
    target = backend.read(engine.index.last_position) if position is None else position
    deadline = time.monotonic() + timeout
    delay = POLL_MIN
    while True:
        live = wakeup.live()
        seen = wakeup.generation
        progress = backend.read(lambda txn: _progress(engine, projectors, txn))
        behind = {name: cp for name, cp in progress.items() if cp < target}
        if not behind:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0 or wakeup.closed:
            raise ProjectionTimeoutError(target, timeout, behind)
        wakeup.wait(seen, remaining if live else min(delay, remaining))
        delay = delay if live else min(delay * 2, POLL_MAX)
