"""The built-in event types (public path; defined in :mod:`eventlog.model.events`).

>>> from eventlog.events import ModelStarted, TextDelta, RunCompleted
"""

from __future__ import annotations

from eventlog.model.events import *  # noqa: F403  (the public path re-exports every name)
from eventlog.model.events import __all__ as __all__
