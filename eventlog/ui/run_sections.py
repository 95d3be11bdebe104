"""The run page's added sections, as data: lineage (forks) and unresolved tool calls.

:func:`lineage_section` reads ``store.lineage`` and ``store.list_forks``;
:func:`unresolved_section` reads ``store.unresolved_tool_calls`` (the tool-effect ledger).
Each returns None when there is nothing to show, and :func:`~eventlog.ui.views.run_page` puts
what there is in ``RunPage.sections`` (``run.html`` includes ``_lineage.html`` and
``_unresolved.html``). :func:`unresolved_marks` tells which runs of a runs page have
unresolved calls, from the ledger's index of such runs.

>>> from eventlog import RunStore
>>> from eventlog.events import TextDelta, ToolCall, ToolCallCompleted, ToolExecutionStarted
>>> store = RunStore.in_memory()
>>> run = store.create_run(store.ensure_session(), provider="p", model="m")
>>> _ = store.append_events(run.id, [TextDelta("a"), TextDelta("b")])
>>> fork = store.fork_run(run.id, 1)
>>> _ = store.append_events(fork.id, [
...     ToolCallCompleted(ToolCall("c1", "send_mail", {"to": "ops"})),
...     ToolExecutionStarted("c1", "send_mail"),
... ])
>>> section = lineage_section(store, fork.id)
>>> (section.parent.id == run.id, section.parent.fork_seq, section.forks)
(True, 1, [])
>>> [c.tool_name for c in unresolved_section(store, fork.id).calls]
['send_mail']
>>> unresolved_section(store, run.id) is None
True
>>> unresolved_marks(store, [store.get_run(run.id), store.get_run(fork.id)]) == {fork.id}
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from uuid import UUID

from eventlog.model.records import RunRecord
from eventlog.model.status import RunStatus
from eventlog.model.tool_calls import ToolCallEntry
from eventlog.tools.search import filter_runs

if TYPE_CHECKING:
    from eventlog.store.run_store import RunStore

__all__ = [
    "Ancestor",
    "LineageSection",
    "UnresolvedSection",
    "lineage_section",
    "unresolved_marks",
    "unresolved_section",
]

#: The most runs with unresolved calls the runs page reads from the ledger's index to mark
#: its rows; past that, the page's older rows are checked one by one.
MARK_WALK = 200


@dataclass(frozen=True)
class Ancestor:
    """A run up the lineage: its id, its record (None: gone) and where its child forks it.

    ``fork_seq``: the child (the next run down the chain) shares this run's events
    ``1..fork_seq``.
    """

    id: UUID
    record: RunRecord | None
    fork_seq: int


@dataclass(frozen=True)
class LineageSection:
    """A run's lineage: its ancestors (nearest first, so ``parent`` is the first) and forks."""

    ancestors: list[Ancestor]
    forks: list[RunRecord]

    @property
    def parent(self) -> Ancestor | None:
        """The run this one forks (None: an original run)."""
        return self.ancestors[0] if self.ancestors else None

    @property
    def root_first(self) -> list[Ancestor]:
        """The ancestors from the root down to the parent."""
        return self.ancestors[::-1]


@dataclass(frozen=True)
class UnresolvedSection:
    """Tool calls that started executing and have no result: their effects are unknown."""

    calls: list[ToolCallEntry]


def lineage_section(store: RunStore, run_id: UUID) -> LineageSection | None:
    """The run's ancestors up to the root and its direct forks (None: neither)."""
    links = store.lineage(run_id)
    forks = store.list_forks(run_id)
    if not links and not forks:
        return None
    ancestors = [Ancestor(f.parent_id, store.get_run(f.parent_id), f.fork_seq) for f in links]
    return LineageSection(ancestors, forks)


def unresolved_section(store: RunStore, run_id: UUID) -> UnresolvedSection | None:
    """The run's unresolved tool calls, from the tool-effect ledger (None: none)."""
    calls = store.unresolved_tool_calls(run_id)
    return UnresolvedSection(calls) if calls else None


def unresolved_marks(
    store: RunStore,
    runs: Sequence[RunRecord],
    *,
    session_id: UUID | None = None,
    status: RunStatus | str | None = None,
) -> set[UUID]:
    """Which of ``runs`` (a runs page, newest first) have unresolved tool calls.

    One walk of the ledger's index of such runs (newest first), down to the page's oldest
    run: its cost is how many such runs are that recent, not how many runs there are.
    Past :data:`MARK_WALK` of them, the page's older runs are checked one by one.
    """
    if not runs:
        return set()
    oldest = min(r.created_at for r in runs)
    found = filter_runs(
        store,
        session_id=session_id,
        status=status,
        since=oldest,
        unresolved=True,
        limit=MARK_WALK,
    )
    marked = {r.id for r in found}
    if len(found) >= MARK_WALK:  # the walk stopped before the page's oldest run
        reached = found[-1].created_at
        marked |= {
            r.id
            for r in runs
            if r.created_at <= reached and r.id not in marked and store.unresolved_tool_calls(r.id)
        }
    return marked & {r.id for r in runs}
