from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pg_support import url_for

from eventlog import RunStore
from eventlog.testing import StoreContract


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


@pytest.mark.usefixtures("pg_schemas")
class TestPostgresStore(StoreContract):
    def make_store(self, path: Path, **options: Any) -> RunStore:
        return RunStore.open(url_for(path), **options)


@pytest.mark.usefixtures("pg_schemas")
class TestPostgresFastStore(StoreContract):
    def make_store(self, path: Path, **options: Any) -> RunStore:
        return RunStore.open(url_for(path), durability="fast", **options)
