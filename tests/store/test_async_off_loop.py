"""On PostgreSQL, no AsyncRunStore call runs a server round trip on the event loop's thread.

Every query and every new connection of psycopg is recorded with the thread that made it,
while one task calls every coroutine of ``AsyncRunStore`` (and reads through
``projection()``'s query objects and a subscription). The loop's thread must never appear;
a control at the end makes a blocking call on the loop on purpose and sees it recorded.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar
from uuid import uuid4

import msgspec
import psycopg
import pytest
from pg_support import url_for

from eventlog import AppendRequest, AsyncRunStore, EventRecord, ProjectionTx, RunStatus
from eventlog.events import RunCompleted, TextDelta
from eventlog.messages import UserMessage

pytestmark = pytest.mark.usefixtures("pg_schemas")


class _Counter:
    """A user projector without a query object: ``projection()`` returns its raw view."""

    name: ClassVar[str] = "counter"
    version: ClassVar[int] = 1
    event_types: ClassVar[frozenset[str]] = frozenset({"TextDelta"})

    def apply(self, tx: ProjectionTx, record: EventRecord) -> None:
        tx.put(b"n", str(int(tx.get(b"n") or b"0") + 1).encode())


class _Delta(msgspec.Struct):
    delta: str = ""


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str]]:
    """``(thread id, what)`` of every psycopg query and connection made during the test."""
    seen: list[tuple[int, str]] = []
    execute = psycopg.Cursor.execute
    connect = psycopg.Connection.connect

    def recorded_execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append((threading.get_ident(), f"query {str(query)[:60]}"))
        return execute(self, query, *args, **kwargs)

    def recorded_connect(*args: Any, **kwargs: Any) -> Any:
        seen.append((threading.get_ident(), "connect"))
        return connect(*args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", recorded_execute)
    monkeypatch.setattr(psycopg.Connection, "connect", recorded_connect)
    monkeypatch.setattr(psycopg, "connect", recorded_connect)
    return seen


async def _every_call(store: AsyncRunStore, called: set[str]) -> None:
    """Await every coroutine of the async API at least once (``called`` collects the names)."""

    def call(method_name: str, /, *args: Any, **kwargs: Any) -> Awaitable[Any]:
        called.add(method_name)
        method: Callable[..., Awaitable[Any]] = getattr(store, method_name)
        return method(*args, **kwargs)

    await call("health_check")
    sid = await call("ensure_session")
    assert await call("ensure_session", sid) == sid
    session = await call("create_session", title="t")
    assert (await call("get_session", session.id)).title == "t"
    assert len(await call("list_sessions")) == 2
    run = await call("create_run", sid, provider="p", model="m")
    other = await call("create_run", sid, provider="p", model="m")
    assert (await call("get_run", run.id)).id == run.id
    await call("append_event", run.id, TextDelta("a"))
    await call("append_events", run.id, [TextDelta("b"), TextDelta("c")])
    await call("append_many", [AppendRequest(other.id, [TextDelta("x")])])
    assert (await call("get_run_state", run.id)).event_count == 3
    assert [r.seq for r in await call("list_events", run.id)] == [1, 2, 3]
    assert len(await call("read_log")) == 4
    assert len(await call("last_events", 2)) == 2
    assert await call("last_position") == 4
    await call("update_run_status", run.id, RunStatus.PERSISTING)
    assert await call("count_runs", RunStatus.PERSISTING) == 1
    assert len(await call("list_runs", sid)) == 2
    assert len(await call("list_runs_filtered", session_id=sid)) == 2
    assert await call("find_runs", run.id.hex[:8]) == [run.id]
    assert sid in await call("find_sessions", sid.hex[:8])
    await call("append_message", sid, UserMessage("hi"))
    assert len(await call("list_messages", sid)) == 1
    assert await call("list_executions", sid) == []
    assert (await call("session_stats", sid)).total_runs == 2
    stream = await call("create_stream", kind="test.kind")
    await call("ensure_stream", stream.id, kind="test.kind")
    await call("append_to_stream", stream.id, [TextDelta("s")])
    assert (await call("get_stream", stream.id)).id == stream.id
    assert len(await call("read_stream", stream.id)) == 1
    assert (await call("read_stream_view", stream.id, _Delta))[0][2] == _Delta("s")
    assert len(await call("list_streams", "test.kind")) == 1
    assert await call("list_stream_kinds") == ["test.kind"]
    assert await call("delete_stream", stream.id)
    lines = await call("export_jsonl")
    assert len(lines) > 5
    assert (await call("stats")).runs == 2
    await call("rebuild_projections", ["counter"])  # it has no hook for deleted streams
    assert await call("verify") == []
    assert len(await call("projector_status")) >= 5
    await call("flush")
    await call("wait_for_projections")

    # projection(): reads through its query objects are round trips too
    state = await store.projection("run_state").get(run.id)
    assert state.status == RunStatus.PERSISTING
    view = store.projection("counter")
    assert await view.get(b"n") == b"4"
    assert [k for k, _ in await view.scan()] == [b"n"]

    # a subscription's reads, acks and waits
    sub = await call("subscribe", name="reader", timeout=0)
    async with sub:
        assert len([r async for r in sub]) == 6  # the stream's event was deleted
    assert [c.name for c in await call("consumers")] == ["reader"]
    assert await call("delete_consumer", "reader")

    await call("append_event", run.id, RunCompleted("stop", 1))
    assert await call("delete_run", other.id)
    assert await call("delete_session", session.id)
    target = await call("import_jsonl", [])
    assert target.events == 0

    # history: forks and lineage, the tool ledger, what-if replay, retention
    parent = await call("create_run", sid, provider="p", model="m")
    await call("append_events", parent.id, [TextDelta("p1"), TextDelta("p2")])
    fork = await call("fork_run", parent.id, 1)
    assert [f.id for f in await call("list_forks", parent.id)] == [fork.id]
    assert len(await call("lineage", fork.id)) == 1
    base = await call("create_stream", kind="test.forked")
    await call("append_to_stream", base.id, [TextDelta("s")])
    await call("fork_stream", base.id, 1)
    assert len(await call("list_stream_forks", base.id)) == 1
    assert await call("tool_calls", parent.id) == []
    assert await call("unresolved_tool_calls", parent.id) == []
    assert (await call("replay", parent.id, drop=[2])).event_count == 1
    assert parent.id not in (await call("prune", dry_run=True)).run_ids  # not terminal


def test_no_round_trip_runs_on_the_event_loop(
    tmp_path: Path, round_trips: list[tuple[int, str]]
) -> None:
    called: set[str] = set()
    loop_thread: list[int] = []

    async def scenario() -> None:
        loop_thread.append(threading.get_ident())
        store = await AsyncRunStore.open(url_for(tmp_path / uuid4().hex), projectors=[_Counter()])
        try:
            await _every_call(store, called)
            on_loop = [what for thread, what in round_trips if thread == loop_thread[0]]
            assert on_loop == []
            # the control: a blocking read made on the loop on purpose is seen
            store.sync.get_run(uuid4())
            assert any(thread == loop_thread[0] for thread, _ in round_trips)
        finally:
            await store.close()

    asyncio.run(scenario())
    assert len(round_trips) > 100
    coroutines = {
        name
        for name, member in inspect.getmembers(AsyncRunStore)
        if inspect.iscoroutinefunction(member) and not name.startswith("_")
    }
    assert coroutines - called == {"open", "close"}  # both used by the scenario itself
