"""``copy_thread`` is a zero-copy fork: a compiled LangGraph graph resumes on the copy.

Real LangGraph classes on an LMDB store: a graph interrupted before its second node is
copied to a new thread; the copy resumes and finishes while the source stays interrupted;
deleting the source leaves the copy whole (the source's stream is kept while the copy
reads it); the async path does the same.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from eventlog import RunStore, stream_id_for
from eventlog.integrations.langgraph import EventLogSaver
from projections.langgraph_checkpoints import THREAD_KIND


class State(TypedDict):
    trail: list[str]


def _graph(saver: EventLogSaver) -> Any:
    builder = StateGraph(State)
    builder.add_node("plan", lambda s: {"trail": [*s["trail"], "plan"]})
    builder.add_node("act", lambda s: {"trail": [*s["trail"], "act"]})
    builder.add_edge(START, "plan")
    builder.add_edge("plan", "act")
    builder.add_edge("act", END)
    return builder.compile(checkpointer=saver, interrupt_before=["act"])


def _config(thread: str) -> Any:
    return {"configurable": {"thread_id": thread}}


def test_a_copied_thread_resumes_and_outlives_its_source(tmp_path: Path) -> None:
    with RunStore.open(tmp_path / "store") as store:
        saver = EventLogSaver(store)
        graph = _graph(saver)
        graph.invoke({"trail": ["start"]}, _config("source"))
        assert graph.get_state(_config("source")).next == ("act",)
        events_before = len(store.read_log())

        saver.copy_thread("source", "copy")
        assert len(store.read_log()) == events_before  # nothing copied
        src = stream_id_for(THREAD_KIND, "source")
        dst = stream_id_for(THREAD_KIND, "copy")
        assert [f.id for f in store.list_stream_forks(src)] == [dst]
        copied = list(saver.list(_config("copy")))
        assert copied
        assert all(t.config["configurable"]["thread_id"] == "copy" for t in copied)
        assert len(copied) == len(list(saver.list(_config("source"))))

        assert graph.invoke(None, _config("copy"))["trail"] == ["start", "plan", "act"]
        assert graph.get_state(_config("source")).next == ("act",)  # the source is untouched

        saver.delete_thread("source")
        assert graph.get_state(_config("source")).values == {}
        assert graph.get_state(_config("copy")).values["trail"] == ["start", "plan", "act"]
        assert store.verify() == []


def test_acopy_thread_forks_too(tmp_path: Path) -> None:
    async def scenario() -> list[str]:
        with RunStore.open(tmp_path / "store") as store:
            saver = EventLogSaver(store)
            graph = _graph(saver)
            await graph.ainvoke({"trail": []}, _config("a"))
            await saver.acopy_thread("a", "b")
            assert [f.id for f in store.list_stream_forks(stream_id_for(THREAD_KIND, "a"))] == [
                stream_id_for(THREAD_KIND, "b")
            ]
            out = await graph.ainvoke(None, _config("b"))
            assert store.verify() == []
            return list(out["trail"])

    assert asyncio.run(scenario()) == ["plan", "act"]
