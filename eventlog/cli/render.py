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

import functools
import re

__all__ = ["safe"]

# C0 controls (tab and newline included: a table cell is one line), DEL, C1 controls, the
# bidi embeddings/overrides/isolates and marks, the line/paragraph separators, and the BOM /
# zero-width no-break space. Compiled on first use: ``eventlog --help`` never needs them.
_UNSAFE = "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]"
_UNSAFE_KEEP_NEWLINES = (
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]"
)
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def safe(text: object, *, multiline: bool = False) -> str:
    """``text`` (``str()`` of it) with every control and bidi character shown as an escape.

    ``multiline=True`` keeps newlines as they are (for a message body printed as plain
    text); everything else that could steer the terminal is escaped either way.
    """
    s = text if isinstance(text, str) else str(text)
    return _pattern(multiline).sub(_escape, s)


@functools.cache
def _pattern(multiline: bool) -> re.Pattern[str]:
    return re.compile(_UNSAFE_KEEP_NEWLINES if multiline else _UNSAFE)
