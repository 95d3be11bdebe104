"""The KV backend contract (eventlog.testing.KVBackendContract) on every backend."""

from __future__ import annotations

from pathlib import Path

import pytest
from pg_support import url_for

from eventlog.storage.config import PostgresConfig, StoreConfig
from eventlog.storage.kv import KVBackend
from eventlog.storage.lmdb import LmdbBackend
from eventlog.storage.memory import MemoryBackend
from eventlog.testing import KVBackendContract


class TestMemoryKV(KVBackendContract):
    persistent = False
    supports_readonly = False

    def make_backend(self, path: Path, *, readonly: bool = False) -> KVBackend:
        return MemoryBackend()


class TestLmdbKV(KVBackendContract):
    def make_backend(self, path: Path, *, readonly: bool = False) -> KVBackend:
        return LmdbBackend(StoreConfig.build(path=path, readonly=readonly))


@pytest.mark.usefixtures("pg_schemas")
class TestPostgresKV(KVBackendContract):
    def make_backend(self, path: Path, *, readonly: bool = False) -> KVBackend:
        from eventlog.storage.postgres.backend import PostgresBackend

        return PostgresBackend(PostgresConfig.build(url=url_for(path), readonly=readonly))


@pytest.mark.usefixtures("pg_schemas")
class TestPostgresFastKV(KVBackendContract):
    """Fast mode: commits return before the WAL is flushed, flush() waits for it."""

    def make_backend(self, path: Path, *, readonly: bool = False) -> KVBackend:
        from eventlog.storage.postgres.backend import PostgresBackend

        config = PostgresConfig.build(url=url_for(path), readonly=readonly, durability="fast")
        return PostgresBackend(config)
