"""No import cycle among the modules of ``eventlog`` and ``projections``.

import-linter's contracts (pyproject.toml, ``make lint``) check the direction between layers
but not cycles between arbitrary modules; this does, with grimp (import-linter's own graph
library), on every import statement: inside functions and under ``TYPE_CHECKING`` too - a
type-only cycle still ties two modules together and becomes a real one at the next edit.
"""

from __future__ import annotations

import functools
import textwrap
from pathlib import Path

import grimp
import pytest


def cycle_imports(graph: grimp.ImportGraph) -> set[tuple[str, str]]:
    """Every direct import that lies on a cycle: ``a -> b`` where ``b`` leads back to ``a``.

    grimp answers reachability (``chain_exists``) over its graph, which counts every import
    statement, ``TYPE_CHECKING`` blocks and function bodies included.
    """
    return {
        (importer, imported)
        for importer in graph.modules
        for imported in graph.find_modules_directly_imported_by(importer)
        if importer == imported or graph.chain_exists(importer=imported, imported=importer)
    }


def _describe(graph: grimp.ImportGraph, imports: set[tuple[str, str]]) -> str:
    lines = []
    for importer, imported in sorted(imports):
        details = graph.get_import_details(importer=importer, imported=imported)
        where = ", ".join(f"line {d['line_number']}" for d in details)
        lines.append(f"  {importer} -> {imported} ({where})")
    return "\n".join(lines)


@functools.cache
def _graph() -> grimp.ImportGraph:
    return grimp.build_graph("eventlog", "projections", cache_dir=None)


def test_no_import_cycle() -> None:
    graph = _graph()
    new = cycle_imports(graph)
    assert not new, (
        "these imports close an import cycle; break it (move the shared part into a lower "
        "module, or pass the object in):\n" + _describe(graph, new)
    )


def test_cycles_are_found_through_type_checking_and_function_imports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "cyclic_example"
    package.mkdir()
    files = {
        "__init__.py": "",
        # a -> b only for type checking, b -> a at run time
        "a.py": """
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                from cyclic_example.b import B
            """,
        "b.py": "from cyclic_example import a\nclass B: ...\n",
        # c -> d -> e -> c, one of them inside a function
        "c.py": "import cyclic_example.d\n",
        "d.py": "def later():\n    import cyclic_example.e\n",
        "e.py": "from cyclic_example import c\n",
        "f.py": "import cyclic_example.a\n",  # imports a cycle, is not on one
    }
    for name, text in files.items():
        (package / name).write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("cyclic_example", cache_dir=None)
    p = "cyclic_example."
    assert cycle_imports(graph) == {
        (p + "a", p + "b"),
        (p + "b", p + "a"),
        (p + "c", p + "d"),
        (p + "d", p + "e"),
        (p + "e", p + "c"),
    }
