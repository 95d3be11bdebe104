"""``AsyncRunStore.artifacts``: the same store with awaitable methods."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from eventlog import ArtifactTooLargeError, AsyncRunStore, InvalidArtifactName


def test_async_artifacts(tmp_path: Path) -> None:
    async def main() -> None:
        async with await AsyncRunStore.open(tmp_path / "s", max_artifact_bytes=1 << 20) as store:
            sid = await store.ensure_session()
            puts = [
                store.artifacts.put(sid, f"f{i}", io.BytesIO(bytes([i]) * 70_000)) for i in range(8)
            ]
            made = await asyncio.gather(*puts)  # share commits; staging runs in threads
            assert sorted(a.name for a in made) == [f"f{i}" for i in range(8)]
            assert await store.artifacts.read(made[3].id) == bytes([3]) * 70_000
            assert await store.artifacts.get(made[0].id) == made[0]
            handle = await store.artifacts.open(made[1].id)
            with handle:
                assert handle.read(3) == b"\x01\x01\x01"
            listed = await store.artifacts.list_by_session(sid, versions="latest")
            assert len(listed) == 8
            with pytest.raises(InvalidArtifactName):
                await store.artifacts.put(sid, "", b"x")
            with pytest.raises(ArtifactTooLargeError):
                await store.artifacts.put(sid, "big", b"x" * ((1 << 20) + 1))
            assert await store.artifacts.delete(made[0].id) is True
            assert await store.artifacts.delete(made[0].id) is False
            assert await store.delete_session(sid) is True
            assert (await store.stats()).artifacts == 0
            assert await store.verify() == []
        blobs = tmp_path / "s" / "blobs" / "sha256"
        assert [p for p in blobs.rglob("*") if p.is_file()] == []

    asyncio.run(main())
