"""Store configuration, validated with pydantic at the edge (``StoreConfig``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from eventlog.errors import ConfigError
from eventlog.kv import TABLES

__all__ = ["DEFAULT_MAP_SIZE", "DEFAULT_MAX_MAP_SIZE", "Durability", "StoreConfig"]

MiB = 1 << 20
DEFAULT_MAP_SIZE = 64 * MiB
DEFAULT_MAX_MAP_SIZE = 1 << 40  # 1 TiB: LMDB's map is sparse, so a large cap costs nothing

Durability = Literal["durable", "fast"]


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
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ConfigError(f"invalid store configuration: {problems}") from None
