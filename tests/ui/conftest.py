"""Fixtures of the viewer's tests: one seeded store and one running ``eventlog ui`` for all."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ui.ui_support import Seeded, Server, seed


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    return seed(str(tmp_path_factory.mktemp("viewer") / "store"))


@pytest.fixture(scope="session")
def server(seeded: Seeded) -> Iterator[Server]:
    srv = Server(seeded.db)
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()
