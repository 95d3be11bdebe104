"""A real pydantic-ai Agent with the harness's StepPersistence on EventLogStepStore (offline).

- ``TestModel`` calls the agent's tool and answers; the run's events, its snapshot and its
  settled ledger are in the store (memory, LMDB, PostgreSQL), and the harness's
  ``continue_run`` continues the run from it.
- A crash in the middle of a tool: a subprocess runs the agent on an LMDB store and is
  SIGKILLed once its side-effecting tool has started (it writes a marker file, the test waits
  for it); a new process (this one) finds the unresolved effect, resumes from the latest
  complete snapshot and finishes the work in a new run of the same conversation.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_support import url_for
from pydantic_ai import Agent
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel
from pydantic_ai_harness.step_persistence import StepPersistence, continue_run
from pydantic_ai_harness.step_persistence.recovery import inspect_recovery

from eventlog import RunStore
from eventlog.integrations.pydantic_ai import EventLogStepStore

CRASH_AGENT = Path(__file__).with_name("pydantic_ai_crash_agent.py")


@pytest.fixture(params=["memory", "lmdb", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunStore]:
    if request.param == "memory":
        opened = RunStore.in_memory()
    elif request.param == "lmdb":
        opened = RunStore.open(tmp_path / "s")
    else:
        request.getfixturevalue("pg_schemas")
        opened = RunStore.open(url_for(tmp_path / "s"))
    with opened:
        yield opened


def test_agent_run_with_a_tool(store: RunStore) -> None:
    agent: Agent[None, str] = Agent(TestModel())

    @agent.tool_plain
    def weather(city: str) -> str:
        return f"{city}: 18C"

    steps = EventLogStepStore(store)

    async def scenario() -> None:
        persistence = StepPersistence[None](store=steps, run_id="r-1", agent_name="forecaster")
        result = await agent.run("Weather?", capabilities=[persistence], conversation_id="c-1")
        assert "weather" in result.output
        kinds = [e.kind for e in await steps.list_events(run_id="r-1")]
        assert kinds[0] == "run_started"
        assert kinds[-1] == "run_completed"
        assert "tool_call_completed" in kinds
        assert await steps.list_unresolved_tool_effects(run_id="r-1") == []
        [run] = await steps.list_runs(conversation_id="c-1")
        assert (run.run_id, run.agent_name) == ("r-1", "forecaster")
        history = await continue_run(steps, run_id="r-1")
        assert history == result.all_messages()
        # the next turn continues the conversation from the stored history
        nxt = StepPersistence[None](store=steps, run_id="r-2", parent_run_id="r-1")
        again = await agent.run(
            "And tomorrow?", message_history=history, capabilities=[nxt], conversation_id="c-1"
        )
        assert again.all_messages()[: len(history)] == history
        assert [r.run_id for r in await steps.list_runs(conversation_id="c-1")] == ["r-1", "r-2"]
        assert [r.run_id for r in await steps.list_runs(parent_run_id="r-1")] == ["r-2"]

    asyncio.run(scenario())


def _wait_for(path: Path, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Until ``path`` exists (the tool started); fail if the process ends or time runs out."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"the agent process ended ({proc.returncode}): {proc.stderr!r}")
        if time.monotonic() > deadline:
            pytest.fail(f"the tool did not start within {timeout}s")
        time.sleep(0.02)


def resume_script(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """After the resume: the card charge is reconciled by hand, the model only answers."""
    return ModelResponse(parts=[TextPart("18C in Paris; the payment needs a check")])


def test_crash_in_a_tool_then_resume(tmp_path: Path) -> None:
    db, marker = tmp_path / "store", tmp_path / "charging"
    proc = subprocess.Popen(
        [sys.executable, str(CRASH_AGENT), str(db), str(marker)],
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    try:
        _wait_for(marker, proc, timeout=60)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.stderr is not None
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    with RunStore.open(db) as store:
        steps = EventLogStepStore(store)

        async def resume() -> None:
            facts = await inspect_recovery(store=steps, run_id="crash-run")
            [unresolved] = facts.unresolved
            assert (unresolved.tool_name, unresolved.tool_call_id) == ("charge_card", "call-2")
            assert unresolved.status == "started"
            assert facts.completed_tools == ("lookup",)
            settled = facts.settled
            assert settled is not None
            assert settled.state == "complete"
            # the latest complete snapshot holds the finished lookup, not the charge
            [call] = [p for m in settled.messages for p in m.parts if isinstance(p, ToolCallPart)]
            assert call.tool_name == "lookup"
            assert isinstance(settled.messages[-1], ModelRequest)
            assert isinstance(settled.messages[-1].parts[0], ToolReturnPart)
            events = await steps.list_events(run_id="crash-run")
            assert events[-1].kind == "tool_call_started"
            assert events[-1].tool_name == "charge_card"

            agent: Agent[None, str] = Agent(FunctionModel(resume_script))
            persistence = StepPersistence[None](
                store=steps, run_id="resumed", parent_run_id="crash-run"
            )
            result = await agent.run(
                message_history=settled.messages,
                capabilities=[persistence],
                conversation_id="conv-1",
            )
            assert result.output == "18C in Paris; the payment needs a check"
            runs = await steps.list_runs(conversation_id="conv-1")
            assert [r.run_id for r in runs] == ["crash-run", "resumed"]
            done = await steps.latest_snapshot(run_id="resumed")
            assert done is not None
            # the resumed history starts with the settled one (pydantic-ai stamps the last
            # request with the new run's id and time: compare the parts)
            n = len(settled.messages)
            assert [m.parts for m in done.messages[:n]] == [m.parts for m in settled.messages]
            assert isinstance(done.messages[-1].parts[0], TextPart)
            # the crashed run's effect stays unresolved until someone reconciles it
            left = await steps.list_unresolved_tool_effects(run_id="crash-run")
            assert [e.tool_call_id for e in left] == ["call-2"]

        asyncio.run(resume())
        assert store.verify() == []
