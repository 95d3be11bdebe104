"""The docs' examples run, and the commands they name exist.

Every ```python block of README.md and docs/**/*.md runs, in a fresh temporary directory. A
block right after ``<!-- continues -->`` runs after the block before it, in the same directory
and namespace (a tutorial's steps); a ```sh block after that marker runs too: each of its
``eventlog ...`` lines goes through the CLI (exit code 0) and ``export NAME=value`` lines set
the environment. A block right after ``<!-- no-run -->`` does not run (there are very few). A
```python block followed directly by a ```text block titled "Output" must print that output
(``...`` matches anything, whitespace is normalized). A block that names a PostgreSQL URL needs
the server (skipped without one, unless EVENTLOG_REQUIRE_POSTGRES=1); the schemas it names are
dropped before and after it.

Every ``eventlog <command>`` in a shell block or an inline code span names a command of the
typer app, with options that command has; every ``make <target>`` names a Makefile target.
"""

from __future__ import annotations

import doctest
import os
import re
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import typer
from pg_support import drop_schema, require_server
from typer.testing import CliRunner

from eventlog.cli import app

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
SHELLS = ("sh", "bash", "console", "shell")
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<ticks>`{3,})(?P<info>[^`]*)$")


@dataclass
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int
    lang: str
    info: str
    code: str
    marker: str | None  # "no-run", "continues" or None
    output: str | None = None  # the expected stdout (a ```text title="Output" block after it)

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


@dataclass
class Chain:
    """A block and the ``continues`` blocks after it: one test, one directory."""

    blocks: list[Block] = field(default_factory=list)

    @property
    def where(self) -> str:
        return self.blocks[0].where


def blocks_of(page: Path) -> list[Block]:
    """The fenced blocks of ``page``, with the marker before each and the output after it."""
    lines = page.read_text().splitlines()
    found: list[Block] = []
    i = 0
    last_text = ""  # the last non-blank line outside a fence
    after_block = False  # only blank lines since the previous block closed
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None:
            if lines[i].strip():
                last_text = lines[i].strip()
                after_block = False
            i += 1
            continue
        indent, ticks, info = match["indent"], match["ticks"], match["info"].strip()
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and lines[i].strip() != ticks:
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
            i += 1
        i += 1
        lang = info.split()[0] if info else ""
        code = "\n".join(body) + "\n"
        if lang == "text" and 'title="Output"' in info and after_block and found:
            found[-1].output = code
        else:
            marker = re.fullmatch(r"<!--\s*(no-run|continues)\s*-->", last_text)
            found.append(Block(page, start + 1, lang, info, code, marker and marker[1]))
        last_text = ""
        after_block = True
    return found


def chains() -> list[Chain]:
    """Every runnable chain of every page."""
    out: list[Chain] = []
    for page in PAGES:
        current: Chain | None = None
        for block in blocks_of(page):
            runnable = block.lang == "python" or (
                block.lang in SHELLS and block.marker == "continues"
            )
            if not runnable or block.marker == "no-run":
                continue
            if block.marker == "continues" and current is not None:
                current.blocks.append(block)
                continue
            if block.lang != "python":
                continue  # a shell block needs a python block to continue
            current = Chain([block])
            out.append(current)
    return out


CHAINS = chains()


def test_the_docs_have_examples() -> None:
    assert len(CHAINS) >= 20
    no_run = [b for p in PAGES for b in blocks_of(p) if b.marker == "no-run"]
    assert len(no_run) <= 5, f"too many blocks marked no-run: {[b.where for b in no_run]}"


@contextmanager
def _in(directory: Path, env: dict[str, str]) -> Iterator[None]:
    cwd = os.getcwd()
    saved = {k: os.environ.get(k) for k in env}
    os.chdir(directory)
    os.environ.update(env)
    try:
        yield
    finally:
        os.chdir(cwd)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _schemas(chain: Chain) -> list[str]:
    text = "".join(b.code for b in chain.blocks)
    if "postgresql://" not in text:
        return []
    require_server()
    return sorted(set(re.findall(r"[?&]schema=(\w+)", text)))


def _run_shell(block: Block, env: dict[str, str]) -> None:
    runner = CliRunner()
    for line in block.code.splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if words[0] == "export":
            name, _, value = words[1].partition("=")
            env[name] = value
            os.environ[name] = value
            continue
        assert words[0] == "eventlog", f"{block.where}: only eventlog lines run here: {line}"
        result = runner.invoke(app, words[1:], env=env)
        assert result.exit_code == 0, f"{block.where}: {line}\n{result.output}"


