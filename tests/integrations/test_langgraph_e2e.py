"""Offline end to end: a real StateGraph with scripted tool calls, a ToolNode and interrupt().

The chat model is langchain_core's FakeMessagesListChatModel (scripted replies, no network).
The run pauses in a tool that calls ``interrupt()``, is resumed with ``Command(resume=...)``
on the same thread (also across a reopen of the store), and ``get_state_history`` must show
exactly the steps the graph took - the same history LangGraph's own InMemorySaver records.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Annotated, Any

from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import Command, StateSnapshot, interrupt
from typing_extensions import TypedDict

from eventlog import AsyncRunStore, RunStore
from eventlog.integrations.langgraph import EventLogSaver


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def ask_human(question: str) -> str:
    """Ask the human operator; the run pauses until it is resumed with the answer."""
    answer: str = interrupt(question)
    return answer


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def build(
    saver: BaseCheckpointSaver[Any], *, replies_used: int = 0
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The agent graph; ``replies_used``: script replies a previous process already gave."""
    model = FakeMessagesListChatModel(
        responses=[
            AIMessage("", tool_calls=[{"name": "add", "args": {"a": 2, "b": 3}, "id": "c1"}]),
            AIMessage(
                "", tool_calls=[{"name": "ask_human", "args": {"question": "ship 5?"}, "id": "c2"}]
            ),
            AIMessage("5, approved"),
        ],
        i=replies_used,
    )

    def agent(state: State) -> dict[str, list[AnyMessage]]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(State)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode([add, ask_human]))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile(checkpointer=saver)


CONFIG: RunnableConfig = {"configurable": {"thread_id": "support-42"}}
#: what the graph did: (step, source, next nodes, number of messages), newest first
EXPECTED_HISTORY = [
    (5, "loop", (), 6),
    (4, "loop", ("agent",), 5),
    (3, "loop", ("tools",), 4),
    (2, "loop", ("agent",), 3),
    (1, "loop", ("tools",), 2),
    (0, "loop", ("agent",), 1),
    (-1, "input", ("__start__",), 0),
]


def _summary(history: list[StateSnapshot]) -> list[tuple[int, str, tuple[str, ...], int]]:
    return [
        (s.metadata["step"], s.metadata["source"], s.next, len(s.values.get("messages", [])))
        for s in history
        if s.metadata is not None
    ]


def _transcript(history: list[StateSnapshot]) -> list[list[tuple[str, Any]]]:
    return [[(m.type, m.content) for m in s.values.get("messages", [])] for s in history]


def _run_to_interrupt(graph: CompiledStateGraph[Any, Any, Any, Any]) -> None:
    out = graph.invoke({"messages": [HumanMessage("add 2 and 3, then ask me")]}, CONFIG)
    assert [i.value for i in out["__interrupt__"]] == ["ship 5?"]
    paused = graph.get_state(CONFIG)
    assert paused.next == ("tools",)
    assert [i.value for t in paused.tasks for i in t.interrupts] == ["ship 5?"]


def _check_finished(graph: CompiledStateGraph[Any, Any, Any, Any], out: dict[str, Any]) -> None:
    assert [(m.type, m.content) for m in out["messages"]] == [
        ("human", "add 2 and 3, then ask me"),
        ("ai", ""),
        ("tool", "5"),
        ("ai", ""),
        ("tool", "yes"),
        ("ai", "5, approved"),
    ]
    history = list(graph.get_state_history(CONFIG))
    assert _summary(history) == EXPECTED_HISTORY
    # every snapshot's parent is the next older one: one unbroken chain
    for newer, older in itertools.pairwise(history):
        assert newer.parent_config is not None
        assert (
            newer.parent_config["configurable"]["checkpoint_id"]
            == (older.config["configurable"]["checkpoint_id"])
        )
    assert history[-1].parent_config is None


def test_tool_calls_interrupt_and_resume_match_in_memory_saver(tmp_path: Path) -> None:
    reference = build(InMemorySaver())
    _run_to_interrupt(reference)
    reference.invoke(Command(resume="yes"), CONFIG)
    with RunStore.open(tmp_path / "store") as store:
        graph = build(EventLogSaver(store))
        _run_to_interrupt(graph)
        out = graph.invoke(Command(resume="yes"), CONFIG)
        _check_finished(graph, out)
        ours = list(graph.get_state_history(CONFIG))
        theirs = list(reference.get_state_history(CONFIG))
        assert _summary(ours) == _summary(theirs)
        assert _transcript(ours) == _transcript(theirs)
        assert [s.next for s in ours] == [s.next for s in theirs]
        assert store.verify() == []


def test_resume_after_reopening_the_store(tmp_path: Path) -> None:
    with RunStore.open(tmp_path / "store") as store:
        _run_to_interrupt(build(EventLogSaver(store)))
    with RunStore.open(tmp_path / "store") as store:  # a new process would see the same
        # the model's first two replies were given before the reopen
        graph = build(EventLogSaver(store), replies_used=2)
        assert graph.get_state(CONFIG).next == ("tools",)
        out = graph.invoke(Command(resume="yes"), CONFIG)
        assert out["messages"][-1].content == "5, approved"
        assert _summary(list(graph.get_state_history(CONFIG))) == EXPECTED_HISTORY


def test_async_graph_on_async_store(tmp_path: Path) -> None:
    async def main() -> None:
        store = await AsyncRunStore.open(tmp_path / "store")
        try:
            graph = build(EventLogSaver(store))
            out = await graph.ainvoke(
                {"messages": [HumanMessage("add 2 and 3, then ask me")]}, CONFIG
            )
            assert [i.value for i in out["__interrupt__"]] == ["ship 5?"]
            out = await graph.ainvoke(Command(resume="yes"), CONFIG)
            assert out["messages"][-1].content == "5, approved"
            history = [s async for s in graph.aget_state_history(CONFIG)]
            assert _summary(history) == EXPECTED_HISTORY
        finally:
            await store.close()

    asyncio.run(main())
