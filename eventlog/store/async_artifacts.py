"""``AsyncRunStore.artifacts``: :class:`~eventlog.store.artifacts.Artifacts` with awaitables."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from typing import BinaryIO, Protocol, TypeVar
from uuid import UUID

from eventlog.model.artifacts import ArtifactRecord
from eventlog.storage.blobs import BlobSource, Staged
from eventlog.storage.kv import KVTxn
from eventlog.store.artifacts import Artifacts, with_artifacts
from eventlog.store.plans.artifacts import ArtifactArgs, Versions
from eventlog.tools.verify import Problem

__all__ = ["AsyncArtifacts", "Commit"]

T = TypeVar("T")


class Commit(Protocol):
    """The async facade's commit: queue a write plan and await its result."""

    def __call__(self, plan: Callable[[KVTxn], T]) -> Awaitable[T]:
        """Commit ``plan`` through the group committer."""
        ...


class AsyncArtifacts:
    """``AsyncRunStore.artifacts``: :class:`Artifacts` with awaitable methods.

    The blocking parts (streaming a file in, hashing, reading a blob) run in a thread; the
    record is committed through the store's group committer like every write.
    """

    def __init__(
        self,
        sync: Artifacts,
        commit: Commit,
    ) -> None:
        self._sync = sync
        self._commit = commit

    async def put(
        self,
        session_id: UUID | str,
        name: str,
        data: BlobSource,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, object] | None = None,
        run_id: UUID | str | None = None,
    ) -> ArtifactRecord:
        """See :meth:`Artifacts.put`."""
        plans = self._sync.plans
        args = ArtifactArgs(session_id, name, content_type, metadata, run_id)
        await asyncio.to_thread(plans.backend.read, plans.check_session(args.session_id))
        staged: Staged = await asyncio.to_thread(plans.stage, args, data)
        try:
            return await self._commit(plans.put(args, staged))
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self._sync.collect, [staged.sha256])
            raise
        finally:
            staged.discard()

    async def get(self, artifact_id: UUID | str) -> ArtifactRecord | None:
        """See :meth:`Artifacts.get`."""
        return await asyncio.to_thread(self._sync.get, artifact_id)

    async def read(self, artifact_id: UUID | str) -> bytes:
        """See :meth:`Artifacts.read` (read in a thread)."""
        return await asyncio.to_thread(self._sync.read, artifact_id)

    async def open(self, artifact_id: UUID | str) -> BinaryIO:
        """See :meth:`Artifacts.open`: a (blocking) binary file object; read it in a thread."""
        return await asyncio.to_thread(self._sync.open, artifact_id)

    async def list_by_session(
        self, session_id: UUID | str, *, versions: Versions = "all"
    ) -> list[ArtifactRecord]:
        """See :meth:`Artifacts.list_by_session`."""
        return await asyncio.to_thread(self._sync.list_by_session, session_id, versions=versions)

    async def delete(self, artifact_id: UUID | str) -> bool:
        """See :meth:`Artifacts.delete`."""
        sha = await self._commit(self._sync.plans.delete(artifact_id))
        if sha is not None:
            await asyncio.to_thread(self._sync.collect, [sha])
        return sha is not None

    async def delete_session(
        self, session_id: UUID | str, session_plan: Callable[[KVTxn], bool]
    ) -> bool:
        """See :meth:`Artifacts.delete_session`."""
        plan = with_artifacts(self._sync.plans, session_id, session_plan)
        deleted, shas = await self._commit(plan)
        if shas:
            await asyncio.to_thread(self._sync.collect, shas)
        return deleted

    async def verify(self) -> list[Problem]:
        """See :meth:`Artifacts.verify`."""
        return await asyncio.to_thread(self._sync.verify)
