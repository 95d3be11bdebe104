"""``store.prune(kinds=["langgraph.thread"])`` on a real compiled graph: the thread still resumes.

Keep-latest semantics: the older checkpoints and their writes leave the views; the latest
checkpoint of each namespace, its pending writes (an ``interrupt()`` is one) and the channel
values it needs stay, so ``get_state`` is unchanged and ``Command(resume=...)`` continues.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, interrupt
from typing_extensions import TypedDict

from eventlog import RunStore
from eventlog.integrations.langgraph import EventLogSaver
from eventlog.model.events import RunCompleted

CONFIG: RunnableConfig = {"configurable": {"thread_id": "ops-7"}}
OTHER: RunnableConfig = {"configurable": {"thread_id": "ops-8"}}


class State(TypedDict):
    count: int
    answer: str


def _ask(state: State) -> dict[str, str]:
    return {"answer": interrupt(f"ship {state['count']}?")}


def build(saver: EventLogSaver) -> CompiledStateGraph[Any, Any, Any, Any]:
    graph = StateGraph(State)
    graph.add_node("inc", lambda s: {"count": s["count"] + 1})
    graph.add_node("ask", _ask)
    graph.add_edge(START, "inc")
    graph.add_edge("inc", "ask")
    graph.add_edge("ask", END)
    return graph.compile(checkpointer=saver)


def _state(graph: CompiledStateGraph[Any, Any, Any, Any], config: RunnableConfig) -> Any:
    snap = graph.get_state(config)
    interrupts = [i.value for t in snap.tasks for i in t.interrupts]
    return snap.values, snap.next, interrupts, snap.config


def test_prune_keeps_the_latest_checkpoint_and_the_thread_resumes(tmp_path: Path) -> None:
    with RunStore.open(tmp_path / "store") as store:
        graph = build(EventLogSaver(store))
        for config in (CONFIG, OTHER):
            graph.invoke({"count": 1, "answer": ""}, config)
            graph.invoke(Command(resume="no"), config)
            graph.invoke({"count": 10, "answer": ""}, config)  # paused at the interrupt again
        before = {t: _state(graph, c) for t, c in (("a", CONFIG), ("b", OTHER))}
        assert before["a"][2] == ["ship 11?"]
        history = len(list(graph.get_state_history(CONFIG)))
        assert history > 3
        run = store.create_run(store.ensure_session(), provider="p", model="m")
        store.append_event(run.id, RunCompleted("stop", 1))

        dry = store.prune(kinds=["langgraph.thread"], dry_run=True)
        report = store.prune(kinds=["langgraph.thread"])
        assert report.checkpoints == dry.checkpoints == 2 * (history - 1)
        assert (report.kept_latest_checkpoint, report.streams, report.runs) == (2, 0, 0)
        assert store.get_run(run.id) is not None  # runs were not named
        assert store.verify() == []
        assert len(list(graph.get_state_history(CONFIG))) == 1
        assert {t: _state(graph, c) for t, c in (("a", CONFIG), ("b", OTHER))} == before

        out = graph.invoke(Command(resume="yes"), CONFIG)
        assert out == {"count": 11, "answer": "yes"}
        assert store.prune(kinds=["langgraph.thread"]).checkpoints >= 1
    with RunStore.open(tmp_path / "store") as store:  # and after a reopen
        graph = build(EventLogSaver(store))
        assert _state(graph, OTHER) == before["b"]
        assert graph.invoke(Command(resume="ok"), OTHER) == {"count": 11, "answer": "ok"}
        assert store.verify() == []
