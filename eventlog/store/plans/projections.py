"""Plans of the projector operations: query objects, status, rebuilds.

A rebuild replays views from the log in one write transaction; opening a store rebuilds the
stale ones (new, changed version, unfinished rebuild) the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from eventlog.engine.core import Engine
from eventlog.engine.projectors import is_async
from eventlog.log import get_logger
from eventlog.storage.kv import KVBackend, KVTxn
from eventlog.store.projection_view import ProjectionView

__all__ = ["ProjectionPlans", "ProjectorStatus"]

# the facade's logger, as before its plans moved here: logging set up for it still applies
log = get_logger("eventlog.store.run_store")


class ProjectorStatus:
    """A projector's name, version, checkpoint (last applied position) and readiness.

    ``mode`` is ``"inline"`` or ``"async"``; ``error`` is set when an async projector stopped
    on an error (it stays at ``checkpoint`` until the store is reopened or it is rebuilt).
    """

    def __init__(
        self,
        name: str,
        version: int,
        checkpoint: int,
        ready: bool,
        mode: str = "inline",
        error: str | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self.checkpoint = checkpoint
        self.ready = ready
        self.mode = mode
        self.error = error

    def __repr__(self) -> str:
        extra = "" if self.mode == "inline" else f", mode={self.mode!r}, error={self.error!r}"
        return (
            f"ProjectorStatus(name={self.name!r}, version={self.version}, "
            f"checkpoint={self.checkpoint}, ready={self.ready}{extra})"
        )


class ProjectionPlans:
    """Projectors' query objects, status and rebuilds."""

    def __init__(self, backend: KVBackend, engine: Engine) -> None:
        self.backend = backend
        self.engine = engine

    def query(self, name: str) -> Any:
        """``projection``: projector ``name``'s query object (``KeyError`` naming the known ones).

        A projector with a ``query(reader)`` method returns what it builds; any other a
        read-only :class:`~eventlog.store.projection_view.ProjectionView` of its keyspace.
        """
        projector = self.engine.projectors.by_name.get(name)
        if projector is None:
            known = ", ".join(sorted(self.engine.projectors.by_name))
            raise KeyError(f"no projector named {name!r} (registered: {known})")
        view = ProjectionView(self.backend, name)
        build = getattr(projector, "query", None)
        return build(view) if callable(build) else view

    def projector_status(self) -> Callable[[KVTxn], list[ProjectorStatus]]:
        """``projector_status``: every registered projector with its stored meta."""
        engine = self.engine

        def work(txn: KVTxn) -> list[ProjectorStatus]:
            last = engine.index.last_position(txn)
            out = []
            for p in engine.projectors.all:
                meta = engine.projectors.meta(txn, p.name)
                ready = meta is not None and meta.ready and meta.version == p.version
                version = p.version if meta is None else meta.version
                if not is_async(p):
                    out.append(ProjectorStatus(p.name, version, last if ready else 0, ready))
                    continue
                checkpoint = meta.checkpoint if ready and meta is not None else 0
                error = None if meta is None else meta.error
                out.append(ProjectorStatus(p.name, version, checkpoint, ready, "async", error))
            return out

        return work

    def check_names(self, names: Iterable[str] | None) -> list[str]:
        """The projectors a rebuild names (all when None); ``KeyError`` for unknown ones."""
        known = self.engine.projectors.by_name
        chosen = list(known) if names is None else list(names)
        unknown = sorted(set(chosen) - set(known))
        if unknown:
            raise KeyError(f"unknown projectors: {unknown} (registered: {sorted(known)})")
        return chosen

    def rebuild(
        self, names: Sequence[str], progress: Callable[[str, int, int], None] | None
    ) -> None:
        """Rebuild projectors ``names`` (checked) from the log in one write transaction."""
        if names:
            engine = self.engine
            self.backend.write(lambda txn: engine.rebuild(txn, names, progress))
            log.info("projections_rebuilt", path=self.backend.path, projectors=list(names))

    def catch_up(self) -> None:
        """Rebuild the stale projectors (new, changed version, unfinished rebuild)."""
        self.rebuild(self.backend.read(self.engine.projectors.stale), None)
