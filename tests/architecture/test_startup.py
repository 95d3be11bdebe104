"""What importing eventlog, and running the CLI, loads: only what is used.

Each check runs in a fresh interpreter (this test process has imported everything already) and
reads its ``sys.modules``. asyncio, PostgreSQL's driver, the agent frameworks, structlog (which
imports asyncio and rich's traceback renderer) and rich load only for the code that uses them;
``eventlog --help`` does not load the store. benchmarks/startup.py times the same processes.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import eventlog

#: never loaded by sync use of the library, nor by the CLI's read commands
NEVER_FOR_SYNC = {"asyncio", "psycopg", "psycopg_pool", "structlog", "rich.traceback"}
FRAMEWORKS = {
    "agents",
    "google",
    "langgraph",
    "langchain_core",
    "openai",
    "pydantic_ai",
    "pydantic_ai_harness",
}
#: the modules that `eventlog --help` builds its command tree without
NOT_FOR_HELP = {*NEVER_FOR_SYNC, "rich", "pydantic", "msgspec", "lmdb", "eventlog.store"}


def loaded_after(code: str) -> set[str]:
    """The top-level packages and the modules in sys.modules after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    modules = set(json.loads(out.stdout.splitlines()[-1]))
    return modules | {m.split(".")[0] for m in modules}


def test_import_eventlog_loads_no_layer() -> None:
    loaded = loaded_after("import eventlog")
    assert not loaded & (NOT_FOR_HELP | FRAMEWORKS)
    assert not {m for m in loaded if m.startswith("eventlog.")} - {"eventlog.errors"}


def test_sync_use_of_an_lmdb_store_loads_no_asyncio_driver_or_framework(tmp_path: Path) -> None:
    loaded = loaded_after(
        "from eventlog import RunStore\n"
        "from eventlog.events import RunCompleted\n"
        f"with RunStore.open({str(tmp_path / 'store')!r}) as store:\n"
        "    run = store.create_run(store.ensure_session(), provider='p', model='m')\n"
        "    store.append_event(run.id, RunCompleted('stop', 1))\n"
        "    assert store.list_runs_filtered(limit=5)\n"
        "    with store.subscribe(after_position=0, timeout=0) as sub:\n"
        "        assert [r.type for r in sub][-1] == 'RunCompleted'\n"
    )
    assert "eventlog.store.run_store" in loaded
    assert not loaded & (NEVER_FOR_SYNC | FRAMEWORKS)


def test_async_store_loads_asyncio_when_asked_for() -> None:
    # the positive control of the checks above: the lazy name does load its module
    loaded = loaded_after("from eventlog import AsyncRunStore\nassert AsyncRunStore.open")
    assert {"asyncio", "eventlog.store.async_run_store"} <= loaded


def test_cli_help_loads_no_store() -> None:
    loaded = loaded_after(
        "from eventlog.cli import app\n"
        "try:\n"
        "    app(['--help'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
    )
    assert "eventlog.cli.runs" in loaded
    assert not loaded & (NOT_FOR_HELP | FRAMEWORKS)


def test_cli_runs_loads_no_asyncio_driver_or_traceback_renderer(tmp_path: Path) -> None:
    db = tmp_path / "store"
    with eventlog.RunStore.open(db) as store:
        store.create_run(store.ensure_session(), provider="p", model="m")
    loaded = loaded_after(
        "from eventlog.cli import app\n"
        "try:\n"
        f"    app(['runs', '--db', {str(db)!r}, '--json'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
    )
    assert {"eventlog.store.run_store", "rich"} <= loaded
    assert not loaded & (NEVER_FOR_SYNC | FRAMEWORKS)


def test_verbose_cli_logs_through_structlog(tmp_path: Path) -> None:
    # -v configures structlog (and so loads it): the store's info lines are printed
    db = tmp_path / "store"
    eventlog.RunStore.open(db).close()
    out = subprocess.run(
        [sys.executable, "-c", "from eventlog.cli import main; main()", "-v", "runs", "--db", db],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "store_opened" in out.stderr


def test_library_logger_loads_structlog_for_the_first_line_it_prints() -> None:
    code = (
        "import logging, sys\n"
        "logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format='%(message)s')\n"
        "from eventlog.log import get_logger\n"
        "log = get_logger('eventlog.test')\n"
        "log.info('below_the_level', n=1)\n"
        "log.debug('below_the_level', n=2)\n"
        "print('structlog' in sys.modules)\n"
        "log.warning('printed_warning', n=3)\n"
        "log.bind(run='r1').error('bound_error')\n"
        "print('structlog' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True"]
    assert "below_the_level" not in out.stderr
    assert "printed_warning" in out.stderr
    assert "n=3" in out.stderr
    assert "bound_error" in out.stderr
    assert "run=r1" in out.stderr


# -- the lazy names of eventlog/__init__.py ------------------------------------------------


def _type_checking_imports() -> dict[str, tuple[str, ...]]:
    """The ``if TYPE_CHECKING:`` imports of eventlog/__init__.py: module -> names."""
    tree = ast.parse(Path(eventlog.__file__).read_text())
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If)
        and isinstance(node.test, ast.Name)
        and node.test.id == "TYPE_CHECKING"
    )
    found: dict[str, tuple[str, ...]] = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom)
        assert node.module is not None
        found[node.module] = tuple(alias.name for alias in node.names)
    return found


def test_lazy_table_is_what_type_checkers_see() -> None:
    assert _type_checking_imports() == eventlog._LAZY_FROM


def test_every_public_name_is_eager_or_lazy_and_resolves_to_its_definition() -> None:
    import importlib

    import eventlog.errors

    lazy = {name for names in eventlog._LAZY_FROM.values() for name in names}
    eager = set(eventlog.errors.__all__) & set(eventlog.__all__)
    assert set(eventlog.__all__) == lazy | eager
    assert not lazy & eager
    for module_name, names in eventlog._LAZY_FROM.items():
        module = importlib.import_module(module_name)
        for name in names:
            expected = getattr(module, name, None) or importlib.import_module(
                f"{module_name}.{name}"
            )
            assert getattr(eventlog, name) is expected, name
    assert set(eventlog.__all__) <= set(dir(eventlog))


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'RunStor'"):
        _ = eventlog.RunStor
