from __future__ import annotations

from pathlib import Path
from typing import Any

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
