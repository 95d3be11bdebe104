"""Plans of the artifact operations, shared by ``store.artifacts`` of both facades.

A put is two steps: :meth:`ArtifactPlans.stage` streams the data (hashing it) into the blob
store - on LMDB a file fsynced beside the store, elsewhere a spool - and
:meth:`ArtifactPlans.put` is the write plan that records it: the blob checked (or written,
on memory and PostgreSQL) and an :class:`~eventlog.model.artifacts.ArtifactPut` appended to
the session's artifact stream, in one transaction. Deletes append an
:class:`~eventlog.model.artifacts.ArtifactDeleted`; a blob no record refers to any more is
removed in the delete's transaction (memory, PostgreSQL) or by :meth:`ArtifactPlans.collect`
right after it and by :meth:`ArtifactPlans.sweep` on open (LMDB), both under the writer lock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Literal
from uuid import UUID, uuid4

from eventlog.engine.appends import AppendRequest
from eventlog.engine.core import Engine
from eventlog.engine.projectors import reader
from eventlog.errors import ArtifactNotFound, CorruptRecordError, RunNotFound, SessionNotFound
from eventlog.model.artifacts import (
    ARTIFACT_KIND,
    ArtifactDeleted,
    ArtifactPut,
    ArtifactRecord,
    artifact_stream_id,
    check_artifact_name,
)
from eventlog.model.validation import metadata, uuid_of
from eventlog.storage.blobs import (
    CHUNK,
    BlobSource,
    FileBlobs,
    KVBlobs,
    Staged,
    VerifyingReader,
    blob_chunks,
    check_content,
    chunks_of,
    file_blobs_of,
)
from eventlog.storage.kv import KVBackend, KVTxn
from eventlog.tools.verify import Problem
from projections.artifacts import ArtifactIndex

__all__ = ["ArtifactArgs", "ArtifactPlans", "Versions"]

#: ``list_by_session``'s choice: every version (default) or the newest per name.
Versions = Literal["all", "latest"]


class ArtifactArgs:
    """A put's checked arguments."""

    def __init__(
        self,
        session_id: UUID | str,
        name: str,
        content_type: str | None,
        meta: Mapping[str, object] | None,
        run_id: UUID | str | None,
    ) -> None:
        self.session_id = uuid_of(session_id, "session_id")
        self.name = check_artifact_name(name)
        if content_type is not None and not isinstance(content_type, str):
            raise TypeError(f"content_type must be a str or None, got {content_type!r:.80}")
        self.content_type = content_type
        self.metadata = metadata(meta, "metadata")
        self.run_id = None if run_id is None else uuid_of(run_id, "run_id")


def _index(txn: KVTxn) -> ArtifactIndex:
    return ArtifactIndex(reader(txn, "artifacts"))


