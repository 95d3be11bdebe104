"""A projector's query object seen from asyncio on a remote store: every method a coroutine.

On PostgreSQL every read of a query object is a round trip to the server, so
``AsyncRunStore.projection(name)`` wraps the query object in an :class:`AsyncQuery`: calling
one of its methods returns a coroutine that runs the method in the store's reader pool (an
iterator it returns is read there too). Attributes that are not methods are returned as they
are.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Protocol

__all__ = ["AsyncQuery"]


class OffLoop(Protocol):
    """Runs ``fn(*args, **kwargs)`` off the event loop and awaits its result."""

    def __call__(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Awaitable[Any]:
        """Schedule the call in a worker thread."""
        ...


def _materialized(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn``; an iterator it returns is read to the end here (in the worker thread)."""
    result = fn(*args, **kwargs)
    if isinstance(result, Iterator):
        return iter(list(result))
    return result


class AsyncQuery:
    """A query object whose methods are coroutines run off the event loop.

    >>> import asyncio
    >>> class Counter:
    ...     unit = "runs"
    ...     def count(self, n):
    ...         return n + 1
    >>> async def off_loop(fn, *args, **kwargs):
    ...     return await asyncio.to_thread(fn, *args, **kwargs)
    >>> query = AsyncQuery(Counter(), off_loop)
    >>> asyncio.run(query.count(41)), query.unit
    (42, 'runs')
    """

    def __init__(self, query: Any, off_loop: OffLoop) -> None:
        self._query = query
        self._off_loop = off_loop

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._query, name)
        if not callable(value):
            return value
        off_loop = self._off_loop

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await off_loop(_materialized, value, *args, **kwargs)

        call.__name__ = name
        call.__doc__ = getattr(value, "__doc__", None)
        return call

    def __repr__(self) -> str:
        return f"AsyncQuery({self._query!r})"
