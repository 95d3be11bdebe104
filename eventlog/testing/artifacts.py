"""The artifact contract: ``store.artifacts`` on any backend (subclass once per backend).

Put, get, read, open, list_by_session (every version or the latest), delete, content
addressing and deduplication, damaged blobs, hostile names, the size limit, cascades,
replay, export/import and the log: each checked through the public API only.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar
from uuid import UUID, uuid4

import pytest

from eventlog import (
    ArtifactNotFound,
    ArtifactTooLargeError,
    CorruptRecordError,
    InvalidArtifactName,
    RunNotFound,
    RunStore,
    SessionNotFound,
)
from eventlog.model.artifacts import ARTIFACT_KIND
from eventlog.model.artifacts import DEFAULT_MAX_ARTIFACT_BYTES as DEFAULT

__all__ = ["ArtifactsContract"]


class _Trickle(io.RawIOBase):
    """A file object that hands out at most 1000 bytes per read (a pipe, a socket)."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self._data = memoryview(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(b), 1000, len(self._data))
        b[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


class ArtifactsContract:
    """What ``store.artifacts`` promises on every backend. Implement :meth:`make_store`."""

    #: False for backends whose data does not survive close (memory).
    persistent: ClassVar[bool] = True

    def make_store(self, path: Path, max_artifact_bytes: int = DEFAULT) -> RunStore:
        """Open a store for a test (``path`` is an empty temporary directory)."""
        raise NotImplementedError

    def damage_blob(self, store: RunStore, sha256: str) -> None:
        """Change one byte of a stored blob (each backend knows where its blobs are)."""
        raise NotImplementedError

    @pytest.fixture
    def store_path(self, tmp_path: Path) -> Path:
        return tmp_path / "store"

    @pytest.fixture
    def store(self, store_path: Path) -> Iterator[RunStore]:
        s = self.make_store(store_path)
        yield s
        s.close()

    @pytest.fixture
    def sid(self, store: RunStore) -> UUID:
        return store.create_session(title="artifacts").id

    # -- put / get / read / open ----------------------------------------------------------
    def test_put_get_read_open(self, store: RunStore, sid: UUID) -> None:
        run = store.create_run(sid, provider="p", model="m")
        data = bytes(range(256)) * 5000  # 1.28 MB: more than one chunk
        art = store.artifacts.put(
            sid, "out/data.bin", data, content_type="application/octet-stream",
            metadata={"step": 3}, run_id=run.id,
        )  # fmt: skip
        assert (art.session_id, art.run_id) == (sid, run.id)
        assert (art.name, art.size) == ("out/data.bin", len(data))
        assert art.sha256 == hashlib.sha256(data).hexdigest()
        assert (art.content_type, art.metadata) == ("application/octet-stream", {"step": 3})
        assert store.artifacts.get(art.id) == art
        assert store.artifacts.get(uuid4()) is None
        assert store.artifacts.read(art.id) == data
        with store.artifacts.open(str(art.id)) as handle:
            assert handle.read(10) == data[:10]
            assert handle.read() == data[10:]

    def test_file_objects_are_streamed(self, store: RunStore, sid: UUID) -> None:
        data = b"x" * 50_000 + b"end"
        art = store.artifacts.put(sid, "pipe", _Trickle(data))
        assert (art.size, store.artifacts.read(art.id)) == (len(data), data)
        empty = store.artifacts.put(sid, "empty", io.BytesIO(b""))
        assert (empty.size, store.artifacts.read(empty.id)) == (0, b"")

    def test_unknown_ids(self, store: RunStore, sid: UUID) -> None:
        with pytest.raises(ArtifactNotFound, match="not found"):
            store.artifacts.read(uuid4())
        with pytest.raises(ArtifactNotFound):
            store.artifacts.open(uuid4())
        assert store.artifacts.delete(uuid4()) is False
        with pytest.raises(SessionNotFound):
            store.artifacts.put(uuid4(), "x", b"1")
        with pytest.raises(RunNotFound):
            store.artifacts.put(sid, "x", b"1", run_id=uuid4())
        other = store.create_run(store.create_session().id, provider="p", model="m")
        with pytest.raises(ValueError, match="belongs to session"):
            store.artifacts.put(sid, "x", b"1", run_id=other.id)
        with pytest.raises(SessionNotFound):
            store.artifacts.list_by_session(uuid4())
        assert store.artifacts.list_by_session(sid) == []
        assert store.stats().artifacts == 0

    # -- versions, dedup, delete ----------------------------------------------------------
    def test_versions_and_listing(self, store: RunStore, sid: UUID) -> None:
        v1 = store.artifacts.put(sid, "report.md", b"one")
        other = store.artifacts.put(sid, "plot.png", b"png")
        v2 = store.artifacts.put(sid, "report.md", b"two")
        assert [a.id for a in store.artifacts.list_by_session(sid)] == [v2.id, other.id, v1.id]
        latest = store.artifacts.list_by_session(sid, versions="latest")
        assert [a.id for a in latest] == [v2.id, other.id]
        assert store.artifacts.delete(v2.id) is True
        latest = store.artifacts.list_by_session(sid, versions="latest")
        assert [a.id for a in latest] == [other.id, v1.id]  # the older version shows again
        with pytest.raises(ValueError, match="versions"):
            store.artifacts.list_by_session(sid, versions="newest")  # type: ignore[arg-type]

    def test_same_content_is_stored_once(self, store: RunStore, sid: UUID) -> None:
        a = store.artifacts.put(sid, "a", b"same bytes")
        b = store.artifacts.put(store.create_session().id, "b", b"same bytes")
        assert a.sha256 == b.sha256
        assert a.id != b.id
        assert store.stats().artifacts == 2
        assert store.artifacts.delete(a.id) is True
        assert store.artifacts.delete(a.id) is False
        assert store.artifacts.read(b.id) == b"same bytes"  # the blob stays: b refers to it
        assert store.verify() == []

    def test_delete_session_cascades(self, store: RunStore, sid: UUID) -> None:
        a = store.artifacts.put(sid, "a", b"alpha")
        keep = store.create_session().id
        b = store.artifacts.put(keep, "b", b"beta")
        assert store.delete_session(sid) is True
        assert store.artifacts.get(a.id) is None
        assert store.list_streams(ARTIFACT_KIND)
        assert store.artifacts.read(b.id) == b"beta"
        with pytest.raises(ValueError, match="artifacts"):  # their blobs would stay behind
            store.delete_stream(store.list_streams(ARTIFACT_KIND)[0].id)
        assert store.stats().artifacts == 1
        assert store.verify() == []

    # -- the log --------------------------------------------------------------------------
    def test_artifacts_are_events_in_the_log(self, store: RunStore, sid: UUID) -> None:
        art = store.artifacts.put(sid, "a", b"alpha")
        store.artifacts.delete(art.id)
        types = [r.type for r in store.read_log()]
        assert types == ["eventlog.artifact_put", "eventlog.artifact_deleted"]
        with store.subscribe(timeout=0) as sub:
            assert [r.seq for r in sub] == [1, 2]
        kept = store.artifacts.put(sid, "b", b"beta")
        store.rebuild_projections(["artifacts"])
        assert store.artifacts.list_by_session(sid) == [kept]
        assert store.verify() == []

    def test_export_import_round_trip(self, store: RunStore, sid: UUID, tmp_path: Path) -> None:
        data = bytes(range(256)) * 9000  # 2.3 MB: three chunks
        art = store.artifacts.put(sid, "big", data, metadata={"k": "v"})
        gone = store.artifacts.put(sid, "gone", b"deleted before the export")
        store.artifacts.delete(gone.id)
        lines = list(store.export_jsonl())
        assert '"blob":3' in lines[-1]
        target = self.make_store(tmp_path / "imported")
        try:
            summary = target.import_jsonl(lines, require_trailer=True)
            assert summary.blobs == 1
            assert target.artifacts.get(art.id) == art
            assert target.artifacts.read(art.id) == data
            assert target.verify() == []
        finally:
            target.close()

    def test_import_without_the_blob_writes_nothing(
        self, store: RunStore, sid: UUID, tmp_path: Path
    ) -> None:
        store.artifacts.put(sid, "a", b"alpha")
        lines = [line for line in store.export_jsonl() if '"kind":"blob"' not in line]
        target = self.make_store(tmp_path / "imported")
        try:
            with pytest.raises(Exception, match="blob"):
                target.import_jsonl(lines[:-1])  # no trailer: the blob line is simply absent
            assert target.list_sessions() == []
            assert target.stats().artifacts == 0
        finally:
            target.close()

    # -- damage, hostile input, limits ----------------------------------------------------
    def test_a_damaged_blob_is_reported(self, store: RunStore, sid: UUID) -> None:
        art = store.artifacts.put(sid, "notes.txt", b"the original content")
        self.damage_blob(store, art.sha256)
        with pytest.raises(CorruptRecordError, match=str(art.id)):
            store.artifacts.read(art.id)
        problems = store.verify()
        assert [p.kind for p in problems] == ["blob_corrupt"]
        assert str(art.id) in problems[0].where

    def test_bad_names_are_refused(self, store: RunStore, sid: UUID) -> None:
        for name in ("", "a\x00b", "line\nbreak", "esc\x1b[2J", "c1\x9b", "x" * 1025, "\ud800"):
            with pytest.raises(InvalidArtifactName):
                store.artifacts.put(sid, name, b"data")
        with pytest.raises(InvalidArtifactName, match="must be a str"):
            store.artifacts.put(sid, b"bytes", b"data")  # type: ignore[arg-type]
        assert store.stats().artifacts == 0
        assert store.last_position() == 0

    def test_path_like_names_are_data(self, store: RunStore, sid: UUID) -> None:
        for name in ("../x", "/etc/passwd", "..", "a/../../b", "C:\\x", "\u202etxt.exe", "é" * 512):
            art = store.artifacts.put(sid, name, name.encode())
            assert store.artifacts.get(art.id) == art
            assert art.name == name
            assert store.artifacts.read(art.id) == name.encode()

    def test_wrong_types_are_refused(self, store: RunStore, sid: UUID) -> None:
        with pytest.raises(TypeError):
            store.artifacts.put(sid, "x", "text, not bytes")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="binary mode"):
            store.artifacts.put(sid, "x", io.StringIO("text"))  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            store.artifacts.put(sid, "x", b"1", content_type=3)  # type: ignore[arg-type]
        assert store.stats().artifacts == 0

    def test_size_limit(self, store_path: Path) -> None:
        store = self.make_store(store_path, max_artifact_bytes=1000)
        try:
            sid = store.create_session().id
            assert store.artifacts.put(sid, "fits", b"x" * 1000).size == 1000
            with pytest.raises(ArtifactTooLargeError, match="limit of 1000 bytes") as caught:
                store.artifacts.put(sid, "big", b"x" * 1001)
            assert (caught.value.size, caught.value.limit) == (1001, 1000)
            with pytest.raises(ArtifactTooLargeError, match="'streamed'"):
                store.artifacts.put(sid, "streamed", _Trickle(b"y" * 5000))
            assert store.stats().artifacts == 1
            assert store.verify() == []
        finally:
            store.close()

    def test_reopen_keeps_artifacts(self, store: RunStore, store_path: Path) -> None:
        if not self.persistent:
            pytest.skip("the memory backend does not persist")
        sid = store.create_session().id
        art = store.artifacts.put(sid, "a", b"kept")
        store.close()
        again = self.make_store(store_path)
        try:
            assert again.artifacts.read(art.id) == b"kept"
        finally:
            again.close()