class ArtifactPlans:
    """Each artifact operation's checks and its work inside one transaction."""

    def __init__(self, backend: KVBackend, engine: Engine, max_bytes: int) -> None:
        self.backend = backend
        self.engine = engine
        self.max_bytes = max_bytes
        #: LMDB: files beside the store; memory and PostgreSQL: the ``blobs`` table
        self.files: FileBlobs | None = file_blobs_of(backend.path)
        self.kv = KVBlobs()

    # -- put --------------------------------------------------------------------------------
    def stage(self, args: ArtifactArgs, data: BlobSource) -> Staged:
        """Stream ``data`` into the blob store (hashing it); nothing is recorded yet."""
        chunks = chunks_of(data, args.name, self.max_bytes)
        return self.files.stage(chunks) if self.files is not None else self.kv.stage(chunks)

    def check_session(self, session_id: UUID) -> Callable[[KVTxn], None]:
        """Read plan: ``SessionNotFound`` unless the session exists (before any blob I/O)."""
        records = self.engine.records

        def work(txn: KVTxn) -> None:
            if records.get_session(txn, session_id) is None:
                raise SessionNotFound(session_id)

        return work

    def put(self, args: ArtifactArgs, staged: Staged) -> Callable[[KVTxn], ArtifactRecord]:
        """The write plan that records a staged blob as an artifact."""
        engine, files, kv = self.engine, self.files, self.kv
        sid = args.session_id
        stream = artifact_stream_id(sid)
        record = ArtifactRecord(
            uuid4(),
            sid,
            args.run_id,
            args.name,
            staged.size,
            staged.sha256,
            args.content_type,
            args.metadata,
            datetime.now(UTC),
        )

        def work(txn: KVTxn) -> ArtifactRecord:
            if engine.records.get_session(txn, sid) is None:
                raise SessionNotFound(sid)
            if args.run_id is not None:
                run = engine.records.get_run(txn, args.run_id)
                if run is None:
                    raise RunNotFound(args.run_id)
                if run.session_id != sid:
                    raise ValueError(
                        f"run {args.run_id} belongs to session {run.session_id}, not {sid}: "
                        "put the artifact in the run's session"
                    )
            if files is not None:
                files.publish(staged)  # under the writer lock: a collection cannot interleave
            else:
                kv.write(txn, staged)
            new = txn.get("streams", stream.bytes) is None
            req = AppendRequest(
                stream,
                (ArtifactPut(record),),
                0 if new else None,
                (record.id,),
                kind=ARTIFACT_KIND,
                metadata={"session_id": str(sid)},
            )
            engine.appends.append(txn, req, record.created_at, kind="session_or_stream")
            return record

        return work

    # -- delete and collection ------------------------------------------------------------
    def delete(self, artifact_id: UUID | str) -> Callable[[KVTxn], str | None]:
        """The write plan of ``delete``: the deleted blob's digest, or None (no such artifact)."""
        aid = uuid_of(artifact_id, "artifact_id")
        engine = self.engine

        def work(txn: KVTxn) -> str | None:
            art = _index(txn).get(aid)
            if art is None:
                return None
            req = AppendRequest(
                artifact_stream_id(art.session_id), (ArtifactDeleted(aid, art.sha256),)
            )
            engine.appends.append(txn, req, datetime.now(UTC), kind="session_or_stream")
            self._drop_unreferenced(txn, [art.sha256])
            return art.sha256

        return work

    def delete_session(self, session_id: UUID | str) -> Callable[[KVTxn], list[str]]:
        """Work for ``delete_session``: the session's artifact stream and its blobs' digests."""
        sid = uuid_of(session_id, "session_id")
        streams = self.engine.streams

        def work(txn: KVTxn) -> list[str]:
            stream = artifact_stream_id(sid)
            if txn.get("streams", stream.bytes) is None:
                return []
            shas = sorted({a.sha256 for a in _index(txn).by_session(sid, "all")})
            streams.delete_stream(txn, stream)
            self._drop_unreferenced(txn, shas)
            return shas

        return work

    def _drop_unreferenced(self, txn: KVTxn, shas: list[str]) -> None:
        if self.files is not None:
            return  # files: collect() after the commit, under the writer lock
        index = _index(txn)
        for sha in shas:
            if not index.referenced(sha):
                self.kv.remove(txn, sha)

    def collect(self, shas: list[str]) -> Callable[[KVTxn], int]:
        """Write plan (LMDB): remove the blobs among ``shas`` that nothing refers to."""
        files = self.files

        def work(txn: KVTxn) -> int:
            if files is None:
                return 0
            index = _index(txn)
            gone = [sha for sha in shas if not index.referenced(sha)]
            for sha in gone:
                files.remove(sha)
            return len(gone)

        return work

    def sweep(self) -> Callable[[KVTxn], int]:
        """Write plan (LMDB): remove every unreferenced blob and dead processes' temp files."""
        files = self.files

        def work(txn: KVTxn) -> int:
            return 0 if files is None else files.sweep(_index(txn).referenced)

        return work

    # -- reads ----------------------------------------------------------------------------
    def get(self, artifact_id: UUID | str) -> Callable[[KVTxn], ArtifactRecord | None]:
        """Read plan of ``get``."""
        aid = uuid_of(artifact_id, "artifact_id")
        return lambda txn: _index(txn).get(aid)

    def list_by_session(
        self, session_id: UUID | str, versions: Versions
    ) -> Callable[[KVTxn], list[ArtifactRecord]]:
        """Read plan of ``list_by_session`` (``SessionNotFound`` for an unknown session)."""
        sid = uuid_of(session_id, "session_id")
        if versions not in ("all", "latest"):
            raise ValueError(f"versions must be 'all' or 'latest', got {versions!r}")
        engine = self.engine

        def work(txn: KVTxn) -> list[ArtifactRecord]:
            if engine.records.get_session(txn, sid) is None:
                raise SessionNotFound(sid)
            return list(_index(txn).by_session(sid, versions))

        return work

    def totals(self) -> Callable[[KVTxn], tuple[int, int]]:
        """Read plan: how many artifacts and their total bytes."""
        return lambda txn: _index(txn).totals()

    def reader_of(self, art: ArtifactRecord) -> VerifyingReader:
        """A verifying reader of the artifact's blob (``ArtifactNotFound`` if it is gone)."""
        what = f"artifact {art.id} ({art.name!r})"
        return VerifyingReader(self._chunks(art), art.sha256, art.size, what)

    def read_all(self, art: ArtifactRecord) -> bytes:
        """The whole content, checked against the record (one read and one hash)."""
        what = f"artifact {art.id} ({art.name!r})"
        if self.files is not None:
            try:
                data = self.files.path_of(art.sha256).read_bytes()
            except FileNotFoundError:
                data = b"".join(self._chunks(art))  # ArtifactNotFound, or the empty content
        else:
            data = b"".join(self._chunks(art))
        check_content(what, len(data), hashlib.sha256(data).hexdigest(), art.size, art.sha256)
        return data

    def _chunks(self, art: ArtifactRecord) -> Iterator[bytes]:
        try:
            return blob_chunks(self.backend.read, self.files, art.sha256, art.size)
        except FileNotFoundError:
            if self.backend.read(self.get(art.id)) is None:
                raise ArtifactNotFound(art.id) from None
            return iter(())  # the record is there, its blob is not: the reader says so

    # -- verification ---------------------------------------------------------------------
    def verify(self) -> list[Problem]:
        """Every record's blob present and hashing to the record (reads every blob)."""
        records = self.backend.read(lambda txn: list(_index(txn).records()))
        problems: list[Problem] = []
        for art in records:
            where = f"artifact {art.id} ({art.name!r})"
            if not self._present(art.sha256):
                detail = (
                    f"{where}: its blob sha256 {art.sha256} is missing; restore it from a backup"
                )
                problems.append(Problem("blob_missing", where, detail))
                continue
            try:
                blob = self.reader_of(art)
                while blob.read(CHUNK):
                    pass
            except ArtifactNotFound:
                continue  # deleted meanwhile
            except CorruptRecordError as exc:
                problems.append(Problem("blob_corrupt", where, str(exc)))
        return problems

    def _present(self, sha256: str) -> bool:
        if self.files is not None:
            return self.files.exists(sha256)
        size_of = self.kv.size_of

        def work(txn: KVTxn) -> int | None:
            return size_of(txn, sha256)

        return self.backend.read(work) is not None
