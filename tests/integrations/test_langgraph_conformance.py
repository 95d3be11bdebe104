"""LangGraph's own checkpointer conformance suite against EventLogSaver.

Every capability (the base five and delete_for_runs, copy_thread, prune), through the async
methods and - with :class:`SyncMethods`, a test-only wrapper that serves the suite's async
calls from the saver's sync methods - through the sync ones, on LMDB, in memory and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES
from langgraph.checkpoint.conformance.initializer import RegisteredCheckpointer
from pg_support import url_for

from eventlog import AsyncRunStore, RunStore
from eventlog.integrations.langgraph import EventLogSaver


class SyncMethods(BaseCheckpointSaver[str]):
    """Test-only: the suite calls a*-methods; these call the wrapped saver's sync methods."""

    def __init__(self, inner: EventLogSaver) -> None:
        super().__init__(serde=inner.serde)
        self.inner = inner

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self.inner.get_tuple(config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        for item in self.inner.list(config, filter=filter, before=before, limit=limit):
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return self.inner.put(config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        self.inner.put_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        self.inner.delete_thread(thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        self.inner.delete_for_runs(run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self.inner.copy_thread(source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self.inner.prune(thread_ids, strategy=strategy)

    def get_next_version(self, current: str | None, channel: None) -> str:
        return self.inner.get_next_version(current, channel)


def _lmdb_async() -> RegisteredCheckpointer:
    @checkpointer_test(name="EventLogSaver/lmdb/async")
    async def factory() -> AsyncIterator[BaseCheckpointSaver[str]]:
        with tempfile.TemporaryDirectory() as tmp:
            store = await AsyncRunStore.open(f"{tmp}/store")
            yield EventLogSaver(store)
            await store.close()

    return factory


def _lmdb_sync() -> RegisteredCheckpointer:
    @checkpointer_test(name="EventLogSaver/lmdb/sync")
    async def factory() -> AsyncIterator[BaseCheckpointSaver[str]]:
        with tempfile.TemporaryDirectory() as tmp:
            store = RunStore.open(f"{tmp}/store")
            yield SyncMethods(EventLogSaver(store))
            store.close()

    return factory


def _memory_async() -> RegisteredCheckpointer:
    @checkpointer_test(name="EventLogSaver/memory/async")
    async def factory() -> AsyncIterator[BaseCheckpointSaver[str]]:
        store = AsyncRunStore.in_memory()
        yield EventLogSaver(store)
        await store.close()

    return factory


def _memory_sync() -> RegisteredCheckpointer:
    @checkpointer_test(name="EventLogSaver/memory/sync")
    async def factory() -> AsyncIterator[BaseCheckpointSaver[str]]:
        store = RunStore.in_memory()
        yield SyncMethods(EventLogSaver(store))
        store.close()

    return factory


def _postgres_async() -> RegisteredCheckpointer:
    @checkpointer_test(name="EventLogSaver/postgresql/async")
    async def factory() -> AsyncIterator[BaseCheckpointSaver[str]]:
        with tempfile.TemporaryDirectory() as tmp:  # a schema of its own per saver
            store = await AsyncRunStore.open(url_for(tmp))
            yield EventLogSaver(store)
            await store.close()

    return factory


def _postgres_sync() -> RegisteredCheckpointer:
    @checkpointer_test(name="EventLogSaver/postgresql/sync")
    async def factory() -> AsyncIterator[BaseCheckpointSaver[str]]:
        with tempfile.TemporaryDirectory() as tmp:
            store = RunStore.open(url_for(tmp))
            yield SyncMethods(EventLogSaver(store))
            store.close()

    return factory


FACTORIES: dict[str, Callable[[], RegisteredCheckpointer]] = {
    "lmdb-async": _lmdb_async,
    "lmdb-sync": _lmdb_sync,
    "memory-async": _memory_async,
    "memory-sync": _memory_sync,
}


PG_FACTORIES: dict[str, Callable[[], RegisteredCheckpointer]] = {
    "postgresql-async": _postgres_async,
    "postgresql-sync": _postgres_sync,
}


@pytest.mark.parametrize("variant", sorted(FACTORIES))
def test_conformance_every_capability(variant: str) -> None:
    _validate(FACTORIES[variant])


@pytest.mark.usefixtures("pg_schemas")
@pytest.mark.parametrize("variant", sorted(PG_FACTORIES))
def test_conformance_every_capability_on_postgresql(variant: str) -> None:
    _validate(PG_FACTORIES[variant])


def _validate(factory: Callable[[], RegisteredCheckpointer]) -> None:
    report = asyncio.run(validate(factory()))
    assert report.passed_all_base(), report.results
    detected = {name for name, result in report.results.items() if result.detected}
    assert detected == {c.value for c in ALL_CAPABILITIES}, report.results
    failures = {n: r.failures for n, r in report.results.items() if not r.passed}
    assert failures == {}
    counted = sum(r.tests_passed for r in report.results.values())
    assert counted >= 70, f"only {counted} conformance tests ran"


def test_sync_wrapper_covers_every_capability() -> None:
    # the wrapper must not fall back to BaseCheckpointSaver's defaults for any capability
    from langgraph.checkpoint.conformance.capabilities import DetectedCapabilities

    store = RunStore.in_memory()
    try:
        detected = DetectedCapabilities.from_instance(SyncMethods(EventLogSaver(store)))
        assert detected.missing == frozenset()
    finally:
        store.close()
