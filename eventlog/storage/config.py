"""Store configuration, validated with pydantic at the edge (``StoreConfig``)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from eventlog.errors import ConfigError
from eventlog.storage.kv import TABLES

__all__ = [
    "CONNECT_TIMEOUT_ENV",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAP_SIZE",
    "DEFAULT_MAX_MAP_SIZE",
    "Durability",
    "PostgresConfig",
    "StoreConfig",
    "is_postgres_url",
]

MiB = 1 << 20
DEFAULT_MAP_SIZE = 64 * MiB
DEFAULT_MAX_MAP_SIZE = 1 << 40  # 1 TiB: LMDB's map is sparse, so a large cap costs nothing

Durability = Literal["durable", "fast"]

#: Seconds a PostgreSQL connection attempt may take, unless the URL (``connect_timeout=N``),
#: the ``connect_timeout`` option or :data:`CONNECT_TIMEOUT_ENV` says otherwise.
DEFAULT_CONNECT_TIMEOUT = 5
#: The environment variable that sets the default connect timeout (seconds).
CONNECT_TIMEOUT_ENV = "EVENTLOG_CONNECT_TIMEOUT"


class StoreConfig(BaseModel):
    """How to open an LMDB store.

    >>> StoreConfig(path="./data", durability="fast").durability
    'fast'

    - ``durability="durable"``: every returned append was fsynced (LMDB's default sync mode).
    - ``durability="fast"``: no fsync per commit (``MDB_NOSYNC``); call ``store.flush()``.
    - ``map_size``: the initial map; it grows automatically (doubling) up to ``max_map_size``,
      then writes raise ``StoreFullError``.
    - ``readonly``: open an existing store for reading only (never blocks a writer).
    - ``create=False``: fail with ``StoreError`` instead of creating a missing store.
    - ``group_max_requests`` / ``group_max_bytes``: the most write requests, and about the
      most bytes of stored values, that group commit puts in one transaction.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: Path
    durability: Durability = "durable"
    map_size: int = Field(default=DEFAULT_MAP_SIZE, ge=64 * 1024)
    max_map_size: int = Field(default=DEFAULT_MAX_MAP_SIZE, ge=64 * 1024)
    max_readers: int = Field(default=256, ge=8, le=65536)
    max_dbs: int = Field(default=32, ge=len(TABLES), le=1024)
    readonly: bool = False
    create: bool = True
    group_max_requests: int = Field(default=256, ge=1, le=100_000)
    group_max_bytes: int = Field(default=8 * MiB, ge=4096)

    @model_validator(mode="after")
    def _cap_not_below_start(self) -> StoreConfig:
        if self.max_map_size < self.map_size:
            raise ValueError(
                f"max_map_size ({self.max_map_size}) is smaller than map_size "
                f"({self.map_size}); raise max_map_size or lower map_size"
            )
        return self

    @classmethod
    def build(cls, **values: object) -> StoreConfig:
        """Validate ``values``; raise :class:`ConfigError` naming each bad field."""
        return _validate(cls, values)


C = TypeVar("C", bound=BaseModel)


def _validate(cls: type[C], values: dict[str, object]) -> C:
    try:
        return cls.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid store configuration: {problems}") from None


def is_postgres_url(location: object) -> bool:
    """True when ``location`` names a PostgreSQL store (``postgresql://`` or ``postgres://``)."""
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


_SCHEMA = re.compile(r"[a-z_][a-z0-9_]{0,47}")


class PostgresConfig(BaseModel):
    """How to open a PostgreSQL store.

    >>> c = PostgresConfig(url="postgresql://me:secret@db:5432/app?schema=tenant1")
    >>> c.schema_name, c.display
    ('tenant1', 'postgresql://me@db:5432/app?schema=tenant1')

    - ``url``: a libpq URL; its ``schema`` query parameter (or ``schema``) picks the
      PostgreSQL schema that holds the store (default ``eventlog``), so several stores share
      one database.
    - ``durability="durable"``: a returned append is flushed to the server's WAL
      (``synchronous_commit=on``); ``"fast"``: ``synchronous_commit=off`` (a server crash may
      lose the last few hundred milliseconds; ``store.flush()`` waits for them).
    - ``create`` (default True): create the schema when it is missing. ``migrate`` (default
      False): apply pending migrations to an existing older schema (or run
      ``eventlog migrate``). ``readonly``: read transactions only.
    - ``pool_size``: the most connections this store object opens.
    - ``connect_timeout``: seconds one connection attempt may take (default 5). When not
      given, the URL's own ``connect_timeout=N`` is used, else the ``EVENTLOG_CONNECT_TIMEOUT``
      environment variable, else 5: a wrong host fails in seconds, not minutes.

    >>> PostgresConfig(url="postgresql://db/app?connect_timeout=2").connect_timeout
    2
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str
    schema_: str | None = Field(default=None, alias="schema")
    durability: Durability = "durable"
    readonly: bool = False
    create: bool = True
    migrate: bool = False
    pool_size: int = Field(default=8, ge=1, le=1000)
    connect_timeout: int = Field(default=DEFAULT_CONNECT_TIMEOUT, ge=1, le=600)
    group_max_requests: int = Field(default=256, ge=1, le=100_000)
    group_max_bytes: int = Field(default=8 * MiB, ge=4096)

    @model_validator(mode="before")
    @classmethod
    def _default_timeout(cls, values: Any) -> Any:
        if not isinstance(values, dict) or values.get("connect_timeout") is not None:
            return values
        url = values.get("url")
        query = parse_qsl(urlsplit(url).query) if isinstance(url, str) else []
        given = [v for k, v in query if k == "connect_timeout"]
        found = given[-1] if given else os.environ.get(CONNECT_TIMEOUT_ENV)
        if found is None:
            return values
        return {**values, "connect_timeout": found}

    @model_validator(mode="after")
    def _check_url(self) -> PostgresConfig:
        if not is_postgres_url(self.url):
            raise ValueError(
                "url must start with postgresql:// (for example postgresql://user@host/db)"
            )
        if not _SCHEMA.fullmatch(self.schema_name):
            raise ValueError(
                f"invalid schema name {self.schema_name!r}: use 1-48 lowercase letters, "
                "digits or underscores, starting with a letter or underscore"
            )
        return self

    def _parts(self) -> tuple[list[tuple[str, str]], str | None]:
        query = parse_qsl(urlsplit(self.url).query, keep_blank_values=True)
        found = [v for k, v in query if k == "schema"]
        return [(k, v) for k, v in query if k != "schema"], (found[-1] if found else None)

    @property
    def schema_name(self) -> str:
        """The PostgreSQL schema of the store."""
        if self.schema_ is not None:
            return self.schema_
        found = self._parts()[1]
        return "eventlog" if found is None else found

    @property
    def conninfo(self) -> str:
        """The URL without eventlog's own parameters, for libpq."""
        parts = urlsplit(self.url)
        return urlunsplit(parts._replace(query=urlencode(self._parts()[0])))

    @property
    def display(self) -> str:
        """The URL without its password, with the schema: how messages name the store."""
        parts = urlsplit(self.conninfo)
        netloc = parts.netloc.rpartition("@")
        user = netloc[0].partition(":")[0]
        host = f"{user}@{netloc[2]}" if netloc[1] else netloc[2]
        return urlunsplit(parts._replace(netloc=host, query=f"schema={self.schema_name}"))

    @classmethod
    def build(cls, **values: object) -> PostgresConfig:
        """Validate ``values``; raise :class:`ConfigError` naming each bad field."""
        return _validate(cls, values)
