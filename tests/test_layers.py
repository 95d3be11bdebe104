"""The dependency direction is one way: eventlog's modules never import projections."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import eventlog


def test_eventlog_modules_do_not_import_projections() -> None:
    names = [m.name for m in pkgutil.walk_packages(eventlog.__path__, "eventlog.")]
    assert "eventlog.engine" in names
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'projections')\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_public_surface() -> None:
    for name in eventlog.__all__:
        assert getattr(eventlog, name) is not None
    for needed in ("RunStore", "RunRecord", "RunState", "RunStatus", "EventRecord", "Session"):
        assert needed in eventlog.__all__
    for err in (
        "EventLogError",
        "RunNotFound",
        "SessionNotFound",
        "ConcurrencyError",
        "InvalidTransition",
        "StoreError",
        "StoreFullError",
        "StoreClosedError",
        "CorruptRecordError",
    ):
        cls = getattr(eventlog, err)
        assert issubclass(cls, eventlog.EventLogError)
