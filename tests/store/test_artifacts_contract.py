"""The artifact contract on memory, LMDB and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from pg_support import url_for

from eventlog import RunStore
from eventlog.model.artifacts import DEFAULT_MAX_ARTIFACT_BYTES as DEFAULT
from eventlog.storage.keys import pack_u64
from eventlog.storage.kv import KVTxn
from eventlog.testing import ArtifactsContract


def _damage_chunk(store: RunStore, sha256: str) -> None:
    key = bytes.fromhex(sha256) + pack_u64(0)

    def work(txn: KVTxn) -> None:
        chunk = txn.get("blobs", key)
        assert chunk is not None
        txn.put("blobs", key, bytes([chunk[0] ^ 1]) + chunk[1:])

    store.core.backend.write(work)


class TestMemoryArtifacts(ArtifactsContract):
    persistent = False

    def make_store(self, path: Path, max_artifact_bytes: int = DEFAULT) -> RunStore:
        return RunStore.in_memory(max_artifact_bytes=max_artifact_bytes)

    def damage_blob(self, store: RunStore, sha256: str) -> None:
        _damage_chunk(store, sha256)


class TestLmdbArtifacts(ArtifactsContract):
    def make_store(self, path: Path, max_artifact_bytes: int = DEFAULT) -> RunStore:
        return RunStore.open(path, max_artifact_bytes=max_artifact_bytes)

    def damage_blob(self, store: RunStore, sha256: str) -> None:
        assert store.path is not None
        blob = Path(store.path) / "blobs" / "sha256" / sha256[:2] / sha256
        data = blob.read_bytes()
        blob.write_bytes(bytes([data[0] ^ 1]) + data[1:])

    def test_a_missing_blob_is_reported(self, store: RunStore) -> None:
        sid = store.create_session().id
        art = store.artifacts.put(sid, "gone.txt", b"content")
        assert store.path is not None
        (Path(store.path) / "blobs" / "sha256" / art.sha256[:2] / art.sha256).unlink()
        assert [p.kind for p in store.verify()] == ["blob_missing"]

    def test_blob_paths_come_from_the_digest_only(self, store: RunStore) -> None:
        sid = store.create_session().id
        art = store.artifacts.put(sid, "../../escape", b"content")
        assert store.path is not None
        files = sorted(p.name for p in Path(store.path).rglob("*") if p.is_file())
        assert art.sha256 in files
        assert not any("escape" in f for f in files)
        assert not (Path(store.path).parent / "escape").exists()


@pytest.mark.usefixtures("pg_schemas")
class TestPostgresArtifacts(ArtifactsContract):
    def make_store(self, path: Path, max_artifact_bytes: int = DEFAULT) -> RunStore:
        return RunStore.open(url_for(path), max_artifact_bytes=max_artifact_bytes)

    def damage_blob(self, store: RunStore, sha256: str) -> None:
        _damage_chunk(store, sha256)
