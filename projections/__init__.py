"""Projectors: views of the log kept consistent with it inside the append transaction.

A projector has ``name``, ``version``, ``event_types`` and ``apply(tx, record)``; register it
with ``RunStore.open(path, projectors=[...])`` and query it with ``store.projection(name)``.
"""

from __future__ import annotations

from eventlog.engine.protocols import ProjectionReader, ProjectionTx, Projector

__all__ = ["ProjectionReader", "ProjectionTx", "Projector"]
