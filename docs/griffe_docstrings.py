"""A griffe extension: the library's docstrings, written for ``help()`` and doctest, as Markdown.

The docstrings use reStructuredText habits that Markdown renders badly: Sphinx roles
(``:class:`~eventlog.RunStore``` would show its colons), bare doctest examples (``>>>`` lines
are blockquotes in Markdown) and ``::`` literal blocks. This extension rewrites each docstring
before mkdocstrings parses it; the source files are not changed.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

__all__ = ["ReSTDocstrings", "to_markdown"]

# :class:`~eventlog.storage.config.StoreConfig` -> `StoreConfig`; :meth:`flush` -> `flush`
_ROLE = re.compile(r":(?:class|func|meth|mod|attr|exc|data|obj):`(~?)([^`]+)`")


def _role(match: re.Match[str]) -> str:
    target = match.group(2)
    if match.group(1):  # Sphinx's "~": show the last component only
        target = target.rsplit(".", 1)[-1]
    return f"`{target}`"


def to_markdown(text: str) -> str:
    """Rewrite one docstring: roles to code spans, doctest runs and ``::`` blocks to fences."""
    text = _ROLE.sub(_role, text)
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.lstrip()
        if stripped.startswith(">>>"):
            indent = line[: len(line) - len(stripped)]
            block = []
            while i < len(lines) and lines[i].strip():
                block.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
                i += 1
            out += [f"{indent}```pycon", *(indent + b for b in block), f"{indent}```"]
            continue
        if line.rstrip().endswith("::") and not stripped.startswith("```"):
            # an reST literal block: "text::", a blank line, an indented block
            out.append(line.rstrip()[:-1])
            i += 1
            while i < len(lines) and not lines[i].strip():
                i += 1
            block = []
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith(" ")):
                block.append(lines[i])
                i += 1
            while block and not block[-1].strip():
                block.pop()
            width = min(len(b) - len(b.lstrip()) for b in block if b.strip()) if block else 0
            out += ["", "```text", *(b[width:] for b in block), "```", ""]
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


class ReSTDocstrings(griffe.Extension):
    """Rewrite every loaded object's docstring with :func:`to_markdown`."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Called by griffe for every object it loads."""
        if obj.docstring is not None:
            obj.docstring.value = to_markdown(obj.docstring.value)
