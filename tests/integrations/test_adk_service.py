"""EventLogSessionService against ADK's own InMemorySessionService: the same answers.

Every backend (memory, LMDB, PostgreSQL; sync and async facades) runs the same call scripts;
a hypothesis test draws random create / append (state deltas in every scope) / get / list /
delete sequences and compares each answer with ADK's in-memory reference.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from google.adk.errors import StaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.platform import time as platform_time
from google.adk.sessions import InMemorySessionService
from google.adk.sessions.base_session_service import BaseSessionService, GetSessionConfig
from google.adk.sessions.session import Session
from google.genai import types
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pg_support import url_for

from eventlog import AsyncRunStore, RunStore
from eventlog.errors import NestingTooDeepError
from eventlog.integrations.adk import EventLogSessionService
from projections.adk_sessions import SESSION_KIND

Factory = Callable[[Path], RunStore | AsyncRunStore]


@pytest.fixture(params=["memory", "lmdb", "async-lmdb", "postgresql", "async-postgresql"])
def make_store(request: pytest.FixtureRequest) -> Iterator[Factory]:
    opened: list[RunStore | AsyncRunStore] = []
    if "postgresql" in request.param:
        request.getfixturevalue("pg_schemas")

    def make(path: Path) -> RunStore | AsyncRunStore:
        kind = str(request.param)
        if kind == "memory":
            store: RunStore | AsyncRunStore = RunStore.in_memory()
        else:
            sync = RunStore.open(url_for(path) if "postgresql" in kind else path)
            store = AsyncRunStore(sync) if kind.startswith("async") else sync
        opened.append(store)
        return store

    yield make
    for store in opened:
        (store.sync if isinstance(store, AsyncRunStore) else store).close()


class Clock:
    """ADK's time provider for a test: each call a second later, or the time set."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0
        self.fixed = False

    def __call__(self) -> float:
        if not self.fixed:
            self.now += 1.0
        return self.now


def run(coro: Any, clock: Clock | None = None) -> Any:
    """Run one script under a deterministic clock (``clock``, or a fresh one)."""

    async def main() -> Any:
        platform_time.set_time_provider(clock or Clock())
        return await coro

    return asyncio.run(main())


def dump(session: Session | None) -> Any:
    if session is None:
        return None
    return (
        session.app_name,
        session.user_id,
        session.id,
        session.state,
        [e.model_dump(mode="json", exclude_none=True) for e in session.events],
        session.last_update_time,
    )


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"x": value}
    return value


def event(n: int, delta: dict[str, Any], text: str = "hi") -> Event:
    return Event(
        id=f"e{n}",
        invocation_id=f"inv{n}",
        author="user",
        timestamp=1_800_000_000.0 + n,
        content=types.Content(role="user", parts=[types.Part(text=text)]),
        actions=EventActions(state_delta=delta),
    )


def test_create_get_append_list_delete(tmp_path: Path, make_store: Factory) -> None:
    ours = EventLogSessionService(make_store(tmp_path / "s"))

    async def script(svc: BaseSessionService) -> list[Any]:
        out: list[Any] = []
        s = await svc.create_session(
            app_name="app", user_id="u1", session_id="s1", state={"a": 1, "app:x": 1, "user:y": 2}
        )
        out.append(dump(s))
        ev = event(1, {"a": 2, "app:x": 3, "user:z": [1, 2], "temp:t": "gone"})
        stored = await svc.append_event(s, ev)
        out.append((stored.actions.state_delta, dump(s)))
        await svc.create_session(app_name="app", user_id="u2", session_id="s2")
        for cfg in (
            None,
            GetSessionConfig(num_recent_events=0),
            GetSessionConfig(num_recent_events=1),
        ):
            out.append(
                dump(
                    await svc.get_session(app_name="app", user_id="u1", session_id="s1", config=cfg)
                )
            )
        for user in ("u1", "u2", None, "nobody"):
            out.append(
                [dump(x) for x in (await svc.list_sessions(app_name="app", user_id=user)).sessions]
            )
        out.append(await svc.get_user_state(app_name="app", user_id="u1"))
        await svc.delete_session(app_name="app", user_id="u1", session_id="s1")
        await svc.delete_session(app_name="app", user_id="u1", session_id="s1")
        out.append(dump(await svc.get_session(app_name="app", user_id="u1", session_id="s1")))
        s3 = await svc.create_session(app_name="app", user_id="u1", session_id="s1")
        out.append(dump(s3))  # the shared state outlived the deleted session
        return out

    assert run(script(ours)) == run(script(InMemorySessionService()))


