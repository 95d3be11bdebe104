"""The layering: what the import-linter contracts cannot say, and proof that they can fail.

The contracts themselves are in pyproject.toml (``[tool.importlinter]``) and run in ``make
lint`` (``lint-imports``): layers from the CLI/integrations/testing down to the errors, no
lower layer importing the root package, the agent frameworks imported only by the
integrations, psycopg only by the PostgreSQL backend (and the CLI's migrate).
test_import_cycles.py forbids import cycles.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import eventlog

ROOT = Path(eventlog.__file__).parent
REPO = ROOT.parent
#: Root modules outside the layers: the users' re-export modules (``from eventlog.events
#: import TextDelta``) and the package itself, which wires everything.
PUBLIC_FACE = {"eventlog", "eventlog.events", "eventlog.messages"}


def _contracts() -> dict[str, dict[str, Any]]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {c["id"]: c for c in config["contracts"]}


def test_every_package_is_in_a_layer() -> None:
    layered = {
        module.strip() for layer in _contracts()["layers"]["layers"] for module in layer.split("|")
    }
    children = {
        f"eventlog.{p.stem if p.is_file() else p.name}"
        for p in ROOT.iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()
    }
    assert {"eventlog.engine", "eventlog.storage", "eventlog.errors"} <= children
    assert children - layered - PUBLIC_FACE == set(), "add it to a layer in pyproject.toml"
    assert layered - children == {"projections"}


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


def test_eventlog_imports_without_the_frameworks() -> None:
    # the contract says no module imports them; this says it at run time, lazily loaded
    # modules and the package __init__ included
    frameworks = sorted(_contracts()["frameworks"]["forbidden_modules"])
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {frameworks!r}:\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import eventlog, eventlog.cli, eventlog.testing, projections\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.stdout.strip() == "ok", out.stderr


#: One import per contract that breaks it, added to a copy of the tree.
VIOLATIONS = {
    "eventlog/storage/kv.py": ("layers", "import eventlog.store.run_store\n"),
    "eventlog/engine/protocols.py": ("root", "from eventlog import RunStore\n"),
    "eventlog/model/status.py": ("frameworks", "import langgraph\n"),
    "eventlog/tools/verify.py": ("psycopg", "import psycopg\n"),
    "eventlog/cli/runs.py": ("web", "import starlette\n"),
}


def test_the_contracts_fail_on_a_violation(tmp_path: Path) -> None:
    for package in ("eventlog", "projections"):
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    for path, (_, line) in VIOLATIONS.items():
        with (tmp_path / path).open("a") as f:
            f.write(line)
    lint = Path(sys.executable).with_name("lint-imports")
    # lint-imports reads the packages from its working directory (first on sys.path)
    out = subprocess.run(
        [str(lint), "--no-cache"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    report = " ".join(out.stdout.split())  # rich wraps long lines
    assert out.returncode == 1, report
    contracts = _contracts()
    assert f"Contracts: 0 kept, {len(contracts)} broken." in report
    for path, (contract, line) in VIOLATIONS.items():
        assert f"{contracts[contract]['name']} BROKEN" in report
        module = path.removesuffix(".py").replace("/", ".")
        imported = line.split()[1]
        assert f"{module} -> {imported}" in report, (module, imported)
