"""Permissions: private by default; a store you cannot write fails with advice, never a traceback.

The suite runs as root here, and root passes every permission check, so each case runs in a
child process that drops to ``nobody`` (uid/gid 65534) after importing eventlog (the
interpreter itself lives under /root, which nobody cannot read) and then does its store calls:
the kernel enforces the file modes on it. As a normal user the child simply keeps its uid.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eventlog import RunStore
from eventlog.events import TextDelta

NOBODY = 65534

PRELUDE = """
import io, json, os, sys
# everything, before dropping privileges: eventlog and its CLI load modules on first use
# (the public names, the commands' rich output, structlog for the first error logged)
import eventlog, eventlog.storage.lmdb, eventlog.cli
from eventlog import *
import eventlog.cli.demo_data, rich.console, rich.progress, rich.table, structlog
from eventlog import RunStore, StoreError
if os.geteuid() == 0:
    os.setgroups([]); os.setgid(NOBODY); os.setuid(NOBODY)
os.umask(0)  # the modes must not depend on the caller's umask

def attempt(fn):
    try:
        return {"ok": fn()}
    except StoreError as exc:
        return {"error": type(exc).__name__, "message": str(exc)}

def cli(*args):
    out, err = io.StringIO(), io.StringIO()
    sys.stdout, sys.stderr = out, err
    try:
        eventlog.cli.app(list(args), prog_name="eventlog")
        code = 0
    except SystemExit as exc:
        code = exc.code
    finally:
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    return {"code": code, "out": out.getvalue(), "err": err.getvalue()}
"""


def as_nobody(code: str, **values: str) -> dict[str, Any]:
    """Run ``code`` (which sets ``result``) as nobody; return ``result``."""
    script = PRELUDE.replace("NOBODY", str(NOBODY)) + "\n"
    script += "".join(f"{k} = {v!r}\n" for k, v in values.items())
    script += textwrap.dedent(code) + "\nprint(json.dumps(result))\n"
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd="/"
    )
    assert proc.returncode == 0, proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return report


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory every user can enter (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="eventlog-perm-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def make_store(path: Path) -> str:
    with RunStore.open(path) as store:
        run = store.create_run(store.ensure_session(), provider="p", model="m")
        store.append_event(run.id, TextDelta("secret"))
        return str(run.id)


def test_a_private_store_refuses_other_users_with_advice(shared_dir: Path) -> None:
    path = shared_dir / "store"
    make_store(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o700  # the default: nobody else may enter
    result = as_nobody(
        """
        result = {
            "write": attempt(lambda: RunStore.open(path).close()),
            "read": attempt(lambda: RunStore.open(path, readonly=True).close()),
            "cli": cli("runs", "--db", path),
        }
        """,
        path=str(path),
    )
    for mode in ("write", "read"):
        assert result[mode]["error"] == "StoreError", result
        assert "permission denied" in result[mode]["message"]
        assert str(path) in result[mode]["message"]
        assert "owner" in result[mode]["message"]
    assert result["cli"]["code"] == 1, result["cli"]
    assert result["cli"]["err"].startswith("error: permission denied")
    assert "Traceback" not in result["cli"]["err"]


def test_readable_store_opens_read_only_and_refuses_writes_clearly(shared_dir: Path) -> None:
    path = shared_dir / "store"
    run_id = make_store(path)
    path.chmod(0o755)
    (path / "data.mdb").chmod(0o644)
    (path / "lock.mdb").chmod(0o666)  # LMDB readers register in the lock file
    result = as_nobody(
        """
        def read():
            with RunStore.open(path, readonly=True) as store:
                return [r.seq for r in store.list_events(run_id)]
        result = {
            "read": attempt(read),
            "write": attempt(lambda: RunStore.open(path).close()),
            "cli_read": cli("events", run_id, "--db", path, "--nl"),
            "cli_write": cli("rebuild", "--db", path),
        }
        """,
        path=str(path),
        run_id=run_id,
    )
    assert result["read"] == {"ok": [1]}
    assert result["write"]["error"] == "StoreError"
    assert "cannot write" in result["write"]["message"]
    assert "readonly=True" in result["write"]["message"]
    assert result["cli_read"]["code"] == 0
    assert json.loads(result["cli_read"]["out"])["payload"]["delta"] == "secret"
    assert result["cli_write"]["code"] == 1
    assert "permission denied" in result["cli_write"]["err"]


def test_lock_file_not_writable_is_explained(shared_dir: Path) -> None:
    path = shared_dir / "store"
    make_store(path)
    path.chmod(0o755)
    (path / "data.mdb").chmod(0o644)
    (path / "lock.mdb").chmod(0o644)
    result = as_nobody(
        "result = {'read': attempt(lambda: RunStore.open(path, readonly=True).close())}",
        path=str(path),
    )
    assert result["read"]["error"] == "StoreError"
    assert "lock.mdb" in result["read"]["message"]
    assert "read-only open needs write access" in result["read"]["message"]


def test_new_store_is_private_whatever_the_umask(shared_dir: Path) -> None:
    mine = shared_dir / "mine"
    mine.mkdir()
    if os.geteuid() == 0:
        os.chown(mine, NOBODY, NOBODY)
    result = as_nobody(
        """
        import stat
        RunStore.open(os.path.join(base, "deep", "store")).close()
        deep = os.path.join(base, "deep")
        modes = {
            name: stat.S_IMODE(os.stat(os.path.join(deep, name)).st_mode)
            for name in ("store", "store/data.mdb", "store/lock.mdb")
        }
        result = {"modes": modes, "denied": attempt(lambda: RunStore.open(root_owned).close())}
        """,
        base=str(mine),
        root_owned=str(shared_dir / "not-yours" / "store"),
    )
    assert result["modes"] == {"store": 0o700, "store/data.mdb": 0o600, "store/lock.mdb": 0o600}
    if os.geteuid() == 0:  # shared_dir is root's: nobody cannot create a store in it
        assert result["denied"]["error"] == "StoreError"
        assert "cannot create store directory" in result["denied"]["message"]
