"""No module uses another module's private names (checked statically, from the AST).

A leading underscore means "this module's own": ``eventlog`` and ``projections`` never import
a private name from another module (``from eventlog.x import _y``), never import a private
module from outside its package (``eventlog/cli/_common.py`` is the CLI's, ``projections/_keys.py``
the projectors'), and never read or set a private attribute of anything but ``self`` or
``cls`` (``store._backend``, ``txn._seen``). What another module needs gets a public,
documented name - an "internal use" accessor if need be (``store.core.backend``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import eventlog

ROOT = Path(eventlog.__file__).parent.parent
PACKAGES = ("eventlog", "projections")
#: Public API of named tuples, despite the underscore.
NAMEDTUPLE_API = frozenset({"_replace", "_asdict", "_fields", "_make", "_field_defaults"})


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _module_of(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package_of(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).parts[:-1])


def _is_module(dotted: str) -> bool:
    base = ROOT.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _check_module_path(dotted: str, importer_package: str, where: str) -> list[str]:
    """A private module may be imported only from inside the package that holds it."""
    found = []
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        if _private(part):
            owner = ".".join(parts[:i])
            if importer_package != owner and not importer_package.startswith(owner + "."):
                found.append(f"{where}: imports the private module {'.'.join(parts[: i + 1])}")
    return found


def violations(source: str, module: str, package: str, where: str) -> list[str]:
    """Every use of another module's private name in ``source`` (module ``module``)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:  # relative: resolve against this module's package
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join([*base, target] if target else base)
            if target.split(".")[0] not in PACKAGES:
                continue
            found += _check_module_path(target, package, f"{where}:{node.lineno}")
            for alias in node.names:
                if not _private(alias.name) or target == module:
                    continue
                full = f"{target}.{alias.name}"
                if _is_module(full):
                    found += _check_module_path(full, package, f"{where}:{node.lineno}")
                else:
                    found.append(f"{where}:{node.lineno}: imports {alias.name} from {target}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PACKAGES:
                    found += _check_module_path(alias.name, package, f"{where}:{node.lineno}")
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            if node.attr in NAMEDTUPLE_API:
                continue
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
            found.append(f"{where}:{node.lineno}: uses {ast.unparse(owner)}.{node.attr}")
    return sorted(found, key=lambda line: int(line.split(":")[1]))  # in line order


def test_no_module_uses_another_modules_private_names() -> None:
    paths = [p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))]
    assert len(paths) > 60
    found = []
    for path in paths:
        where = str(path.relative_to(ROOT))
        found += violations(path.read_text(), _module_of(path), _package_of(path), where)
    assert found == []


def test_the_check_finds_each_kind_of_use() -> None:
    source = """
from eventlog.store.group_commit import _Wakeup, GroupCommitter
from eventlog.cli._common import die
import projections._keys
from projections import _keys
from eventlog.storage.lmdb import _after_fork_in_child as hook
store._backend.write(fn)
self._core._committer.submit(fn)
super()._check()
self._ok = cls._fine = value.__class__ = parts._replace(host="h")
from eventlog.model.events import Event
from os import _exit
"""
    found = violations(source, "eventlog.store.core", "eventlog.store", "x.py")
    assert found == [
        "x.py:2: imports _Wakeup from eventlog.store.group_commit",
        "x.py:3: imports the private module eventlog.cli._common",
        "x.py:4: imports the private module projections._keys",
        "x.py:5: imports the private module projections._keys",
        "x.py:6: imports _after_fork_in_child from eventlog.storage.lmdb",
        "x.py:7: uses store._backend",
        "x.py:8: uses self._core._committer",
        "x.py:9: uses super()._check",
    ]


def test_a_private_module_is_fine_inside_its_own_package() -> None:
    source = "from eventlog.cli._common import die\nfrom projections._keys import u64\n"
    assert violations(source, "eventlog.cli.runs", "eventlog.cli", "a.py") == [
        "a.py:2: imports the private module projections._keys"
    ]
    assert violations(source.splitlines()[1], "projections.status_index", "projections", "b") == []
