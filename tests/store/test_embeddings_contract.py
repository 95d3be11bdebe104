"""The embeddings contract on memory, LMDB and PostgreSQL (exact search; pgvector: see
tests/store/test_embeddings_pgvector.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pg_support import url_for

from eventlog import RunStore
from eventlog.testing.embeddings import EmbeddingsContract


class TestMemoryEmbeddings(EmbeddingsContract):
    persistent = False

    def make_store(self, path: Path) -> RunStore:
        return RunStore.in_memory()


class TestLmdbEmbeddings(EmbeddingsContract):
    def make_store(self, path: Path) -> RunStore:
        return RunStore.open(path, durability="fast")


class TestLmdbApproximateEmbeddings(EmbeddingsContract):
    """LMDB with the approximate index from the first embedding (a tiny threshold)."""

    def make_store(self, path: Path) -> RunStore:
        store = RunStore.open(path, durability="fast")
        store.embeddings.search_engine.exact_below = 1
        return store


@pytest.mark.usefixtures("pg_schemas")
class TestPostgresEmbeddings(EmbeddingsContract):
    def make_store(self, path: Path) -> RunStore:
        return RunStore.open(url_for(path), durability="fast")
