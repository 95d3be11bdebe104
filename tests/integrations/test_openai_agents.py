"""EventLogSession: the Agents SDK Session protocol over an eventlog store.

The protocol's behaviour on memory, LMDB and the async store; concurrency (adds lose
nothing, two pops never return the same item); reopening; the transcript in
``list_messages``; and an offline end-to-end run of a real ``Agent`` with the SDK's
``ScriptedModel`` (tracing disabled): ``Runner.run`` over two turns, ``run_sync`` and
``run_streamed``.
"""

from __future__ import annotations

import asyncio
import threading
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, cast
from uuid import uuid4

import pytest
from agents import Agent, RunConfig, Runner, function_tool
from agents.items import TResponseInputItem
from agents.memory import Session, SessionSettings
from agents.testing import ScriptedModel, assistant_message, function_call
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pg_support import url_for

from eventlog import AsyncRunStore, RunStore, stream_id_for
from eventlog.integrations.openai_agents import EventLogSession
from eventlog.messages import (
    AssistantMessage,
    ImageUrlPart,
    JsonPart,
    MessageAppended,
    MessageRetracted,
    SystemMessage,
    TextPart,
    ToolCall,
    ToolMessage,
    UserMessage,
)

Items = list[TResponseInputItem]

USER: dict[str, Any] = {"role": "user", "content": "Weather in Paris?"}
CALL: dict[str, Any] = {
    "type": "function_call",
    "id": "fc_1",
    "call_id": "call_1",
    "name": "get_weather",
    "arguments": '{"city": "Paris"}',
}
OUTPUT: dict[str, Any] = {"type": "function_call_output", "call_id": "call_1", "output": "18C"}
ANSWER: dict[str, Any] = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "status": "completed",
    "content": [{"type": "output_text", "text": "18C and sunny.", "annotations": []}],
}
REASONING: dict[str, Any] = {"type": "reasoning", "id": "rs_1", "summary": [], "n": 1.5}


def _items(*items: Any) -> Items:
    return cast(Items, [dict(i) for i in items])


StoreFactory = Callable[[Path], Any]


@pytest.fixture(params=["memory", "lmdb", "async-lmdb", "postgresql", "async-postgresql"])
def make_store(request: pytest.FixtureRequest) -> Iterator[Callable[[Path], Any]]:
    opened: list[Any] = []
    if "postgresql" in request.param:
        request.getfixturevalue("pg_schemas")  # a server, and the schemas dropped afterwards

    def make(path: Path) -> RunStore | AsyncRunStore:
        if request.param == "memory":
            store: RunStore | AsyncRunStore = RunStore.in_memory()
        elif request.param == "lmdb":
            store = RunStore.open(path)
        elif request.param == "async-lmdb":
            store = AsyncRunStore(RunStore.open(path))
        elif request.param == "postgresql":
            store = RunStore.open(url_for(path))
        else:
            store = AsyncRunStore(RunStore.open(url_for(path)))
        opened.append(store)
        return store

    yield make
    for store in opened:
        (store.sync if isinstance(store, AsyncRunStore) else store).close()


def test_is_a_session(tmp_path: Path, make_store: StoreFactory) -> None:
    session = EventLogSession("s1", make_store(tmp_path / "s"))
    assert isinstance(session, Session)
    assert session.session_id == "s1"
    assert session.session_settings == SessionSettings()
    assert session.store_session_id == stream_id_for("agents.session", "s1")
    uid = str(uuid4())
    assert str(EventLogSession(uid, make_store(tmp_path / "u")).store_session_id) == uid


