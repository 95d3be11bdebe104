"""An ADK Runner end to end, offline: a scripted model, a real tool, our session service.

The same conversation runs once on ``EventLogSessionService`` (LMDB) and once on ADK's
``InMemorySessionService``: the same events and the same state. Then a rewind, on both;
then the LMDB store is reopened in a new store object and the session goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from google.adk.agents import LlmAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import Runner
from google.adk.sessions import InMemorySessionService
from google.adk.sessions.base_session_service import BaseSessionService
from google.adk.sessions.session import Session
from google.adk.tools.tool_context import ToolContext
from google.genai import types

from eventlog import RunStore
from eventlog.integrations.adk import EventLogSessionService
from projections.adk_sessions import SESSION_KIND

APP, USER = "weather", "u1"


class ScriptedLlm(BaseLlm):
    """Canned answers: a tool call for a weather question, then text about its result."""

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        last = llm_request.contents[-1].parts or []
        answer = next((p.function_response for p in last if p.function_response), None)
        question = " ".join(p.text or "" for p in last)
        if answer is not None:
            part = types.Part(text=f"It is {(answer.response or {}).get('sky')} in Paris.")
        elif "weather" in question:
            call = types.FunctionCall(id="call-1", name="get_weather", args={"city": "Paris"})
            part = types.Part(function_call=call)
        else:
            part = types.Part(text="Bye! \x1b[31m<b>hostile</b>")
        yield LlmResponse(content=types.Content(role="model", parts=[part]))


def get_weather(city: str, tool_context: ToolContext) -> dict[str, Any]:
    """The weather in ``city`` (a real tool: it writes state in every scope)."""
    tool_context.state["user:city"] = city
    tool_context.state["app:lookups"] = tool_context.state.get("app:lookups", 0) + 1
    tool_context.state["temp:scratch"] = "never stored"
    tool_context.state["last_city"] = city
    return {"city": city, "sky": "sunny"}


def runner(service: BaseSessionService) -> Runner:
    agent = LlmAgent(
        name="assistant",
        model=ScriptedLlm(model="scripted"),
        tools=[get_weather],
        output_key="last_answer",
    )
    return Runner(app_name=APP, agent=agent, session_service=service)


async def turn(r: Runner, session_id: str, text: str) -> str:
    message = types.Content(role="user", parts=[types.Part(text=text)])
    async for _ in r.run_async(user_id=USER, session_id=session_id, new_message=message):
        pass
    session = await r.session_service.get_session(app_name=APP, user_id=USER, session_id=session_id)
    assert session is not None
    return session.events[-1].invocation_id


def shape(session: Session | None) -> tuple[Any, list[Any]]:
    """State and events without what differs from run to run (ids, times)."""
    assert session is not None
    events = []
    for e in session.events:
        data = e.model_dump(mode="json", exclude_none=True)
        for key in ("id", "invocation_id", "timestamp"):
            data.pop(key, None)
        data.get("actions", {}).pop("rewind_before_invocation_id", None)
        events.append(data)
    return session.state, events


async def conversation(service: BaseSessionService) -> tuple[Any, ...]:
    r = runner(service)
    s = await service.create_session(app_name=APP, user_id=USER, session_id="chat")
    first = await turn(r, s.id, "What is the weather?")
    await turn(r, s.id, "Thanks")
    before = shape(await service.get_session(app_name=APP, user_id=USER, session_id=s.id))
    await r.rewind_async(user_id=USER, session_id=s.id, rewind_before_invocation_id=first)
    after = shape(await service.get_session(app_name=APP, user_id=USER, session_id=s.id))
    return before, after


def test_runner_same_events_and_state_then_reopen(tmp_path: Path) -> None:
    async def ours() -> tuple[Any, ...]:
        with RunStore.open(tmp_path / "db") as store:
            return await conversation(EventLogSessionService(store))

    mine = asyncio.run(ours())
    reference = asyncio.run(conversation(InMemorySessionService()))
    assert mine == reference
    state, events = mine[0]
    assert state["last_city"] == "Paris"
    assert state["user:city"] == "Paris"
    assert state["app:lookups"] == 1
    assert "temp:scratch" not in state
    assert any("function_call" in p for e in events for p in e.get("content", {}).get("parts", []))
    # the rewind undid the session-scoped state (ADK writes None), not the shared scopes
    assert mine[1][0]["last_city"] is None
    assert mine[1][0]["user:city"] == "Paris"

    async def reopened() -> tuple[Any, ...]:
        with RunStore.open(tmp_path / "db") as store:
            assert [s.kind for s in store.list_streams(SESSION_KIND)] == [SESSION_KIND]
            service = EventLogSessionService(store)
            r = runner(service)
            await turn(r, "chat", "What is the weather now?")
            got = await service.get_session(app_name=APP, user_id=USER, session_id="chat")
            assert store.verify() == []
            return shape(got)

    state, events = asyncio.run(reopened())
    assert state["app:lookups"] == 2  # the app scope kept counting across the reopen
    assert state["last_city"] == "Paris"
    assert len(events) == len(mine[1][1]) + 4  # user message, call, tool response, answer
