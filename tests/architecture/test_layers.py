"""The dependency direction is one way.

``projections`` may import ``eventlog``'s records/codec/protocols; ``eventlog``'s lower modules
never import ``projections`` (nor the modules that wire it). Only the facade (``store``,
``store_views``) and what sits on top of it (the async API, CLI, demo, testing, the package
``__init__``, the framework integrations) name the built-in projectors. The integrations are
the only modules that import an agent framework. Checked statically, from each module's
import statements.
"""

from __future__ import annotations

import ast
from pathlib import Path

import eventlog

ROOT = Path(eventlog.__file__).parent
WIRING = {"__init__", "store", "cli", "testing", "integrations"}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def _lower_modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        if name.split(".")[0] not in WIRING:  # the cli package is wiring as a whole
            out[name] = path
    return out


def test_lower_modules_do_not_import_projections_or_the_facade() -> None:
    lower = _lower_modules()
    assert {"engine.core", "storage.codec", "model.records", "model.events", "storage.lmdb"} <= set(
        lower
    )
    for name, path in lower.items():
        for module in _imports(path):
            top = module.split(".")[0]
            assert top != "projections", f"eventlog.{name} imports {module}"
            if top == "eventlog":
                layer = module.split(".")[1] if "." in module else "__init__"
                assert layer not in WIRING, f"eventlog.{name} imports the facade module {module}"


def test_projections_import_only_lower_eventlog_modules() -> None:
    for path in (ROOT.parent / "projections").glob("*.py"):
        for module in _imports(path):
            parts = module.split(".")
            if parts[0] == "eventlog" and len(parts) > 1:
                assert parts[1] not in WIRING, f"{path.name} imports {module}"


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


FRAMEWORKS = {"agents", "langchain", "langchain_core", "langgraph", "openai"}


def test_only_the_integrations_import_the_frameworks() -> None:
    # the agent frameworks are optional extras: nothing outside eventlog/integrations (and
    # its tests) may import them, so `import eventlog` works without them
    for path in [*ROOT.rglob("*.py"), *(ROOT.parent / "projections").glob("*.py")]:
        if "integrations" in path.relative_to(ROOT.parent).parts:
            continue
        for module in _imports(path):
            assert module.split(".")[0] not in FRAMEWORKS, f"{path} imports {module}"


def test_eventlog_imports_without_the_frameworks() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {sorted(FRAMEWORKS)!r}:\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import eventlog, eventlog.cli, eventlog.testing, projections\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.stdout.strip() == "ok", out.stderr