def test_protocol(tmp_path: Path, make_store: StoreFactory) -> None:
    store = make_store(tmp_path / "s")
    session = EventLogSession("s1", store)

    async def main() -> None:
        assert await session.get_items() == []
        assert await session.pop_item() is None
        await session.clear_session()  # on a session that does not exist yet: nothing
        await session.add_items([])
        await session.add_items(_items(USER, CALL))
        await session.add_items(_items(OUTPUT, REASONING, ANSWER, ANSWER))  # ids need not be unique
        assert await session.get_items() == [USER, CALL, OUTPUT, REASONING, ANSWER, ANSWER]
        assert await session.get_items(limit=2) == [ANSWER, ANSWER]
        assert await session.get_items(limit=10) == [USER, CALL, OUTPUT, REASONING, ANSWER, ANSWER]
        assert await session.get_items(limit=0) == []
        assert await session.pop_item() == ANSWER
        assert await session.pop_item() == ANSWER
        assert await session.get_items(limit=2) == [OUTPUT, REASONING]
        assert await session.pop_item() == REASONING
        await session.add_items(_items(ANSWER))
        assert await session.get_items() == [USER, CALL, OUTPUT, ANSWER]
        await session.clear_session()
        assert await session.get_items() == []
        assert await session.pop_item() is None
        await session.add_items(_items(USER))
        assert await session.get_items() == [USER]
        limited = EventLogSession("s1", store, session_settings=SessionSettings(limit=1))
        await limited.add_items(_items(ANSWER))
        assert await limited.get_items() == [ANSWER]
        assert await limited.get_items(limit=5) == [USER, ANSWER]

    asyncio.run(main())


def test_items_round_trip_exactly(tmp_path: Path, make_store: StoreFactory) -> None:
    session = EventLogSession("exact", make_store(tmp_path / "s"))
    odd = {
        "type": "message",
        "role": "user",
        "content": [
            {"type": "input_text", "text": "ünïcödé ✓"},
            {"type": "input_image", "image_url": "https://x/y.png", "detail": "auto"},
            {"type": "input_file", "file_id": "f1"},
        ],
        "nested": {"a": [1, 2.5, None, True, {"b": -(2**63)}]},
        "id": "same",
    }
    unknown = {"type": "some_future_item", "id": "same", "payload": {"k": [[], {}]}}

    async def main() -> None:
        await session.add_items(_items(odd, unknown))
        got = await session.get_items()
        assert got == [odd, unknown]
        assert [type(v) for v in cast(dict[str, Any], got[0])["nested"]["a"]] == [
            int,
            float,
            type(None),
            bool,
            dict,
        ]
        assert await session.pop_item() == unknown

    asyncio.run(main())


def test_bad_input(tmp_path: Path) -> None:
    store = RunStore.in_memory()
    with pytest.raises(TypeError, match="session_id must be a non-empty str"):
        EventLogSession("", store)
    with pytest.raises(TypeError, match="RunStore or AsyncRunStore"):
        EventLogSession("s", object())  # type: ignore[arg-type]
    session = EventLogSession("s", store)

    async def main() -> None:
        with pytest.raises(TypeError, match="list of items"):
            await session.add_items(cast(Items, USER))
        with pytest.raises(TypeError, match="item 1 must be a dict"):
            await session.add_items(cast(Items, [USER, "hello"]))
        with pytest.raises(ValueError, match="cannot be stored"):
            await session.add_items(cast(Items, [{"role": "user", "content": "x", "n": 2**70}]))
        assert await session.get_items() == []

    asyncio.run(main())


def test_transcript_in_list_messages(tmp_path: Path, make_store: StoreFactory) -> None:
    store = make_store(tmp_path / "s")
    session = EventLogSession("t", store)
    system = {"role": "developer", "content": "Be brief."}
    image = {"role": "user", "content": [{"type": "input_image", "image_url": "https://i/p.png"}]}

    async def main() -> None:
        await session.add_items(_items(system, USER, image, REASONING, CALL))
        await session.add_items(_items(OUTPUT, ANSWER))  # the tool's name comes from the call
        sync = store.sync if isinstance(store, AsyncRunStore) else store
        assert sync.list_messages(session.store_session_id) == [
            SystemMessage("Be brief."),
            UserMessage("Weather in Paris?"),
            UserMessage([ImageUrlPart("https://i/p.png")]),
            AssistantMessage([], tool_calls=[ToolCall("call_1", "get_weather", {"city": "Paris"})]),
            ToolMessage("call_1", "get_weather", "18C"),
            AssistantMessage("18C and sunny."),
        ]
        await session.pop_item()
        assert len(sync.list_messages(session.store_session_id)) == 5  # the pop is undone there too
        # a new process knows nothing of the call: the name is read back from the store
        later = EventLogSession("t", store)
        await later.add_items(_items({**OUTPUT, "output": [{"type": "input_text", "text": "19C"}]}))
        last = sync.list_messages(session.store_session_id)[-1]
        assert last == ToolMessage("call_1", "get_weather", [TextPart("19C")])
        await session.clear_session()
        assert sync.list_messages(session.store_session_id) == []
        # every original item is still in the log
        events = sync.read_stream(session.store_session_id)
        assert len(events) == 10
        record = sync.get_session(session.store_session_id)
        assert record is not None
        assert record.metadata == {"agents_session_id": "t"}

    asyncio.run(main())
    other = {"type": "function_call_output", "call_id": "nope", "output": {"x": 1}}
    from eventlog.integrations.openai_agents import to_message

    assert to_message(other, {}) == ToolMessage("nope", "", [JsonPart({"x": 1})])


