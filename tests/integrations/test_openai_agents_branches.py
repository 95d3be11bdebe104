"""Branches and usage: the same script on the SDK's ``AdvancedSQLiteSession`` and on ours.

Real SDK classes, offline: ``Runner.run`` with the SDK's ``ScriptedModel`` (each step with
its ``Usage``), ``store_run_usage(result)`` after each run, a branch from turn 2, a run on
it, switching back and deleting it. Every read (items, branches, usage per turn, per
branch and per session) must give the same answers on both, on memory and LMDB; the branch
is a zero-copy fork of the session's stream.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, Runner
from agents.extensions.memory.advanced_sqlite_session import AdvancedSQLiteSession
from agents.testing import ModelStep, ScriptedModel, assistant_message
from agents.usage import Usage

from eventlog import RunStore
from eventlog.integrations.openai_agents_branches import AdvancedEventLogSession

ANSWERS = ["Hello!", "Why did the log append? To be sure.", "Octopuses have three hearts."]


def _model() -> ScriptedModel:
    return ScriptedModel(
        [
            ModelStep(
                output=[assistant_message(text, item_id=f"msg_{n}")],
                usage=Usage(
                    requests=1,
                    input_tokens=10 * (n + 1),
                    output_tokens=n + 2,
                    total_tokens=10 * (n + 1) + n + 2,
                ),
            )
            for n, text in enumerate(ANSWERS)
        ]
    )


async def _script(session: Any) -> list[Any]:
    agent = Agent(name="a", instructions="be brief", model=_model())
    seen: list[Any] = []

    async def turn(text: str) -> None:
        result = await Runner.run(agent, text, session=session)
        await session.store_run_usage(result)

    def branches(found: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        # sorted: the SDK orders by a created_at of one-second resolution (ties in any order)
        keys = ("branch_id", "message_count", "user_turns", "is_current")
        return sorted(tuple(b[k] for k in keys) for b in found)

    await turn("Hi")
    await turn("Tell me a joke")
    seen.append(await session.get_turn_usage())
    branch = await session.create_branch_from_turn(2, "facts")
    seen.append((branch, await session.get_items()))
    await turn("Tell me a fact")
    seen.append(await session.get_items())
    seen.append(branches(await session.list_branches()))
    seen.append(await session.get_turn_usage())
    seen.append(await session.get_turn_usage(2))
    seen.append(await session.get_turn_usage(7))
    seen.append(await session.get_turn_usage(branch_id="main"))
    seen.append(await session.get_session_usage())
    seen.append(await session.get_session_usage("facts"))
    seen.append(await session.get_session_usage("main"))
    with pytest.raises(ValueError, match="Turn 5"):
        await session.create_branch_from_turn(5)
    with pytest.raises(ValueError, match="Cannot delete current branch"):
        await session.delete_branch("facts")
    await session.switch_to_branch("main")
    seen.append(await session.get_items())
    await session.delete_branch("facts")
    seen.append(branches(await session.list_branches()))
    seen.append(await session.get_session_usage())
    with pytest.raises(ValueError, match="does not exist"):
        await session.switch_to_branch("facts")
    return seen


@pytest.mark.parametrize("backend", ["memory", "lmdb"])
def test_same_answers_as_advanced_sqlite_session(tmp_path: Path, backend: str) -> None:
    sdk = AdvancedSQLiteSession(session_id="s-1", db_path=tmp_path / "sdk.db", create_tables=True)
    try:
        expected = asyncio.run(_script(sdk))
    finally:
        sdk.close()
    store = RunStore.in_memory() if backend == "memory" else RunStore.open(tmp_path / "store")
    with store:
        ours = AdvancedEventLogSession("s-1", store)
        assert asyncio.run(_script(ours)) == expected
        assert store.verify() == []


def _contents(items: list[Any]) -> list[Any]:
    return [i["content"] for i in items]


def test_a_branch_is_a_zero_copy_fork(tmp_path: Path) -> None:
    async def scenario(store: RunStore) -> None:
        session = AdvancedEventLogSession("s-2", store)
        await session.add_items([{"role": "user", "content": f"q{n}"} for n in range(1, 4)])
        before = len(store.read_log())
        await session.create_branch_from_turn(3, "b")
        assert len(store.read_log()) == before  # nothing copied
        links = store.lineage(session.branch_stream_id("b"))
        assert [(f.parent_id, f.fork_seq) for f in links] == [(session.store_session_id, 2)]
        assert session.current_branch_id == "b"
        await session.pop_item()  # acts on the branch only
        assert _contents(await session.get_items()) == ["q1"]
        await session.switch_to_branch("main")
        assert _contents(await session.get_items()) == ["q1", "q2", "q3"]

    with RunStore.open(tmp_path / "store") as store:
        asyncio.run(scenario(store))
        assert store.verify() == []
