"""``copy_store`` carries artifact blobs between LMDB (files) and PostgreSQL (the table)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pg_support import url_for

from eventlog import CopyMismatchError, RunStore, copy_store


@pytest.mark.usefixtures("pg_schemas")
def test_lmdb_to_postgres_and_back(tmp_path: Path) -> None:
    data = bytes(range(256)) * 5000  # 1.28 MB: two chunks in the table
    src = tmp_path / "src"
    with RunStore.open(src) as store:
        sid = store.create_session().id
        big = store.artifacts.put(sid, "big.bin", data)
        same = store.artifacts.put(store.create_session().id, "same.bin", data)
        gone = store.artifacts.put(sid, "gone", b"deleted before the copy")
        store.artifacts.delete(gone.id)
    pg = url_for(tmp_path / "pg")
    assert copy_store(src, pg).blobs == 1  # stored once, copied once
    back = tmp_path / "back"
    assert copy_store(pg, back).blobs == 1
    for where in (pg, back):
        with RunStore.open(where) as copy:
            assert copy.artifacts.read(big.id) == data
            assert copy.artifacts.read(same.id) == data
            assert copy.artifacts.get(gone.id) is None
            assert copy.verify() == []
    files = [p.name for p in (back / "blobs" / "sha256").rglob("*") if p.is_file()]
    assert files == [big.sha256]


def test_a_damaged_source_blob_stops_the_copy(tmp_path: Path) -> None:
    src = tmp_path / "src"
    with RunStore.open(src) as store:
        art = store.artifacts.put(store.create_session().id, "a", b"original content")
    blob = src / "blobs" / "sha256" / art.sha256[:2] / art.sha256
    blob.write_bytes(b"damaged content!")
    with pytest.raises(CopyMismatchError, match=art.sha256):
        copy_store(src, tmp_path / "dst")
