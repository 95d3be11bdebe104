r"""Stored text made harmless for a browser: the one HTML rendering helper of the viewer.

Model and tool output is hostile. :func:`render` HTML-escapes a value (``<``, ``>``, ``&``,
both quotes: no element, no attribute breakout) and shows every control and bidi character
as a visible escape in a ``<span class="esc">`` (a right-to-left override cannot make text read
differently from what it is). The Jinja environment runs every ``{{ expression }}`` through it
(its ``finalize`` hook), so a template cannot forget. :func:`href` is the only way a stored
value becomes a link: ``http``/``https`` only, anything else (``javascript:``, ``data:``)
is None and stays text.

>>> str(render('<script>alert(1)</script>'))
'&lt;script&gt;alert(1)&lt;/script&gt;'
>>> str(render('" onmouseover="x'))
'&#34; onmouseover=&#34;x'
>>> str(render("abc\u202edef"))
'abc<span class="esc">\\u202e</span>def'
>>> href("javascript:alert(1)") is None, href("https://example.com/a?b=1")
(True, 'https://example.com/a?b=1')
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from markupsafe import Markup, escape

from eventlog.tools.text import ZERO_WIDTH, unsafe_pattern, visible

__all__ = ["href", "render", "render_multiline"]


def _pattern(multiline: bool) -> re.Pattern[str]:
    """An unsafe character: a terminal's, and the invisible zero-width ones too."""
    return unsafe_pattern(ZERO_WIDTH, "\t\n" if multiline else "")


def _visible(match: re.Match[str]) -> str:
    return f'<span class="esc">{visible(match.group())}</span>'


def _render(value: Any, multiline: bool) -> Markup:
    if isinstance(value, Markup):
        return value
    text = "" if value is None else value if isinstance(value, str) else str(value)
    return Markup(_pattern(multiline).sub(_visible, str(escape(text))))


def render(value: Any) -> Markup:
    """``value`` (``str()`` of it; None is empty) escaped for HTML, controls made visible."""
    return _render(value, False)


def render_multiline(value: Any) -> Markup:
    """As :func:`render`, keeping newlines and tabs (text shown in a ``<pre>``)."""
    return _render(value, True)


def href(url: Any) -> str | None:
    """``url`` if it may be a link (an absolute ``http``/``https`` URL), else None."""
    if not isinstance(url, str) or _pattern(False).search(url):
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url.strip()
