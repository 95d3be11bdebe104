"""The contract of the tool-effect ledger and what-if replay.

Mixed into :class:`eventlog.testing.StoreContract`; every backend runs it (sync and async).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID, uuid4

import pytest

from eventlog.errors import ReplayEditError, RunNotFound
from eventlog.model.events import (
    Failure,
    ModelStarted,
    RunCompleted,
    RunFailed,
    Success,
    TextDelta,
    ToolCall,
    ToolCallCompleted,
    ToolCallDelta,
    ToolCallStarted,
    ToolExecutionFinished,
    ToolExecutionStarted,
)
from eventlog.model.status import RunStatus
from eventlog.model.tool_calls import ToolCallPhase

if TYPE_CHECKING:
    from eventlog.store.run_store import RunStore

__all__ = ["HistoryContract"]


def _crashed_run(store: RunStore, session: UUID | None = None) -> tuple[UUID, UUID]:
    """A run with a finished call, a failed one, one requested only and one left executing."""
    sid = store.ensure_session() if session is None else session
    run = store.create_run(sid, provider="p", model="m")
    store.append_events(
        run.id,
        [
            ModelStarted("p", "m", 1),
            ToolCallCompleted(ToolCall("ok", "read", {"path": "a"})),
            ToolExecutionStarted("ok", "read"),
            ToolExecutionFinished("ok", "read", Success("text"), 3),
            ToolExecutionStarted("bad", "write"),
            ToolExecutionFinished("bad", "write", Failure("disk full"), 4),
            ToolCallStarted("later", "search"),
            ToolCallDelta("later", '{"q": '),
            ToolCallCompleted(ToolCall("mail", "send_mail", {"to": "ops"})),
            ToolExecutionStarted("mail", "send_mail"),
        ],
    )
    return sid, run.id


class HistoryContract:
    """Tool calls' lifecycle, runs with unresolved calls, and what-if replays."""

    def test_ledger_lifecycle_and_unresolved_index(self, store: RunStore) -> None:
        sid, rid = _crashed_run(store)
        calls = {c.call_id: c for c in store.tool_calls(rid)}
        assert [c.call_id for c in store.tool_calls(rid)] == ["ok", "bad", "later", "mail"]
        assert (calls["ok"].phase, calls["ok"].outcome) == (ToolCallPhase.FINISHED, "success")
        assert (calls["bad"].outcome, calls["bad"].error) == ("failure", "disk full")
        assert (calls["later"].phase, calls["later"].arguments) == ("requested", None)
        [mail] = store.unresolved_tool_calls(rid)
        assert (mail.call_id, mail.tool_name, mail.arguments) == (
            "mail",
            "send_mail",
            {"to": "ops"},
        )
        assert (mail.started_seq, mail.unresolved) == (10, True)
        assert mail.started_at is not None
        _, clean = _crashed_run(store, sid)
        store.append_event(clean, ToolExecutionFinished("mail", "send_mail", Success(1), 9))
        _, other = _crashed_run(store)
        store.append_event(other, RunFailed("crashed"))
        assert [r.id for r in store.list_runs_filtered(unresolved=True)] == [other, rid]
        assert [r.id for r in store.list_runs_filtered(unresolved=True, session_id=sid)] == [rid]
        failed = store.list_runs_filtered(unresolved=True, status=RunStatus.FAILED)
        assert [(r.id, r.status) for r in failed] == [(other, RunStatus.FAILED)]
        assert [r.id for r in store.list_runs_filtered(unresolved=True, offset=1)] == [rid]
        assert store.unresolved_tool_calls(clean) == []
        store.delete_run(other)
        assert [r.id for r in store.list_runs_filtered(unresolved=True)] == [rid]
        assert store.verify() == []
        with pytest.raises(RunNotFound):
            store.unresolved_tool_calls(uuid4())

    def test_ledger_rebuilds_from_the_log(self, store: RunStore) -> None:
        _, rid = _crashed_run(store)
        before = store.tool_calls(rid)
        store.rebuild_projections(["tool_ledger"])
        assert store.tool_calls(rid) == before
        assert [r.id for r in store.list_runs_filtered(unresolved=True)] == [rid]
        assert store.verify() == []

    def test_what_if_replay_writes_nothing(self, store: RunStore) -> None:
        run = store.create_run(store.ensure_session(), provider="p", model="m")
        store.append_events(
            run.id, [ModelStarted("p", "m", 1), TextDelta("a"), RunCompleted("stop", 1)]
        )
        last = store.last_position()
        assert store.replay(run.id) == store.get_run_state(run.id)
        failed = store.replay(run.id, replace={3: RunFailed("quota")})
        assert (failed.status, failed.last_seq) == (RunStatus.FAILED, 3)
        dropped = store.replay(run.id, drop={3})
        assert (dropped.status, dropped.last_seq) == (RunStatus.CALLING_MODEL, 2)
        more = store.replay(run.id, insert={0: [TextDelta("x")], 2: [TextDelta("y")]})
        assert (more.event_count, more.status) == (5, RunStatus.COMPLETED)
        assert store.replay(run.id, to_seq=1).status == RunStatus.CALLING_MODEL
        with pytest.raises(ReplayEditError, match="seq 4 is out of range"):
            store.replay(run.id, drop={4})
        with pytest.raises(ReplayEditError, match="seq 3 is out of range"):
            store.replay(run.id, to_seq=2, replace={3: TextDelta("z")})
        with pytest.raises(ReplayEditError, match="both replaced and dropped"):
            store.replay(run.id, replace={1: TextDelta("z")}, drop={1})
        with pytest.raises(TypeError, match="replace"):
            store.replay(run.id, replace={1: {"type": "TextDelta"}})  # type: ignore[dict-item]
        with pytest.raises(TypeError, match="wrong type"):
            store.replay(run.id, insert={1: [TextDelta(3)]})  # type: ignore[arg-type]
        with pytest.raises(RunNotFound):
            store.replay(uuid4())
        assert store.last_position() == last
        assert store.get_run_state(run.id).status == RunStatus.COMPLETED  # type: ignore[union-attr]
