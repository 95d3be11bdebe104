"""``store.artifacts``: files of a session, event-sourced, content-addressed and deduplicated.

:class:`Artifacts` (on :class:`~eventlog.store.run_store.RunStore`) and
:class:`AsyncArtifacts` (on :class:`~eventlog.store.async_run_store.AsyncRunStore`) run the
same plans (:mod:`eventlog.store.plans.artifacts`); the async one is in
:mod:`eventlog.store.async_artifacts` (so that sync use never imports asyncio).

>>> from eventlog import RunStore
>>> store = RunStore.in_memory()
>>> sid = store.create_session().id
>>> art = store.artifacts.put(sid, "notes.txt", b"hello", content_type="text/plain")
>>> art.size, art.sha256[:12]
(5, '2cf24dba5fb0')
>>> store.artifacts.read(art.id)
b'hello'
>>> v2 = store.artifacts.put(sid, "notes.txt", b"hello again")
>>> [a.size for a in store.artifacts.list_by_session(sid)]  # every version, newest first
[11, 5]
>>> [a.size for a in store.artifacts.list_by_session(sid, versions="latest")]
[11]
>>> store.artifacts.delete(art.id), store.artifacts.get(art.id)
(True, None)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import BinaryIO
from uuid import UUID

from eventlog.errors import ArtifactNotFound
from eventlog.model.artifacts import ArtifactRecord
from eventlog.model.validation import uuid_of
from eventlog.storage.blobs import BlobSource, open_binary
from eventlog.storage.kv import KVTxn
from eventlog.store.core import StoreCore
from eventlog.store.plans.artifacts import ArtifactArgs, ArtifactPlans, Versions
from eventlog.tools.verify import Problem

__all__ = ["Artifacts", "with_artifacts"]


class Artifacts:
    """The artifact store of a :class:`~eventlog.store.run_store.RunStore` (``store.artifacts``).

    On LMDB each blob is a file beside the store (``<store>/blobs/sha256/ab/<sha256>``),
    fsynced before the event naming it commits; on PostgreSQL and in memory the blob is in
    the store's ``blobs`` table, written in the same transaction as its event. Names are
    data, never paths.
    """

    def __init__(self, core: StoreCore, max_bytes: int) -> None:
        #: the shared plans (the async facade runs the same ones)
        self.plans = ArtifactPlans(core.backend, core.engine, max_bytes)
        self._write = core.committer.submit
        self._read = core.backend.read
        files = self.plans.files
        if not core.backend.readonly and files is not None and files.root.is_dir():
            self._write(self.plans.sweep())  # what a crash left behind

    def put(
        self,
        session_id: UUID | str,
        name: str,
        data: BlobSource,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, object] | None = None,
        run_id: UUID | str | None = None,
    ) -> ArtifactRecord:
        """Store ``data`` (bytes, or a binary file object read in 1 MiB chunks) as ``name``.

        Returns the new record (a new id each time: putting the same name again keeps both
        versions; the same content is stored once). ``SessionNotFound``/``RunNotFound`` for
        an unknown session or run, ``InvalidArtifactName`` for an empty name or one with
        control characters, ``ArtifactTooLargeError`` past ``max_artifact_bytes``: nothing is
        written.
        """
        args = ArtifactArgs(session_id, name, content_type, metadata, run_id)
        self._read(self.plans.check_session(args.session_id))  # fail before any I/O
        staged = self.plans.stage(args, data)
        try:
            return self._write(self.plans.put(args, staged))
        except BaseException:
            self.collect([staged.sha256])
            raise
        finally:
            staged.discard()

    def get(self, artifact_id: UUID | str) -> ArtifactRecord | None:
        """The artifact's record, or None."""
        return self._read(self.plans.get(artifact_id))

    def _record(self, artifact_id: UUID | str) -> ArtifactRecord:
        art = self.get(artifact_id)
        if art is None:
            raise ArtifactNotFound(uuid_of(artifact_id, "artifact_id"))
        return art

    def open(self, artifact_id: UUID | str) -> BinaryIO:
        """A binary file object over the content (checked against its SHA-256 at the end).

        ``ArtifactNotFound`` for an unknown id; reading to the end of damaged content raises
        ``CorruptRecordError`` naming the artifact.
        """
        return open_binary(self.plans.reader_of(self._record(artifact_id)))

    def read(self, artifact_id: UUID | str) -> bytes:
        """The whole content (``CorruptRecordError`` if it does not hash to its record)."""
        return self.plans.read_all(self._record(artifact_id))

    def list_by_session(
        self, session_id: UUID | str, *, versions: Versions = "all"
    ) -> list[ArtifactRecord]:
        """The session's artifacts, newest first.

        Every version (default), or with ``versions="latest"`` the newest version of each
        name. ``SessionNotFound`` for an unknown session.
        """
        return self._read(self.plans.list_by_session(session_id, versions))

    def delete(self, artifact_id: UUID | str) -> bool:
        """Delete the artifact (True if it existed); its blob goes when no record uses it."""
        sha = self._write(self.plans.delete(artifact_id))
        if sha is not None:
            self.collect([sha])
        return sha is not None

    def collect(self, shas: list[str]) -> None:
        """Remove the blobs among ``shas`` that no record refers to (LMDB; under the lock)."""
        if self.plans.files is not None:
            self._write(self.plans.collect(shas))

    def delete_session(self, session_id: UUID | str, session_plan: Callable[[KVTxn], bool]) -> bool:
        """Run ``delete_session``'s plan with the session's artifacts, in one transaction."""
        deleted, shas = self._write(with_artifacts(self.plans, session_id, session_plan))
        if shas:
            self.collect(shas)
        return deleted

    def totals(self) -> tuple[int, int]:
        """How many artifacts the store holds and their total size in bytes."""
        return self._read(self.plans.totals())

    def verify(self) -> list[Problem]:
        """Missing or corrupt blobs (reads every blob); ``[]`` when all are whole."""
        return self.plans.verify()


def with_artifacts(
    plans: ArtifactPlans, session_id: UUID | str, session_plan: Callable[[KVTxn], bool]
) -> Callable[[KVTxn], tuple[bool, list[str]]]:
    """``delete_session``'s plan preceded by the deletion of the session's artifacts."""
    artifacts = plans.delete_session(session_id)

    def work(txn: KVTxn) -> tuple[bool, list[str]]:
        shas = artifacts(txn)
        return session_plan(txn), shas

    return work
