"""``eventlog --version`` through the installed script, and the version's one place."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import sys
import tomllib
from pathlib import Path

import lmdb
import pytest

import eventlog
from eventlog.storage.keys import FORMAT_VERSION
from eventlog.storage.postgres.schema import MIGRATIONS


def script() -> str:
    path = Path(sys.executable).parent / "eventlog"
    if not path.exists():
        pytest.fail(f"the eventlog console script is not installed at {path} (pip install -e .)")
    return str(path)


def fields(report: str) -> dict[str, str]:
    """``name: value`` lines (after the first line) as a dict."""
    return dict(line.split(": ", 1) for line in report.splitlines()[1:])


def test_version_names_package_formats_and_libraries() -> None:
    out = subprocess.run(
        [script(), "--version"], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    first, *_ = out.stdout.splitlines()
    assert first == f"eventlog {eventlog.__version__}"
    found = fields(out.stdout)
    assert found["store format"] == str(FORMAT_VERSION)
    assert found["PostgreSQL schema"] == str(MIGRATIONS[-1].version)
    lmdb_version = ".".join(map(str, lmdb.version()))
    assert found["LMDB"] == f"{lmdb_version} (py-lmdb {lmdb.__version__})"
    try:
        import psycopg
    except ImportError:
        assert found["psycopg"].startswith("not installed")
    else:
        assert found["psycopg"] == psycopg.__version__
    assert found["Python"] == f"{platform.python_version()} ({platform.python_implementation()})"


def test_version_without_psycopg_says_not_installed_and_how_to_install() -> None:
    # psycopg hidden from the import system, as where the postgres extra is not installed
    code = (
        "import sys\n"
        "class Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('psycopg', 'psycopg_pool'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Hide())\n"
        "from eventlog.cli.version import version_report\n"
        "print(version_report())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    found = fields(out.stdout)
    assert found["psycopg"] == (
        "not installed (PostgreSQL stores need it: pip install 'agent-eventlog[postgres]')"
    )
    assert found["PostgreSQL schema"] == str(MIGRATIONS[-1].version)


def test_the_version_has_one_place() -> None:
    root = Path(eventlog.__file__).parent.parent
    project = tomllib.loads((root / "pyproject.toml").read_text())
    assert project["project"]["name"] == "agent-eventlog"
    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["hatch"]["version"]["path"] == "eventlog/__init__.py"
    # and the installed metadata (written from it at install time) agrees
    installed = importlib.metadata.version("agent-eventlog")
    assert installed == eventlog.__version__, "a stale install: run pip install -e ."
