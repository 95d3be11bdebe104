"""The library's loggers: structlog over a standard-library logger, loaded on first use.

Every module logs through ``log = get_logger("eventlog.<module>")``: silent below WARNING until
the application configures :mod:`logging` (a library never prints on its own), and the
application's structlog configuration (processors, renderer) applies to what is logged.

structlog is imported by the first call that logs something, not when the module is imported:
importing structlog imports asyncio and, where rich is installed, rich's traceback renderer,
which ``import eventlog`` and the CLI's read commands must not pay for. A call below the level
of its standard-library logger returns at once (what the logger would drop anyway), so the
``store_opened`` info line of every open loads nothing.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["LazyLogger", "get_logger"]


class LazyLogger:
    """A structlog logger wrapping ``logging.getLogger(name)``, created on first use."""

    __slots__ = ("_logger", "_stdlib")

    def __init__(self, name: str) -> None:
        self._stdlib = logging.getLogger(name)
        self._logger: Any = None

    def _structlog(self) -> Any:
        logger = self._logger
        if logger is None:
            import structlog

            logger = self._logger = structlog.wrap_logger(self._stdlib)
        return logger

    def _log(self, level: int, method: str, event: str, kw: dict[str, Any]) -> Any:
        if not self._stdlib.isEnabledFor(level):
            return None
        return getattr(self._structlog(), method)(event, **kw)

    def debug(self, event: str, **kw: Any) -> Any:
        """Log ``event`` with the key-value pairs ``kw`` at DEBUG."""
        return self._log(logging.DEBUG, "debug", event, kw)

    def info(self, event: str, **kw: Any) -> Any:
        """Log ``event`` with the key-value pairs ``kw`` at INFO."""
        return self._log(logging.INFO, "info", event, kw)

    def warning(self, event: str, **kw: Any) -> Any:
        """Log ``event`` with the key-value pairs ``kw`` at WARNING."""
        return self._log(logging.WARNING, "warning", event, kw)

    def error(self, event: str, **kw: Any) -> Any:
        """Log ``event`` with the key-value pairs ``kw`` at ERROR."""
        return self._log(logging.ERROR, "error", event, kw)

    def exception(self, event: str, **kw: Any) -> Any:
        """Log ``event`` at ERROR with the exception being handled."""
        return self._log(logging.ERROR, "exception", event, kw)

    def critical(self, event: str, **kw: Any) -> Any:
        """Log ``event`` with the key-value pairs ``kw`` at CRITICAL."""
        return self._log(logging.CRITICAL, "critical", event, kw)

    def __getattr__(self, name: str) -> Any:
        # anything else (bind, new, ...) is structlog's own
        return getattr(self._structlog(), name)


def get_logger(name: str) -> LazyLogger:
    """The logger of module ``name`` (``"eventlog.storage.lmdb"``); structlog loads on use."""
    return LazyLogger(name)
