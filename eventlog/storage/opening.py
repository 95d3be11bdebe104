"""Opening a backend: one module per backend, each a :class:`eventlog.storage.kv.KVBackend`.

:func:`open_backend` picks one from where the store is: a directory (LMDB) or a
``postgresql://`` URL (PostgreSQL, the ``postgres`` extra).
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike

from eventlog.errors import ConfigError
from eventlog.storage.config import (
    DEFAULT_MAP_SIZE,
    DEFAULT_MAX_MAP_SIZE,
    Durability,
    PostgresConfig,
    StoreConfig,
    is_postgres_url,
)
from eventlog.storage.kv import KVBackend

__all__ = ["OpenedBackend", "open_backend"]


@dataclass(frozen=True)
class OpenedBackend:
    """An open backend and the group-commit caps of its configuration."""

    backend: KVBackend
    group_max_requests: int
    group_max_bytes: int


def open_backend(
    location: str | PathLike[str],
    *,
    durability: Durability = "durable",
    map_size: int = DEFAULT_MAP_SIZE,
    max_map_size: int = DEFAULT_MAX_MAP_SIZE,
    readonly: bool = False,
    create: bool = True,
    schema: str | None = None,
    migrate: bool = False,
    **options: int,
) -> OpenedBackend:
    """Open the backend of the store at ``location`` (see ``RunStore.open`` for the options).

    ``map_size`` and ``max_map_size`` are LMDB's; ``schema``, ``migrate``, ``pool_size`` and
    ``connect_timeout`` are PostgreSQL's.
    """
    if is_postgres_url(location):
        try:
            from eventlog.storage.postgres.backend import PostgresBackend
        except ImportError as exc:
            raise ConfigError(
                f"PostgreSQL stores need psycopg 3 ({exc}); install them with "
                "pip install 'agent-eventlog[postgres]'"
            ) from None
        pg = PostgresConfig.build(
            url=str(location),
            schema=schema,
            durability=durability,
            readonly=readonly,
            create=create,
            migrate=migrate,
            **options,
        )
        return OpenedBackend(PostgresBackend(pg), pg.group_max_requests, pg.group_max_bytes)
    if schema is not None or migrate:
        raise ConfigError(
            "schema and migrate apply to PostgreSQL stores only; pass a postgresql:// URL"
        )
    from eventlog.storage.lmdb import LmdbBackend

    config = StoreConfig.build(
        path=location,
        durability=durability,
        map_size=map_size,
        max_map_size=max_map_size,
        readonly=readonly,
        create=create,
        **options,
    )
    return OpenedBackend(LmdbBackend(config), config.group_max_requests, config.group_max_bytes)