def test_errors_are_adks(tmp_path: Path, make_store: Factory) -> None:
    store = make_store(tmp_path / "s")
    svc = EventLogSessionService(store)

    async def script() -> None:
        s = await svc.create_session(app_name="app", user_id="u", session_id="s")
        with pytest.raises(AlreadyExistsError, match="Session with id s already exists"):
            await svc.create_session(app_name="app", user_id="u", session_id="s")
        copy = await svc.get_session(app_name="app", user_id="u", session_id="s")
        assert copy is not None
        await svc.append_event(s, event(1, {"k": 1}))
        with pytest.raises(StaleSessionError, match="reload the session"):
            await svc.append_event(copy, event(2, {"k": 2}))
        again = await svc.get_session(app_name="app", user_id="u", session_id="s")
        assert again is not None
        assert again.state == {"k": 1}
        assert len(again.events) == 1
        for depth in (150, 2000):  # past our limit; past pydantic's serializer too
            with pytest.raises(NestingTooDeepError, match="append_event"):
                await svc.append_event(again, event(4, {"user:k": nested(depth)}))
        assert await svc.get_user_state(app_name="app", user_id="u") == {}
        await svc.delete_session(app_name="app", user_id="u", session_id="s")
        with pytest.raises(SessionNotFoundError, match="Session s not found"):
            await svc.append_event(again, event(3, {"k": 3}))
        with pytest.raises(ValueError, match="NUL"):
            await svc.create_session(app_name="a\x00b", user_id="u")
        with pytest.raises(ValueError, match="at most 128"):
            await svc.create_session(app_name="app", user_id="u" * 200)
        for depth in (150, 2000):  # past our limit; past pydantic's serializer too
            with pytest.raises(NestingTooDeepError, match="create_session"):
                await svc.create_session(app_name="app", user_id="u", state={"k": nested(depth)})
        with pytest.raises(TypeError, match="must be a str"):
            await svc.get_session(app_name="app", user_id=3, session_id="s")  # type: ignore[arg-type]

    run(script())
    sync = store.sync if isinstance(store, AsyncRunStore) else store
    assert sync.list_streams(SESSION_KIND) == []  # nothing of the refused calls was written


def test_hostile_content_stays_data(tmp_path: Path, make_store: Factory) -> None:
    svc = EventLogSessionService(make_store(tmp_path / "s"))
    hostile = "\x1b]0;pwned\x07<script>alert(1)</script>\u202e\x00 {{ }}"

    async def script() -> Session | None:
        s = await svc.create_session(app_name="app", user_id="u", state={"t": hostile})
        await svc.append_event(s, event(1, {hostile: hostile}, text=hostile))
        return await svc.get_session(app_name="app", user_id="u", session_id=s.id)

    got = run(script())
    assert got is not None
    assert got.state == {"t": hostile, hostile: hostile}
    part = got.events[0].content.parts[0]
    assert part.text == hostile


def test_reopened_lmdb_store_keeps_everything(tmp_path: Path) -> None:
    async def first() -> str:
        with RunStore.open(tmp_path / "db") as store:
            svc = EventLogSessionService(store)
            s = await svc.create_session(app_name="app", user_id="u", state={"user:n": 1})
            await svc.append_event(s, event(1, {"app:v": "x", "k": "v"}))
            return s.id

    sid = run(first())

    async def second() -> Session | None:
        with RunStore.open(tmp_path / "db") as store:
            assert store.verify() == []  # the adk view agrees with a replay of the log
            svc = EventLogSessionService(store)
            return await svc.get_session(app_name="app", user_id="u", session_id=sid)

    got = run(second())
    assert got is not None
    assert got.state == {"k": "v", "app:v": "x", "user:n": 1}
    assert [e.id for e in got.events] == ["e1"]


