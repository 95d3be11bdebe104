r"""Which characters of stored text can steer what shows it, and how they are shown instead.

Stored text is model and tool output: it may hold control characters (a terminal escape
sequence, NUL), bidi overrides and marks (text that reads differently from what it is) or
invisible separators. Every way out renders them the same way - the terminal
(:func:`eventlog.cli.render.safe`) and the viewer's HTML (:mod:`eventlog.ui.html`) - through
:func:`unsafe_pattern` and :func:`visible`: one list of characters, one spelling.

>>> unsafe_pattern().sub(lambda m: visible(m.group()), "a\x1b[2J\u202eb\nc")
'a\\x1b[2J\\u202eb\\nc'
>>> unsafe_pattern(keep="\n").sub(lambda m: visible(m.group()), "a\nb\tc")
'a\nb\\tc'
"""

from __future__ import annotations

import functools
import re

__all__ = ["CONTROLS", "ZERO_WIDTH", "unsafe_pattern", "visible"]

#: C0 controls (tab and newline included), DEL, C1 controls, the Arabic letter mark, the
#: left-to-right/right-to-left marks, the line/paragraph separators, the bidi embeddings,
#: overrides and isolates, and the BOM / zero-width no-break space (a regex class body)
CONTROLS = "\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff"
#: zero-width space, non-joiner and joiner: invisible (the viewer shows them; a terminal
#: keeps them, the joiner being part of emoji sequences)
ZERO_WIDTH = "\u200b-\u200d"

_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


@functools.cache
def unsafe_pattern(extra: str = "", keep: str = "") -> re.Pattern[str]:
    """One unsafe character: of :data:`CONTROLS` plus ``extra`` (a class body), not in ``keep``.

    Compiled on first use and cached (``eventlog --help`` never needs it).
    """
    kept = f"(?![{re.escape(keep)}])" if keep else ""
    return re.compile(f"{kept}[{CONTROLS}{extra}]")


def visible(char: str) -> str:
    r"""How an unsafe character is shown: ``\n``, ``\t``, ``\r``, ``\x1b``, ``\u202e``."""
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"
