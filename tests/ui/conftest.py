"""Fixtures of the viewer's tests: one seeded store and one running ``eventlog ui`` per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ui_support import Seeded, Server, seed


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    return seed(str(tmp_path_factory.mktemp("viewer") / "store"))


@pytest.fixture(scope="module")
def server(seeded: Seeded) -> Iterator[Server]:
    srv = Server(seeded.db)
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()

