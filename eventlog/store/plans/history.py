"""Plans of the history operations: the tool-effect ledger's reads and what-if replays.

``unresolved_tool_calls`` and ``tool_calls`` read the ``tool_ledger`` view; ``replay`` folds a
run's events as edited by :func:`eventlog.model.what_if.edit_history` in one read snapshot,
writing nothing (its replacement events are checked like appends, before any read).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from uuid import UUID

from eventlog.engine.core import Engine
from eventlog.engine.projectors import reader
from eventlog.errors import RunNotFound
from eventlog.model.events import AnyEvent
from eventlog.model.state import RunState
from eventlog.model.tool_calls import ToolCallEntry
from eventlog.model.validation import check_event, check_seq, uuid_of
from eventlog.model.what_if import edit_history
from eventlog.storage.kv import KVTxn
from projections.tool_ledger import ToolLedgerQuery

__all__ = ["HistoryPlans"]


def _seq_key(seq: object, what: str) -> int:
    checked = check_seq(seq, f"{what} seq")
    assert checked is not None
    return checked


class HistoryPlans:
    """The ledger's reads and the what-if replay, each in one read transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def tool_calls(
        self, run_id: UUID | str, unresolved_only: bool
    ) -> Callable[[KVTxn], list[ToolCallEntry]]:
        """``tool_calls`` / ``unresolved_tool_calls``: the run's calls from the ledger."""
        rid = uuid_of(run_id, "run_id")
        records = self.engine.records

        def work(txn: KVTxn) -> list[ToolCallEntry]:
            if records.get_run(txn, rid) is None:
                raise RunNotFound(rid)
            ledger = ToolLedgerQuery(reader(txn, "tool_ledger"))
            return ledger.unresolved(rid) if unresolved_only else ledger.calls(rid)

        return work

    def replay(
        self,
        run_id: UUID | str,
        to_seq: int | None,
        replace: Mapping[int, AnyEvent] | None,
        drop: Iterable[int] | None,
        insert: Mapping[int, Iterable[AnyEvent]] | None,
    ) -> Callable[[KVTxn], RunState]:
        """``replay``: the fold of the run's events up to ``to_seq``, edited; nothing written."""
        rid = uuid_of(run_id, "run_id")
        to = check_seq(to_seq, "to_seq")
        if replace is not None and not isinstance(replace, Mapping):
            raise TypeError(
                f"replay: replace must be a mapping of seq to event, got {replace!r:.80}"
            )
        if insert is not None and not isinstance(insert, Mapping):
            raise TypeError(
                f"replay: insert must be a mapping of seq to a list of events, got {insert!r:.80}"
            )
        if isinstance(drop, str | bytes):
            raise TypeError(f"replay: drop must be a set of seqs, got {drop!r:.80}")
        swaps = {
            _seq_key(k, "replace"): check_event(e, f"replay: replace[{k}]")
            for k, e in (replace or {}).items()
        }
        drops = {_seq_key(s, "drop") for s in (drop or ())}
        adds: dict[int, list[AnyEvent]] = {}
        for k, evs in (insert or {}).items():
            if isinstance(evs, str | bytes | Mapping) or not isinstance(evs, Iterable):
                raise TypeError(f"replay: insert[{k}] must be a list of events, got {evs!r:.80}")
            where = f"replay: insert[{k}]"
            adds[_seq_key(k, "insert")] = [check_event(e, where) for e in evs]
        engine = self.engine

        def work(txn: KVTxn) -> RunState:
            record = engine.records.get_run(txn, rid)
            if record is None:
                raise RunNotFound(rid)
            events = engine.reads.list_events(txn, rid, after_seq=0, to_seq=to, kind="run")
            edited = edit_history(
                rid, events, replace=swaps, drop=drops, insert=adds, created_at=record.created_at
            )
            return RunState.fold(record, edited)

        return work