# -- random call scripts, compared with ADK's in-memory service ----------------------------
APPS = st.sampled_from(["a1", "a2"])
USERS = st.sampled_from(["u1", "u2"])
SIDS = st.sampled_from(["s1", "s2", "s3"])
KEYS = st.sampled_from(["k", "app:k", "user:k", "temp:k", "app:j", "user:j", "j"])
VALUES = st.none() | st.integers(-3, 3) | st.text(max_size=3) | st.lists(st.booleans(), max_size=2)
STATES = st.dictionaries(KEYS, VALUES, max_size=4)
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("create"), APPS, USERS, SIDS, STATES),
        st.tuples(st.just("append"), APPS, USERS, SIDS, STATES),
        st.tuples(
            st.just("get"),
            APPS,
            USERS,
            SIDS,
            st.sampled_from([None, 0, 1, 3]),
            st.sampled_from([None, 1_800_000_002.0]),
        ),
        st.tuples(st.just("list"), APPS, st.sampled_from(["u1", "u2", None])),
        st.tuples(st.just("delete"), APPS, USERS, SIDS),
        st.tuples(st.just("user_state"), APPS, USERS),
    ),
    max_size=25,
)


async def play(svc: BaseSessionService, ops: list[tuple[Any, ...]], clock: Clock) -> list[Any]:
    """The answers of ``svc`` to ``ops``; each op at its own time, however many reads it makes."""
    out: list[Any] = []
    numbers = itertools.count()
    clock.fixed = True
    for n, op in enumerate(ops):
        clock.now = 1_700_000_000.0 + n
        name = op[0]
        try:
            if name == "create":
                s = await svc.create_session(
                    app_name=op[1], user_id=op[2], session_id=op[3], state=op[4]
                )
                out.append(dump(s))
            elif name == "append":
                have = await svc.get_session(app_name=op[1], user_id=op[2], session_id=op[3])
                if have is None:
                    out.append("missing")
                    continue
                stored = await svc.append_event(have, event(next(numbers), dict(op[4])))
                out.append((stored.actions.state_delta, dump(have)))
            elif name == "get":
                config = GetSessionConfig(num_recent_events=op[4], after_timestamp=op[5])
                got = await svc.get_session(
                    app_name=op[1], user_id=op[2], session_id=op[3], config=config
                )
                out.append(dump(got))
            elif name == "list":
                listed = await svc.list_sessions(app_name=op[1], user_id=op[2])
                out.append([dump(x) for x in listed.sessions])
            elif name == "delete":
                await svc.delete_session(app_name=op[1], user_id=op[2], session_id=op[3])
                out.append("deleted")
            else:
                out.append(await svc.get_user_state(app_name=op[1], user_id=op[2]))
        except AlreadyExistsError as exc:
            out.append(("AlreadyExistsError", str(exc)))
    return out


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=OPS)
def test_same_answers_as_in_memory_service(ops: list[tuple[Any, ...]]) -> None:
    store = RunStore.in_memory()
    try:
        clock = Clock()
        ours = run(play(EventLogSessionService(store), ops, clock), clock)
    finally:
        store.close()
    clock = Clock()
    assert ours == run(play(InMemorySessionService(), ops, clock), clock)


def test_export_import_carries_sessions_and_shared_state() -> None:
    source, target = RunStore.in_memory(), RunStore.in_memory()

    async def write() -> None:
        svc = EventLogSessionService(source)
        s = await svc.create_session(
            app_name="app", user_id="u", session_id="s", state={"app:v": 1}
        )
        await svc.append_event(s, event(1, {"k": 1, "user:z": 2}))

    run(write())
    summary = target.import_jsonl(list(source.export_jsonl()))
    assert (summary.events, summary.streams) == (4, 3)  # a session, an app, a user stream
    got = run(
        EventLogSessionService(target).get_session(app_name="app", user_id="u", session_id="s")
    )
    assert got is not None
    assert got.state == {"k": 1, "app:v": 1, "user:z": 2}
    assert [e.id for e in got.events] == ["e1"]
    assert target.verify() == []
