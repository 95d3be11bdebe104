"""What retention returns: a prune's report and the record of a pruned range of the log.

:class:`PruneReport` is what ``store.prune(...)`` removed (or, with ``dry_run=True``, would
remove) and what it kept and why. :class:`PrunedRange` is one range of log positions whose
events a prune removed: the store keeps these so that a subscription or a persistent consumer
reading across the range can tell that events were removed there (positions of the events
that remain never change).

>>> PrunedRange(first=3, last=9, count=4)
PrunedRange(first=3, last=9, count=4)
>>> PruneReport(dry_run=True).runs
0
"""

from __future__ import annotations

from uuid import UUID

import msgspec

__all__ = ["PruneReport", "PrunedRange"]


class PrunedRange(msgspec.Struct, frozen=True):
    """Log positions ``first..last`` (inclusive) from which a prune removed ``count`` events.

    Every position in the range that holds no event was pruned or deleted; the positions in it
    that still hold events (of runs the prune kept) are delivered as usual.
    """

    first: int
    last: int
    count: int


class PruneReport(msgspec.Struct):
    """What a prune removed (or would remove, ``dry_run``) and what it kept, and why.

    ``runs``/``streams``/``events``/``bytes`` count what went (``bytes``: the stored size of
    the removed events). The ``kept_*`` counters count the runs or streams that the policy's
    kinds and statuses named but that stayed: ``kept_non_terminal`` (not in a terminal
    status), ``kept_recent`` (active after ``older_than``), ``kept_latest_per_session``
    (among the session's ``keep_last_per_session`` newest runs), ``kept_forked`` (a fork
    reads its prefix), ``kept_changed`` (stopped being prunable between the selection and its
    batch's transaction: appended to, say), ``kept_latest_checkpoint`` (LangGraph threads
    whose latest checkpoints stay; ``checkpoints`` counts the older ones removed).
    """

    dry_run: bool
    runs: int = 0
    streams: int = 0
    events: int = 0
    bytes: int = 0
    checkpoints: int = 0
    batches: int = 0
    kept_non_terminal: int = 0
    kept_recent: int = 0
    kept_latest_per_session: int = 0
    kept_forked: int = 0
    kept_changed: int = 0
    kept_latest_checkpoint: int = 0
    run_ids: list[UUID] = msgspec.field(default_factory=list)
    stream_ids: list[UUID] = msgspec.field(default_factory=list)
