"""Run status and the lifecycle rule (terminal is final)."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["TERMINAL_STATUSES", "RunStatus"]


class RunStatus(StrEnum):
    """Where a run is in its lifecycle.

    ``pending → session_loaded → building_context → calling_model → waiting_for_tools →
    persisting → …`` and the terminal ``completed | failed | cancelled``. A run in a terminal
    status never leaves it.

    >>> RunStatus("completed").is_terminal
    True
    """

    PENDING = "pending"
    SESSION_LOADED = "session_loaded"
    BUILDING_CONTEXT = "building_context"
    CALLING_MODEL = "calling_model"
    WAITING_FOR_TOOLS = "waiting_for_tools"
    PERSISTING = "persisting"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """True for ``completed``, ``failed`` and ``cancelled``."""
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})
