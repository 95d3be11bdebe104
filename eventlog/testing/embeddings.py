"""The contract of ``store.embeddings``: every backend runs it (subclass, give ``make_store``).

Embeddings are streams in the log: their upserts and deletes are events with seq and
position, they survive a reopen, export and import, ``verify()`` checks their view and search
index, and bad input (a wrong dimension, NaN, infinity, the zero vector, a bad ``k``) is a
typed error that writes nothing.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from eventlog import (
    AsyncRunStore,
    EmbeddingDimensionError,
    InvalidVectorError,
    RunStore,
    SessionNotFound,
)
from eventlog.model.embeddings import EmbeddingDeleted, EmbeddingUpserted

__all__ = ["EmbeddingsContract"]

#: eight unit-ish vectors of dimension 3 and their ids
POINTS = {
    "x": [1.0, 0.0, 0.0],
    "y": [0.0, 1.0, 0.0],
    "z": [0.0, 0.0, 1.0],
    "xy": [1.0, 1.0, 0.0],
    "xz": [1.0, 0.0, 1.0],
    "yz": [0.0, 1.0, 1.0],
    "xyz": [1.0, 1.0, 1.0],
    "-x": [-1.0, 0.0, 0.0],
}


#: vectors that are refused: empty, NaN, infinity, zero, beyond float32, not numbers
BAD_VECTORS: list[object] = [
    [],
    [math.nan, 1.0, 0.0],
    [math.inf, 1.0, 0.0],
    [0.0, 0.0, 0.0],
    [1e-50, 0.0, 0.0],  # zero once stored as float32
    [1e39, 0.0, 0.0],
    [1e308, 1e308, 1.0],  # finite, but beyond float32
    "abc",
    b"abc",
    ["a", "b", "c"],
    None,
    {"a": 1.0},
]


def _cos(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


class EmbeddingsContract:
    """The behaviour of ``store.embeddings`` on every backend."""

    #: False for backends whose data does not survive close (memory).
    persistent: ClassVar[bool] = True

    def make_store(self, path: Path) -> RunStore:
        """Open a store for a test (``path`` is an empty temporary directory)."""
        raise NotImplementedError

    @pytest.fixture
    def store_path(self, tmp_path: Path) -> Path:
        return tmp_path / "store"

    @pytest.fixture
    def store(self, store_path: Path) -> Iterator[RunStore]:
        s = self.make_store(store_path)
        yield s
        s.close()

    def fill(self, store: RunStore) -> None:
        store.embeddings.upsert_many(
            list(POINTS.items()),
            texts=[f"text of {k}" for k in POINTS],
            metadatas=[{"axis": len(k)} for k in POINTS],
        )

    # -- writes and reads ------------------------------------------------------------------
    def test_search_is_cosine_best_first(self, store: RunStore) -> None:
        self.fill(store)
        query = [0.9, 0.4, 0.1]
        hits = store.embeddings.search(query, k=8)
        expected = sorted(POINTS, key=lambda k: (-_cos(query, POINTS[k]), k))
        assert [h.id for h in hits] == expected
        for hit in hits:
            assert hit.score == pytest.approx(_cos(query, POINTS[hit.id]), abs=1e-5)
            assert hit.text == f"text of {hit.id}"
            assert hit.metadata == {"axis": len(hit.id)}
        assert [h.id for h in store.embeddings.search(query, k=2)] == expected[:2]

    def test_upsert_replaces_get_and_delete(self, store: RunStore) -> None:
        self.fill(store)
        store.embeddings.upsert("x", [0.0, 0.5, 0.5], text="moved", metadata={"v": 2})
        got = store.embeddings.get("x")
        assert got is not None
        assert got.vector == (0.0, 0.5, 0.5)
        assert got.text == "moved"
        assert got.metadata == {"v": 2}
        assert store.embeddings.count() == len(POINTS)
        assert store.embeddings.search([0.0, 1.0, 1.0], k=2)[1].id in {"x", "yz"}
        assert store.embeddings.get("nope") is None
        assert store.embeddings.delete("x") is True
        assert store.embeddings.delete("x") is False
        assert store.embeddings.get("x") is None
        assert "x" not in [h.id for h in store.embeddings.search([1.0, 0.0, 0.0], k=8)]
        assert store.embeddings.count() == len(POINTS) - 1
        store.embeddings.upsert("x", [1.0, 0.0, 0.0])  # a deleted id can come back
        assert store.embeddings.search([1.0, 0.0, 0.0], k=1)[0].id == "x"

    def test_filters(self, store: RunStore) -> None:
        self.fill(store)
        sid = store.ensure_session()
        run = store.create_run(sid, provider="p", model="m")
        store.embeddings.upsert("s1", [1.0, 0.1, 0.0], session_id=sid, run_id=run.id)
        store.embeddings.upsert("s2", [0.0, 0.0, 1.0], session_id=sid, metadata={"axis": 1})
        in_session = store.embeddings.search([1.0, 0.0, 0.0], session_id=sid)
        assert [h.id for h in in_session] == ["s1", "s2"]
        assert in_session[0].session_id == sid
        assert in_session[0].run_id == run.id
        by_meta = store.embeddings.search([1.0, 0.0, 0.0], metadata={"axis": 1})
        assert [h.id for h in by_meta] == ["x", "s2", "y", "z"]
        both = store.embeddings.search([1.0, 0.0, 0.0], session_id=sid, metadata={"axis": 1})
        assert [h.id for h in both] == ["s2"]
        good = store.embeddings.search([1.0, 0.0, 0.0], min_score=0.7)
        assert [h.id for h in good] == ["x", "s1", "xy", "xz"]
        assert all(h.score >= 0.7 for h in good)
        assert store.embeddings.search([1.0, 0.0, 0.0], metadata={"axis": 9}) == []
        before = store.last_position()
        with pytest.raises(SessionNotFound):
            store.embeddings.upsert(
                "e", [1.0, 0, 0], session_id="00000000-0000-0000-0000-000000000001"
            )
        assert store.last_position() == before

    def test_delete_by_session_and_delete_session_cascade(self, store: RunStore) -> None:
        self.fill(store)
        a, b = store.ensure_session(), store.ensure_session()
        store.embeddings.upsert_many([("a1", [1, 0, 0]), ("a2", [0, 1, 0])], session_id=a)
        store.embeddings.upsert("b1", [0, 0, 1], session_id=b)
        assert store.embeddings.delete_by_session(a) == 2
        assert store.embeddings.delete_by_session(a) == 0
        assert store.embeddings.get("a1") is None
        assert store.embeddings.get("b1") is not None
        assert store.delete_session(b) is True
        assert store.embeddings.get("b1") is None
        assert store.embeddings.count() == len(POINTS)
        assert store.verify() == []

    def test_changes_are_events_exported_and_imported(self, store: RunStore) -> None:
        store.embeddings.upsert("a", [1.0, 2.0, 0.0])
        store.embeddings.upsert("a", [2.0, 1.0, 0.0])
        store.embeddings.delete("a")
        log = store.read_log()
        assert [type(r.event) for r in log] == [
            EmbeddingUpserted,
            EmbeddingUpserted,
            EmbeddingDeleted,
        ]
        assert [r.seq for r in log] == [1, 2, 3]
        assert [r.position for r in log] == [1, 2, 3]
        with store.subscribe(timeout=0) as sub:
            assert [r.position for r in sub] == [1, 2, 3]

        self.fill(store)
        store.embeddings.delete("z")
        lines = list(store.export_jsonl())
        other = RunStore.in_memory()
        other.import_jsonl(lines, require_trailer=True)
        query = [0.3, 0.2, 0.9]
        assert [(h.id, h.text) for h in other.embeddings.search(query, k=8)] == [
            (h.id, h.text) for h in store.embeddings.search(query, k=8)
        ]
        assert other.embeddings.get("z") is None
        assert other.verify() == []

    def test_survives_reopen(self, store: RunStore, store_path: Path) -> None:
        if not self.persistent:
            pytest.skip("this backend keeps nothing after close")
        self.fill(store)
        store.close()
        with self.make_store(store_path) as again:
            assert again.embeddings.dimension() == 3
            assert again.embeddings.search([1.0, 0.0, 0.0], k=1)[0].id == "x"
            assert again.verify() == []

    # -- bad input writes nothing ----------------------------------------------------------
    def test_hostile_inputs_are_typed_errors(self, store: RunStore) -> None:
        store.embeddings.upsert("ok", [1.0, 0.0, 0.0])
        before = store.last_position()
        for vector in BAD_VECTORS:
            with pytest.raises(InvalidVectorError):
                store.embeddings.upsert("bad", vector)  # type: ignore[arg-type]
            with pytest.raises(InvalidVectorError):
                store.embeddings.upsert_many([("good", [0.0, 1.0, 0.0]), ("bad", vector)])  # type: ignore[list-item]
            with pytest.raises(InvalidVectorError):
                store.embeddings.search(vector)  # type: ignore[arg-type]
        for k in (0, -1, True, 1.5, 10_001, "3"):
            with pytest.raises((ValueError, TypeError)):
                store.embeddings.search([1.0, 0.0, 0.0], k=k)  # type: ignore[arg-type]
        for min_score in (1.5, -2, "high", math.nan):
            with pytest.raises((ValueError, TypeError)):
                store.embeddings.search([1.0, 0.0, 0.0], min_score=min_score)  # type: ignore[arg-type]
        for bad_id in ("", "x" * 257, 5, None):
            with pytest.raises((ValueError, TypeError)):
                store.embeddings.upsert(bad_id, [1.0, 0.0, 0.0])  # type: ignore[arg-type]

        assert store.last_position() == before
        assert store.embeddings.get("good") is None

    def test_dimension_is_one_per_store(self, store: RunStore) -> None:
        assert store.embeddings.search([1.0, 2.0]) == []  # an empty store: no dimension yet
        assert store.embeddings.dimension() is None
        store.embeddings.set_dimension(3)
        store.embeddings.set_dimension(3)  # the same again: nothing to do
        with pytest.raises(EmbeddingDimensionError, match="dimension 3"):
            store.embeddings.upsert("a", [1.0, 2.0])
        with pytest.raises(EmbeddingDimensionError):
            store.embeddings.set_dimension(4)
        before = store.last_position()
        with pytest.raises(EmbeddingDimensionError):
            store.embeddings.upsert_many([("a", [1.0, 2.0, 3.0]), ("b", [1.0, 2.0])])
        with pytest.raises(EmbeddingDimensionError):
            store.embeddings.search([1.0, 2.0])
        assert store.last_position() == before
        assert store.embeddings.count() == 0
        store.embeddings.upsert("a", [1.0, 2.0, 3.0])
        assert store.embeddings.dimension() == 3

    def test_async_facade(self, store: RunStore) -> None:
        async def main() -> list[str]:
            astore = AsyncRunStore(store)
            emb = astore.embeddings
            await emb.upsert_many([("a", [1.0, 0.0]), ("b", [0.0, 1.0])])
            await emb.upsert("c", [1.0, 1.0], text="both")
            assert await emb.delete("b") is True
            got = await emb.get("c")
            assert got is not None
            assert got.text == "both"
            assert await emb.count() == 2
            assert await astore.verify() == []
            return [h.id for h in await emb.search([1.0, 0.2], k=5)]

        assert asyncio.run(main()) == ["a", "c"]
