"""The async API passes the same contract suite as the sync API, through a blocking adapter.

Each contract call runs the matching ``AsyncRunStore`` coroutine on an event loop in a
background thread (so the async write path - validation in the task, group commit off the
loop - is what the suite exercises). Attributes the async store does not have come from the
underlying sync store.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import pytest
from pg_support import url_for

from eventlog import AsyncRunStore, RunStore
from eventlog.testing import StoreContract


class _Loop:
    """One event loop in a background thread, shared by every adapter of this module."""

    loop: asyncio.AbstractEventLoop | None = None
    thread: threading.Thread | None = None

    @classmethod
    def get(cls) -> asyncio.AbstractEventLoop:
        if cls.loop is None:
            cls.loop = asyncio.new_event_loop()
            cls.thread = threading.Thread(target=cls.loop.run_forever, daemon=True)
            cls.thread.start()
        return cls.loop

    @classmethod
    def stop(cls) -> None:
        loop, thread, cls.loop, cls.thread = cls.loop, cls.thread, None, None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)
            loop.close()


@pytest.fixture(scope="module", autouse=True)
def _event_loop_thread() -> Iterator[None]:
    yield
    _Loop.stop()


class _BlockingQuery:
    """A projector's query object from ``AsyncRunStore.projection``, seen through blocking calls.

    On a remote store its methods are coroutines (run off the event loop): this runs them.
    """

    def __init__(self, query: Any, call: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
        self._query = query
        self._run = call

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._query, name)
        if not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            result = value(*args, **kwargs)
            return self._run(result) if inspect.iscoroutine(result) else result

        return call


class _Blocking:
    """``AsyncRunStore`` seen through blocking calls (the contract's interface)."""

    def __init__(self, make: Callable[[], Coroutine[Any, Any, AsyncRunStore]]) -> None:
        self._loop = _Loop.get()
        self._async = self._call(make())

    def _call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=120)

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._async, name, None)
        if target is None:
            return getattr(self._async.sync, name)
        if inspect.iscoroutinefunction(target):
            return lambda *args, **kwargs: self._call(target(*args, **kwargs))
        if name == "projection":
            return lambda *args, **kwargs: _BlockingQuery(target(*args, **kwargs), self._call)
        return target

    def close(self) -> None:
        self._call(self._async.close())

    def __enter__(self) -> _Blocking:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


async def _memory(**options: Any) -> AsyncRunStore:
    return AsyncRunStore.in_memory(**options)


class TestAsyncMemoryStore(StoreContract):
    persistent = False

    def make_store(self, path: Path, **options: Any) -> RunStore:
        return cast(RunStore, _Blocking(lambda: _memory(**options)))


class TestAsyncLmdbStore(StoreContract):
    def make_store(self, path: Path, **options: Any) -> RunStore:
        return cast(RunStore, _Blocking(lambda: AsyncRunStore.open(path, **options)))


def test_the_adapter_runs_the_async_methods() -> None:
    # guard against the suite silently testing the sync store: every public RunStore method
    # has an async twin, and writes go through the async path
    public = {n for n in dir(RunStore) if not n.startswith("_")}
    missing = {n for n in public if not hasattr(AsyncRunStore, n)} - {"in_memory", "open"}
    assert missing == set()
    for name in ("append_event", "append_events", "append_many", "create_run", "list_events"):
        assert inspect.iscoroutinefunction(getattr(AsyncRunStore, name)), name


@pytest.mark.usefixtures("pg_schemas")
class TestAsyncPostgresStore(StoreContract):
    def make_store(self, path: Path, **options: Any) -> RunStore:
        return cast(RunStore, _Blocking(lambda: AsyncRunStore.open(url_for(path), **options)))