def test_concurrent_adds_lose_nothing_and_pops_never_share_an_item(tmp_path: Path) -> None:
    async def main() -> None:
        async with await AsyncRunStore.open(tmp_path / "s") as store:
            sessions = [EventLogSession("busy", store) for _ in range(4)]  # one id, four objects

            async def writer(n: int) -> None:
                for i in range(5):
                    batch = [{"role": "user", "content": f"{n}:{i}:{k}"} for k in range(3)]
                    await sessions[n % 4].add_items(_items(*batch))

            await asyncio.gather(*(writer(n) for n in range(8)))
            items = await sessions[0].get_items()
            assert len(items) == 8 * 5 * 3
            texts = [cast(dict[str, str], i)["content"] for i in items]
            assert sorted(texts) == sorted(
                f"{n}:{i}:{k}" for n in range(8) for i in range(5) for k in range(3)
            )
            for n in range(8):  # each call is one batch, in its caller's order
                mine = [t for t in texts if t.startswith(f"{n}:")]
                assert mine == [f"{n}:{i}:{k}" for i in range(5) for k in range(3)]
            popped = await asyncio.gather(*(sessions[n % 4].pop_item() for n in range(130)))
            real = [cast(dict[str, str], p)["content"] for p in popped if p is not None]
            assert sorted(real) == sorted(texts)  # every item once, none twice
            assert popped.count(None) == 10
            assert await sessions[1].get_items() == []

    asyncio.run(main())


def test_pops_from_threads_on_a_sync_store(tmp_path: Path) -> None:
    with RunStore.open(tmp_path / "s") as store:
        session = EventLogSession("threads", store)
        asyncio.run(
            session.add_items(_items(*({"role": "user", "content": str(i)} for i in range(40))))
        )

        async def pop_many(n: int) -> list[Any]:
            return list(await asyncio.gather(*(session.pop_item() for _ in range(n))))

        results: list[Any] = []

        def worker() -> None:
            results.extend(asyncio.run(pop_many(10)))

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(int(r["content"]) for r in results) == list(range(40))


def _pop_in_a_process(path: str, count: int, barrier: Any, out: str) -> None:
    """A worker process (spawned): pop ``count`` times, write what it got, one per line."""
    import json

    with RunStore.open(path) as store:
        session = EventLogSession("shared", store)
        barrier.wait(60)

        async def pops() -> list[Any]:
            return [await session.pop_item() for _ in range(count)]

        got = asyncio.run(pops())
    Path(out).write_text("\n".join(json.dumps(g) for g in got))


def test_processes_popping_one_session_never_share_an_item(tmp_path: Path) -> None:
    import json
    import multiprocessing

    path = str(tmp_path / "s")
    with RunStore.open(path) as store:
        batch = [{"role": "user", "content": str(i)} for i in range(60)]
        asyncio.run(EventLogSession("shared", store).add_items(_items(*batch)))
    ctx = multiprocessing.get_context("spawn")  # never inherit an LMDB environment
    barrier = ctx.Barrier(3)
    outs = [str(tmp_path / f"out{n}") for n in range(3)]
    procs = [ctx.Process(target=_pop_in_a_process, args=(path, 25, barrier, o)) for o in outs]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    got = [json.loads(line) for o in outs for line in Path(o).read_text().splitlines()]
    items = [g for g in got if g is not None]
    assert sorted(int(i["content"]) for i in items) == list(range(60))  # each item exactly once
    assert got.count(None) == 15


