"""A projector of yours may not take a built-in's name: a clear error, nothing opened."""

from __future__ import annotations

from typing import ClassVar

import pytest

from eventlog import RunStore
from eventlog.engine.protocols import ProjectionTx
from eventlog.model.records import EventRecord
from eventlog.store.builtins import BUILTIN_PROJECTORS


def _named(name: str) -> object:
    class Mine:
        version: ClassVar[int] = 1

        def apply(self, tx: ProjectionTx, record: EventRecord) -> None:
            tx.put(record.run_id.bytes, b"")

    projector = Mine()
    projector.name = name  # type: ignore[attr-defined]
    return projector


def test_every_builtin_is_named() -> None:
    store = RunStore.in_memory()
    names = [p.name for p in store.projector_status()]
    assert names == list(BUILTIN_PROJECTORS)


@pytest.mark.parametrize("name", BUILTIN_PROJECTORS)
def test_a_builtin_name_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match=rf"projector name '{name}' is a built-in's"):
        RunStore.in_memory(projectors=[_named(name)])  # type: ignore[list-item]