def _check_output(block: Block, got: str) -> None:
    if block.output is None:
        return
    checker = doctest.OutputChecker()
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    assert checker.check_output(block.output, got, flags), (
        f"{block.where}: the block printed\n{got}\nbut the docs show\n{block.output}"
    )


@pytest.mark.parametrize("chain", CHAINS, ids=[c.where for c in CHAINS])
def test_example_runs(chain: Chain, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    schemas = _schemas(chain)
    for schema in schemas:
        drop_schema(schema)
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    env: dict[str, str] = {}
    try:
        with _in(tmp_path, env):
            for block in chain.blocks:
                if block.lang in SHELLS:
                    _run_shell(block, env)
                    continue
                capsys.readouterr()
                exec(compile(block.code, block.where, "exec"), namespace)
                _check_output(block, capsys.readouterr().out)
    finally:
        for schema in schemas:
            drop_schema(schema)


# -- the commands the docs name --------------------------------------------------------------
def _commands() -> dict[str, set[str]]:
    """Each command of the app with its option names (plus the group's own options)."""
    group: Any = typer.main.get_command(app)
    ctx = group.make_context("eventlog", [], resilient_parsing=True)
    common = {o for p in group.params for o in (*p.opts, *p.secondary_opts)} | {"-h", "--help"}
    out = {"": common}
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        opts = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
        out[name] = opts | common
        if hasattr(command, "list_commands"):  # a group: "otel export" with its options
            sub_ctx = command.make_context(name, [], parent=ctx, resilient_parsing=True)
            for sub in command.list_commands(sub_ctx):
                leaf = command.get_command(sub_ctx, sub)
                leaf_opts = {o for p in leaf.params for o in (*p.opts, *p.secondary_opts)}
                out[f"{name} {sub}"] = leaf_opts | common
    return out


def _make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w.-]*):", text, flags=re.M))


def _named_commands() -> Iterator[tuple[str, str]]:
    """``(where, command line)`` for every eventlog/make command line the docs show."""
    for page in [*PAGES, ROOT / "ARCHITECTURE.md", ROOT / "benchmarks" / "README.md"]:
        for block in blocks_of(page):
            if block.lang in SHELLS:
                for n, line in enumerate(block.code.splitlines()):
                    line = line.strip().removeprefix("$ ")
                    if line.startswith(("eventlog ", "make ")) or line == "eventlog":
                        yield f"{block.where}+{n + 1}", line
        text = page.read_text()
        for match in re.finditer(r"`((?:eventlog|make) [^`]+)`", text):
            lineno = text.count("\n", 0, match.start()) + 1
            yield f"{page.relative_to(ROOT)}:{lineno}", match[1]


NAMED = list(_named_commands())


def test_the_docs_name_commands() -> None:
    assert len(NAMED) >= 30


@pytest.mark.parametrize(("where", "line"), NAMED, ids=[w for w, _ in NAMED])
def test_named_command_exists(where: str, line: str) -> None:
    try:
        words = shlex.split(line, comments=True)
    except ValueError:  # an inline span with an unbalanced quote: check the words it has
        words = line.split()
    words = words[: next((i for i, w in enumerate(words) if w in ("|", "&&", ";")), None)]
    if words[0] == "make":
        for target in (w for w in words[1:] if "=" not in w and not w.startswith("-")):
            assert target in _make_targets(), f"{where}: no Makefile target {target!r}: {line}"
        return
    commands = _commands()
    args = [w for w in words[1:] if not w.startswith("-")]
    name = args[0] if args and args[0] in commands else ""
    if len(args) > 1 and f"{args[0]} {args[1]}" in commands:  # a group's command
        name = f"{args[0]} {args[1]}"
    if args and not name:
        # the first word that is not an option's value must be a command
        first = next((w for w in words[1:] if not w.startswith("-")), "")
        placeholder = first.startswith("<") or first.isupper() or first == "..."  # COMMAND
        assert first in commands or placeholder, (
            f"{where}: `eventlog {first}` is not a command of the CLI ({sorted(commands)[1:]})"
        )
    for word in words[1:]:
        if word.startswith("--") or re.fullmatch(r"-[a-zA-Z]", word):
            option = word.split("=", 1)[0]
            assert option in commands[name], (
                f"{where}: `eventlog {name}` has no option {option}: {line}"
            )
