"""Shared fixtures: ``pg_schemas`` (a real PostgreSQL server, a schema per test)."""

from pg_support import pg_schemas

__all__ = ["pg_schemas"]
