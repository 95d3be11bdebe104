"""Session messages (public path; defined in :mod:`eventlog.model.messages`).

>>> from eventlog.messages import UserMessage, TextPart
"""

from __future__ import annotations

from eventlog.model.messages import *  # noqa: F403  (the public path re-exports every name)
from eventlog.model.messages import __all__ as __all__
