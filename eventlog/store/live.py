"""The live side of a store: subscriptions, persistent consumers, async projectors' threads.

One :class:`LiveSide` per open store, owned by its :class:`~eventlog.store.core.StoreCore`
and used by both facades. It wires :mod:`eventlog.live.subscriptions` (iterators,
consumers), :mod:`eventlog.live.async_projectors` (the catch-up threads) and the store's
:class:`~eventlog.storage.wakeup.Wakeup`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from uuid import UUID

from eventlog.engine.appends import AppendRequest
from eventlog.engine.core import Engine
from eventlog.live.async_projectors import AsyncProjectorRunner, clear_errors, wait_for_projections
from eventlog.live.consumers import (
    Ack,
    ConsumerInfo,
    check_consumer_name,
    delete_consumer,
    list_consumers,
)
from eventlog.live.subscriptions import AckMode, Subscription
from eventlog.model.records import EventRecord
from eventlog.model.validation import check_seq
from eventlog.storage.kv import KVBackend
from eventlog.storage.wakeup import Wakeup

__all__ = ["LiveSide"]


class LiveSide:
    """Subscriptions, persistent consumers and the async projectors' threads of one store."""

    def __init__(
        self,
        backend: KVBackend,
        engine: Engine,
        wakeup: Wakeup,
        append_many: Callable[[Iterable[AppendRequest], Ack], list[list[EventRecord]]],
    ) -> None:
        self.backend = backend
        self.engine = engine
        self.wakeup = wakeup
        self._append_many = append_many
        self.runners: dict[str, AsyncProjectorRunner] = {}

    def append_acked(self, requests: Iterable[AppendRequest], ack: Ack) -> list[list[EventRecord]]:
        """The store's ``append_many(requests, ack=ack)`` (a subscription's ``ack_with``)."""
        return self._append_many(requests, ack)

    # -- async projectors' threads --------------------------------------------------------
    def start(self) -> None:
        """Clear recorded failures (they retry from their checkpoints) and start the threads."""
        deferred = self.engine.projectors.deferred
        if not deferred:
            return
        engine = self.engine
        self.backend.write(lambda txn: clear_errors(engine, txn))
        for projector in deferred:
            runner = AsyncProjectorRunner(self.backend, engine, self.wakeup, projector)
            self.runners[projector.name] = runner
            runner.start()

    def restart(self, names: Iterable[str] | None) -> None:
        """Start again the threads of ``names`` (all when None) that stopped on an error."""
        chosen = None if names is None else set(names)
        for name, runner in self.runners.items():
            if chosen is None or name in chosen:
                runner.start()

    def stop(self) -> None:
        """Stop every thread after its current batch (and wait for it)."""
        for runner in self.runners.values():
            runner.stop()

    # -- subscriptions and consumers ------------------------------------------------------
    def subscribe(
        self,
        *,
        after_position: int,
        run_id: UUID | str | None,
        event_types: Iterable[str] | None,
        name: str | None,
        ack: AckMode,
        batch_size: int,
        timeout: float | None,
    ) -> Subscription:
        """A new :class:`Subscription` of this store (see ``RunStore.subscribe``)."""
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
        """The persistent consumers by name, with their lag (one short read)."""
        engine = self.engine
        return self.backend.read(lambda txn: list_consumers(engine, txn))

    def delete_consumer(self, name: str) -> bool:
        """Forget persistent consumer ``name``; True if it existed."""
        checked = check_consumer_name(name)
        return self.backend.write(lambda txn: delete_consumer(txn, checked))

    def wait_for_projections(self, position: int | None, timeout: float) -> None:
        """Block until every async projector has applied the log up to ``position``."""
        target = check_seq(position, "position")
        if not isinstance(timeout, int | float) or timeout < 0:
            raise ValueError(f"timeout must be a number of seconds >= 0, got {timeout!r}")
        wait_for_projections(self.backend, self.engine, self.wakeup, target, float(timeout))
