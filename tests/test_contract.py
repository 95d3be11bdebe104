from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from eventlog import RunStore
from eventlog.testing import StoreContract
from pg_support import pg_schemas, url_for  # noqa: F401 - pg_schemas is a fixture


class TestMemoryStore(StoreContract):
    persistent = False

    def make_store(self, path: Path, **options: Any) -> RunStore:
        return RunStore.in_memory(**options)


class TestLmdbStore(StoreContract):
    def make_store(self, path: Path, **options: Any) -> RunStore:
        return RunStore.open(path, **options)


class TestLmdbFastStore(StoreContract):
    def make_store(self, path: Path, **options: Any) -> RunStore:
        return RunStore.open(path, durability="fast", **options)


class TestPostgresStore(StoreContract):
    @pytest.fixture(autouse=True)
    def _server(self, pg_schemas: set[str]) -> None:
        pass

    def make_store(self, path: Path, **options: Any) -> RunStore:
        return RunStore.open(url_for(path), **options)


class TestPostgresFastStore(StoreContract):
    @pytest.fixture(autouse=True)
    def _server(self, pg_schemas: set[str]) -> None:
        pass

    def make_store(self, path: Path, **options: Any) -> RunStore:
        return RunStore.open(url_for(path), durability="fast", **options)
