"""The agent run that test_pydantic_ai_e2e.py kills in the middle of a tool.

``python pydantic_ai_crash_agent.py STORE MARKER``: a real pydantic-ai ``Agent`` on a scripted
``FunctionModel`` (offline) with ``StepPersistence`` on an ``EventLogStepStore`` over the LMDB
store at STORE. The model calls ``lookup`` (a read), then ``charge_card`` (a side effect),
which writes MARKER and then blocks until the process is killed.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path

from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai_harness.step_persistence import StepPersistence

from eventlog import RunStore
from eventlog.integrations.pydantic_ai import EventLogStepStore

RUN_ID = "crash-run"
CONVERSATION = "conv-1"


def script(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Look the weather up, then charge the card."""
    returned = {p.tool_name for m in messages for p in m.parts if isinstance(p, ToolReturnPart)}
    if "lookup" not in returned:
        call = ToolCallPart("lookup", {"city": "Paris"}, tool_call_id="call-1")
    else:
        call = ToolCallPart("charge_card", {"cents": 500}, tool_call_id="call-2")
    return ModelResponse(parts=[call])


def build(marker: Path) -> Agent[None, str]:
    """The agent, its tools: ``charge_card`` marks that it started, then hangs."""
    agent = Agent(FunctionModel(script))

    @agent.tool_plain
    def lookup(city: str) -> str:
        return f"{city}: 18C"

    @agent.tool_plain
    def charge_card(cents: int) -> str:
        marker.write_text(f"charging {cents}")
        threading.Event().wait()  # until SIGKILL
        return "charged"

    return agent


async def main(db: str, marker: Path) -> None:
    """Run the agent until the test kills the process."""
    with RunStore.open(db) as store:
        persistence = StepPersistence[None](store=EventLogStepStore(store), run_id=RUN_ID)
        await build(marker).run(
            "Weather in Paris, then pay", capabilities=[persistence], conversation_id=CONVERSATION
        )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2])))
