"""The core the sync and async facades share: one per open store.

:class:`StoreCore` owns the backend, the engine (with the built-in projectors wired in), the
group committer every write goes through, the wake-up point, the live side (subscriptions,
consumers, async projectors' threads) and the plans of every operation. Opening a store is
building one: it checks or stamps the store format, rebuilds stale views and starts the
async projectors' threads; closing it stops them, drains the committer and closes the
backend.

Tools, tests and the contract suite's tamper tests reach the store's insides through it
(``store.core.backend``, ``store.core.engine``): public names, for internal use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from eventlog.engine.core import Engine
from eventlog.engine.protocols import Projector
from eventlog.storage.kv import KVBackend
from eventlog.store.builtins import with_builtins
from eventlog.store.group_commit import GroupCommitter
from eventlog.store.live import LiveSide
from eventlog.store.plans import Plans

__all__ = ["StoreCore"]


class StoreCore:
    """Backend, engine, group committer, wake-up, live side and plans of one open store."""

    def __init__(
        self,
        backend: KVBackend,
        projectors: Sequence[Projector] = (),
        *,
        group_max_requests: int = 256,
        group_max_bytes: int = 8 << 20,
    ) -> None:
        engine = Engine(with_builtins(projectors))
        #: the storage backend (LMDB, memory or PostgreSQL)
        self.backend = backend
        #: the log's rules, with the built-in and the store's own projectors
        self.engine = engine
        #: every write of this process goes through it (one shared commit per group)
        self.committer = GroupCommitter(
            backend.write_group,
            backend.write,
            max_requests=group_max_requests,
            max_bytes=group_max_bytes,
        )
        #: each operation's checks and its work in one transaction
        self.plans = Plans(backend, engine)
        #: True when every backend call is a round trip to a server (PostgreSQL): the async
        #: facade then keeps even point reads off the event loop
        self.remote = bool(getattr(backend, "remote", False))
        #: signalled after every commit; subscribers and async projectors wait on it
        self.wakeup = backend.make_wakeup()
        #: subscriptions, consumers and the async projectors' threads
        append_many, submit = self.plans.events.append_many, self.committer.submit
        self.live = LiveSide(
            backend, engine, self.wakeup, lambda reqs, ack: submit(append_many(reqs, ack))
        )
        try:
            if backend.readonly:
                backend.read(engine.check_format)
                return
            backend.on_commit = self.wakeup.committed  # wake subscribers after each commit
            backend.write(engine.init_store)
            self.plans.projections.catch_up()
        except BaseException:
            self.wakeup.close()
            raise
        self.live.start()

    def rebuild_projections(
        self,
        names: Iterable[str] | None,
        progress: Callable[[str, int, int], None] | None,
    ) -> None:
        """Rebuild projectors (all, or ``names``), then restart async ones that had stopped."""
        chosen = None if names is None else list(names)
        projections = self.plans.projections
        projections.rebuild(projections.check_names(chosen), progress)
        self.live.restart(chosen)

    def close(self) -> None:
        """Stop the async projectors, drain the committer, close the wake-up and the backend."""
        self.live.stop()
        self.committer.close()  # queued writes commit (and signal) first
        self.backend.on_commit = None
        self.wakeup.close()
        self.backend.close()
