r"""Stored text made harmless for a terminal: the one rendering helper every command uses.

Everything a command prints comes from the store, and the store holds model and tool output:
a title, a provider name or a message may carry terminal escape sequences (``ESC[2J`` clears
the screen, an OSC sequence retitles the window or writes a hyperlink), NUL bytes, or Unicode
bidi overrides that make text read differently from what it is. :func:`safe` turns every such
character into a visible escape (``\x1b``, ``\u202e``), so the bytes that reach the terminal
are printable text. JSON output does not go through here: the JSON encoder escapes control
characters itself, and the document stays exact.

>>> safe("title\x1b[2J\x07")
'title\\x1b[2J\\x07'
>>> safe("abc\u202edef")
'abc\\u202edef'
>>> safe("line one\nline two")
'line one\\nline two'
>>> safe("line one\nline two", multiline=True)
'line one\nline two'
"""

from __future__ import annotations

import re

from eventlog.tools.text import unsafe_pattern, visible

__all__ = ["safe"]


def _escape(match: re.Match[str]) -> str:
    return visible(match.group())


def safe(text: object, *, multiline: bool = False) -> str:
    """``text`` (``str()`` of it) with every control and bidi character shown as an escape.

    ``multiline=True`` keeps newlines as they are (for a message body printed as plain
    text); everything else that could steer the terminal is escaped either way.
    """
    s = text if isinstance(text, str) else str(text)
    return unsafe_pattern(keep="\n" if multiline else "").sub(_escape, s)