def test_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with RunStore.open(path) as store:
        asyncio.run(EventLogSession("r", store).add_items(_items(USER, CALL, OUTPUT, REASONING)))
        asyncio.run(EventLogSession("r", store).pop_item())
    with RunStore.open(path) as store:
        assert asyncio.run(EventLogSession("r", store).get_items()) == [USER, CALL, OUTPUT]
        assert store.verify() == []
        # and the export carries it: import into a new store gives the same history
        lines = list(store.export_jsonl())
    copy = RunStore.in_memory()
    copy.import_jsonl(lines)
    assert asyncio.run(EventLogSession("r", copy).get_items()) == [USER, CALL, OUTPUT]


def test_a_cancelled_write_commits_first_then_raises(tmp_path: Path) -> None:
    """A task cancelled while its add_items / pop_item waits in the committer's queue: the
    write commits (or fails) first, then the task gets its CancelledError."""
    store = AsyncRunStore(RunStore.open(tmp_path / "s"))
    session = EventLogSession("c", store)
    committer = store.core.committer
    inside, release = threading.Event(), threading.Event()

    def hold(_txn: object) -> None:  # keeps the committer busy until released
        inside.set()
        release.wait()

    async def cancelled_while_queued(call: Any) -> None:
        inside.clear()
        release.clear()
        holder = threading.Thread(target=committer.submit, args=(hold,))
        holder.start()
        try:
            await asyncio.to_thread(inside.wait)
            task = asyncio.ensure_future(call)
            await asyncio.sleep(0)  # one turn: the task runs up to its queued write
            assert committer.queued == 1
            task.cancel()
            await asyncio.sleep(0)
            assert not task.done()  # the cancel waits for the write
        finally:
            release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.to_thread(holder.join)

    async def main() -> None:
        await cancelled_while_queued(session.add_items(_items(USER, CALL)))
        assert await session.get_items() == [USER, CALL]
        await cancelled_while_queued(session.pop_item())
        assert await session.get_items() == [USER]

    try:
        asyncio.run(main())
    finally:
        store.sync.close()


def test_deleted_session_is_recreated_on_write() -> None:
    store = RunStore.in_memory()
    session = EventLogSession("d", store)

    async def main() -> None:
        await session.add_items(_items(USER))
        assert store.delete_session(session.store_session_id)
        assert await session.get_items() == []
        await session.add_items(_items(ANSWER))
        assert await session.get_items() == [ANSWER]

    asyncio.run(main())


# -- a real Agent with the SDK's ScriptedModel -----------------------------------------------
@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"18C in {city}"


NO_TRACING = RunConfig(tracing_disabled=True)


def _turns() -> ScriptedModel:
    return ScriptedModel(
        [
            [function_call("get_weather", {"city": "Paris"}, call_id="call_w1")],
            [assistant_message("It is 18C in Paris.", item_id="msg_a1")],
            [assistant_message("Yes, take a light jacket.", item_id="msg_a2")],
        ]
    )


def _texts(items: Any) -> list[str]:
    out = []
    for item in items:
        content = item.get("content")
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            out.extend(p.get("text", "") for p in content)
        elif item.get("type") == "function_call_output":
            out.append(str(item.get("output")))
        elif item.get("type") == "function_call":
            out.append(f"call {item['name']}")
    return out


def test_runner_run_two_turns_reads_history_back_from_the_store(tmp_path: Path) -> None:
    path = tmp_path / "s"
    model = _turns()
    agent = Agent(name="weather", instructions="Answer briefly.", model=model, tools=[get_weather])

    async def turn(text: str) -> str:
        async with await AsyncRunStore.open(path) as store:  # a fresh store object per turn
            session = EventLogSession("user-7", store)
            result = await Runner.run(agent, text, session=session, run_config=NO_TRACING)
            return str(result.final_output)

    assert asyncio.run(turn("Weather in Paris?")) == "It is 18C in Paris."
    assert asyncio.run(turn("Do I need a jacket?")) == "Yes, take a light jacket."
    model.assert_complete()
    first, second, third = model.calls
    assert _texts(first.input) == ["Weather in Paris?"]
    assert _texts(second.input) == ["Weather in Paris?", "call get_weather", "18C in Paris"]
    # the second turn's model input is the first turn's history, as read back from the store
    with RunStore.open(path) as store:
        history = asyncio.run(EventLogSession("user-7", store).get_items())
        assert _texts(third.input) == [
            "Weather in Paris?",
            "call get_weather",
            "18C in Paris",
            "It is 18C in Paris.",
            "Do I need a jacket?",
        ]
        assert third.input == history[: len(third.input)]
        assert _texts(history) == [*_texts(third.input), "Yes, take a light jacket."]
        messages = store.list_messages(EventLogSession("user-7", store).store_session_id)
        assert [type(m).__name__ for m in messages] == [
            "UserMessage",
            "AssistantMessage",
            "ToolMessage",
            "AssistantMessage",
            "UserMessage",
            "AssistantMessage",
        ]
        assert messages[2] == ToolMessage("call_w1", "get_weather", "18C in Paris")


