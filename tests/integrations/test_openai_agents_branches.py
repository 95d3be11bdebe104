"""Branches and usage: the same script on the SDK's ``AdvancedSQLiteSession`` and on ours.

Real SDK classes, offline: ``Runner.run`` with the SDK's ``ScriptedModel`` (each step with
its ``Usage``), ``store_run_usage(result)`` after each run, a branch from turn 2, a run on
it, switching back and deleting it; then usage made stale (pops that empty a turn, a
deleted branch, a clear, turn 0). Every read (items, branches, usage per turn, per branch
and per session) must give the same answers on both, on memory and LMDB; the branch is a
zero-copy fork of the session's stream, and usage is one stream of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, Runner
from agents.extensions.memory.advanced_sqlite_session import AdvancedSQLiteSession
from agents.testing import ModelStep, ScriptedModel, assistant_message
from agents.usage import Usage

from eventlog import RunStore
from eventlog.errors import StreamNotFound
from eventlog.integrations.openai_agents_branches import (
    AdvancedEventLogSession,
    TurnUsage,
    UsageDropped,
)
from eventlog.tools.copy_store import copy_store

ANSWERS = ["Hello!", "Why did the log append? To be sure.", "Octopuses have three hearts."]


def _model(answers: list[str] = ANSWERS) -> ScriptedModel:
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
            for n, text in enumerate(answers)
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


async def _stale_usage(session: Any) -> list[Any]:
    """Usage made stale: pops that empty a turn (or not), a deleted branch, a clear."""
    agent = Agent(name="a", instructions="", model=_model([f"a{n}" for n in range(7)]))
    seen: list[Any] = []
    results: list[Any] = []

    async def turn(text: str) -> None:
        results.append(await Runner.run(agent, text, session=session))
        await session.store_run_usage(results[-1])

    async def usage() -> None:
        seen.append(await session.get_turn_usage())
        seen.append(await session.get_session_usage())

    await turn("q1")
    await turn("q2")
    seen.append(await session.pop_item())  # the answer: turn 2 keeps its user message
    await usage()
    seen.append(await session.pop_item())  # the user message: turn 2 is empty
    await usage()
    await turn("q2 again")  # a new turn 2
    await session.store_run_usage(results[0])  # a later record replaces it
    await usage()
    await session.create_branch_from_turn(2, "b")
    await turn("on b")
    await turn("on b again")
    seen.append(await session.get_session_usage("b"))
    for _ in range(2):  # empties turn 3 of b, not turn 3 of main (it has none)
        await session.pop_item()
    await usage()
    seen.append(await session.get_session_usage("b"))
    await session.delete_branch("b", force=True)  # its usage goes with it
    await usage()
    await session.clear_session()  # all usage goes
    await usage()
    await session.add_items([{"role": "assistant", "content": "Welcome back"}])
    await session.store_run_usage(results[1])  # no user message yet: turn 0
    await usage()
    await session.pop_item()  # empties turn 0
    await usage()
    await session.store_run_usage(results[1])  # an empty branch: nothing recorded
    await usage()
    await turn("q1 anew")
    await usage()
    return seen


@pytest.mark.parametrize("script", [_script, _stale_usage])
@pytest.mark.parametrize("backend", ["memory", "lmdb"])
def test_same_answers_as_advanced_sqlite_session(
    tmp_path: Path, backend: str, script: Callable[[Any], Coroutine[Any, Any, list[Any]]]
) -> None:
    sdk = AdvancedSQLiteSession(session_id="s-1", db_path=tmp_path / "sdk.db", create_tables=True)
    try:
        expected = asyncio.run(script(sdk))
    finally:
        sdk.close()
    store = RunStore.in_memory() if backend == "memory" else RunStore.open(tmp_path / "store")
    with store:
        ours = AdvancedEventLogSession("s-1", store)
        assert asyncio.run(script(ours)) == expected
        assert store.verify() == []


def test_usage_reads_only_the_usage_stream_and_travels(tmp_path: Path) -> None:
    """Usage is one stream per Agents session; export/import and copy carry it."""

    async def scenario(session: AdvancedEventLogSession) -> Any:
        await _script(session)
        return await reads(session)

    async def reads(session: AdvancedEventLogSession) -> Any:
        return [
            await session.get_session_usage(),
            await session.get_turn_usage(branch_id="main"),
        ]

    with RunStore.open(tmp_path / "store") as store:
        session = AdvancedEventLogSession("s-4", store)
        before = asyncio.run(scenario(session))
        assert before[0] is not None
        record = store.get_stream(session.usage_stream_id)
        assert record is not None
        assert record.kind == "agents.usage"
        usage = [r.event for r in store.read_stream(session.usage_stream_id)]
        assert {type(e) for e in usage} == {TurnUsage, UsageDropped}  # facts' went with it
        for branch in (session.store_session_id, session.branch_stream_id("facts")):
            with contextlib.suppress(StreamNotFound):  # facts was deleted
                events = store.read_stream(branch)
                assert not any(isinstance(r.event, TurnUsage | UsageDropped) for r in events)
        lines = list(store.export_jsonl())
        assert store.verify() == []
    with RunStore.in_memory() as imported:
        imported.import_jsonl(lines, require_trailer=True)
        assert asyncio.run(reads(AdvancedEventLogSession("s-4", imported))) == before
        assert imported.verify() == []
    copy_store(tmp_path / "store", tmp_path / "copy")
    with RunStore.open(tmp_path / "copy") as copied:
        assert asyncio.run(reads(AdvancedEventLogSession("s-4", copied))) == before
        assert copied.verify() == []


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
