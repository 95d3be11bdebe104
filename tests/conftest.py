"""Shared fixtures: ``pg_schemas`` (a real PostgreSQL server, a schema per test).

Every test starts without ``COLUMNS``/``LINES`` in its environment: a worker process of
``pytest -n`` (pytest-xdist, as ``make test`` runs) inherits a terminal size, and the CLI
sizes its tables by ``COLUMNS`` when piped; a test that wants a width sets it.
"""

from __future__ import annotations

import pytest
from pg_support import pg_schemas

__all__ = ["pg_schemas"]


@pytest.fixture(autouse=True)
def _no_inherited_terminal_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("LINES", raising=False)