def test_run_sync_and_run_streamed(tmp_path: Path) -> None:
    with RunStore.open(tmp_path / "s") as store:
        model = _turns()
        agent = Agent(name="weather", model=model, tools=[get_weather])
        session = EventLogSession("sync-and-stream", store)
        try:
            result = Runner.run_sync(
                agent, "Weather in Paris?", session=session, run_config=NO_TRACING
            )
        finally:
            _close_run_sync_loop()
        assert result.final_output == "It is 18C in Paris."

        async def streamed() -> tuple[str, list[str]]:
            run = Runner.run_streamed(agent, "Jacket?", session=session, run_config=NO_TRACING)
            kinds = [event.type async for event in _events(run)]
            return str(run.final_output), kinds

        final, kinds = asyncio.run(streamed())
        assert final == "Yes, take a light jacket."
        assert "raw_response_event" in kinds
        model.assert_complete()
        assert _texts(model.calls[2].input)[:4] == [
            "Weather in Paris?",
            "call get_weather",
            "18C in Paris",
            "It is 18C in Paris.",
        ]
        items = asyncio.run(session.get_items())
        assert _texts(items)[-2:] == ["Jacket?", "Yes, take a light jacket."]


def _close_run_sync_loop() -> None:
    """run_sync leaves the thread's default loop open on purpose (for loop-bound helpers)."""
    policy = asyncio.get_event_loop_policy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        loop = policy.get_event_loop()
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.close()
    policy.set_event_loop(None)


async def _events(run: Any) -> AsyncIterator[Any]:
    async for event in run.stream_events():
        yield event


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("add"), st.integers(1, 3)),
            st.tuples(st.just("pop"), st.just(0)),
            st.tuples(st.just("clear"), st.just(0)),
            st.tuples(st.just("get"), st.integers(-1, 6)),
            st.tuples(st.just("retract"), st.integers(0, 50)),
        ),
        max_size=40,
    )
)
def test_history_matches_a_list_model(ops: list[tuple[str, int]]) -> None:
    """Any mix of adds, pops, clears and retractions by another writer reads like a list."""
    store = RunStore.in_memory()
    session = EventLogSession("model", store)
    model: list[dict[str, Any]] = []
    counter = 0

    async def main() -> None:
        nonlocal counter
        for op, arg in ops:
            if op == "add":
                batch = [{"role": "user", "content": f"m{counter + k}"} for k in range(arg)]
                counter += arg
                await session.add_items(_items(*batch))
                model.extend(batch)
            elif op == "pop":
                assert await session.pop_item() == (model.pop() if model else None)
            elif op == "clear":
                await session.clear_session()
                model.clear()
            elif op == "get":
                want = None if arg < 0 else arg
                expected = model if want is None else model[-want:] if want else []
                assert await session.get_items(want) == expected
            elif model:  # another writer withdraws one entry (no newest_left hint)
                victim = model.pop(arg % len(model))
                (seq,) = [
                    r.seq
                    for r in store.read_stream(session.store_session_id)
                    if isinstance(r.event, MessageAppended) and r.event.source == victim
                ]
                store.append_to_stream(session.store_session_id, [MessageRetracted(seq)])
        assert await session.get_items() == model
        if store.get_session(session.store_session_id) is None:  # nothing was ever written
            assert model == []
            return
        assert [m.content for m in store.list_messages(session.store_session_id)] == [
            [TextPart(str(m["content"]))] for m in model
        ]

    asyncio.run(main())
