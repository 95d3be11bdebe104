"""The subscription side of the facade: subscribe, consumers, async projector threads.

A mixin of the facade (like ``store_views``), kept apart so the facade stays small. It wires
:mod:`eventlog.live.subscriptions` (iterators, consumers),
:mod:`eventlog.live.async_projectors` (the catch-up threads) and the store's
:class:`~eventlog.storage.wakeup.Wakeup`.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from eventlog.engine.core import Engine
from eventlog.live.async_projectors import AsyncProjectorRunner, clear_errors, wait_for_projections
from eventlog.live.subscriptions import (
    AckMode,
    ConsumerInfo,
    Subscription,
    check_consumer_name,
    delete_consumer,
    list_consumers,
)
from eventlog.model.validation import check_seq
from eventlog.storage.kv import KVBackend
from eventlog.storage.wakeup import Wakeup

__all__ = ["StoreSubscriptions"]


class StoreSubscriptions:
    """Subscriptions, persistent consumers and the async projectors' threads."""

    _backend: KVBackend
    _engine: Engine
    _wakeup: Wakeup
    _runners: dict[str, AsyncProjectorRunner]

    # -- async projectors' threads --------------------------------------------------------
    def _start_async_projectors(self) -> None:
        """Clear recorded failures (they retry from their checkpoints) and start the threads."""
        deferred = self._engine.projectors.deferred
        if not deferred:
            return
        self._backend.write(lambda txn: clear_errors(self._engine, txn))
        for projector in deferred:
            runner = AsyncProjectorRunner(self._backend, self._engine, self._wakeup, projector)
            self._runners[projector.name] = runner
            runner.start()

    def _restart_async_projectors(self, names: Iterable[str] | None) -> None:
        """Start again the threads of ``names`` (all when None) that stopped on an error."""
        chosen = None if names is None else set(names)
        for name, runner in self._runners.items():
            if chosen is None or name in chosen:
                runner.start()

    def _stop_async_projectors(self) -> None:
        for runner in self._runners.values():
            runner.stop()

    # -- subscriptions --------------------------------------------------------------------
    def subscribe(
        self,
        *,
        after_position: int = 0,
        run_id: UUID | str | None = None,
        event_types: Iterable[str] | None = None,
        name: str | None = None,
        ack: AckMode = "auto",
        batch_size: int = 256,
        timeout: float | None = None,
    ) -> Subscription:
        """Every event after ``after_position`` in log order, then new ones as they commit.

        The result iterates (``for``, or ``async for``) the :class:`EventRecord` of every
        stream in position order with no gap and no duplicate, including what other processes
        append; ``run_id`` and ``event_types`` filter it. It reads in short transactions of
        ``batch_size`` positions and sleeps between commits (no transaction is held while
        waiting). It ends after ``timeout`` idle seconds (None: never), on ``close()`` from any
        thread, or when the store closes.

        ``name="indexer"`` makes it a persistent consumer: its position is stored, and a
        restarted consumer resumes after its last acknowledged position (``after_position``
        only applies to a consumer that does not exist yet). ``ack="auto"`` acknowledges what
        was delivered each time the loop asks for the next batch, before waiting idle and on a
        clean exit of a ``with`` block, so a crash redelivers at most the batch in hand;
        ``ack="manual"``: call ``sub.ack(position)`` yourself. Read-only stores can subscribe
        (but not as a named consumer).

        >>> from eventlog import RunStore
        >>> from eventlog.model.events import TextDelta
        >>> store = RunStore.in_memory()
        >>> run = store.create_run(store.ensure_session(), provider="p", model="m")
        >>> _ = store.append_event(run.id, TextDelta("hi"))
        >>> with store.subscribe(name="indexer", timeout=0) as sub:
        ...     print([r.position for r in sub])
        [1]
        >>> [(c.name, c.position, c.lag) for c in store.consumers()]
        [('indexer', 1, 0)]
        """
        return Subscription(
            self,
            after_position=after_position,
            run_id=run_id,
            event_types=event_types,
            name=name,
            ack=ack,
            batch_size=batch_size,
            timeout=timeout,
        )

    def consumers(self) -> list[ConsumerInfo]:
        """The persistent consumers by name: acknowledged position, lag, last update."""
        return self._backend.read(lambda txn: list_consumers(self._engine, txn))

    def delete_consumer(self, name: str) -> bool:
        """Forget persistent consumer ``name`` (a new subscribe starts over); True if it existed."""
        checked = check_consumer_name(name)
        return self._backend.write(lambda txn: delete_consumer(txn, checked))

    def wait_for_projections(self, position: int | None = None, timeout: float = 5.0) -> None:
        """Block until every async projector has applied the log up to ``position``.

        ``position=None``: the log's last position now (read your own writes). Returns at once
        without async projectors. Raises :class:`~eventlog.errors.ProjectionTimeoutError` after
        ``timeout`` seconds, :class:`~eventlog.errors.ProjectorFailedError` if one stopped on
        an error.
        """
        target = check_seq(position, "position")
        if not isinstance(timeout, int | float) or timeout < 0:
            raise ValueError(f"timeout must be a number of seconds >= 0, got {timeout!r}")
        wait_for_projections(self._backend, self._engine, self._wakeup, target, float(timeout))
