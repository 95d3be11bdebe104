"""Branches and per-turn usage for the Agents SDK session, like ``AdvancedSQLiteSession``.

:class:`AdvancedEventLogSession` is an :class:`~eventlog.integrations.openai_agents.EventLogSession`
with the SDK's ``AdvancedSQLiteSession`` methods for conversation branches and usage, under the
same names and with the same answers for the same calls:

- ``create_branch_from_turn(turn_number, branch_name=None)``: a new branch holding the
  current branch's items before its ``turn_number``-th user message, and switch to it. The
  branch is a **zero-copy fork** of the current branch's stream (kind ``agents.branch``): its
  shared items are read from the parent, nothing is copied. ``switch_to_branch``,
  ``list_branches``, ``delete_branch`` and ``current_branch_id`` as in the SDK; ``main`` is
  the session's own stream. ``get_items``/``add_items``/``pop_item``/``clear_session`` act
  on the current branch.
- ``store_run_usage(result)`` after ``Runner.run``: the run's usage is recorded for the
  current user turn of the current branch (an ``agents.turn_usage`` event; a later one for
  the same turn replaces it, as the SDK's ``INSERT OR REPLACE``). ``get_turn_usage`` and
  ``get_session_usage`` read it per turn and per branch; a branch does not inherit the
  usage of the turns it shares (as in the SDK, where a branch copies messages only).

>>> import asyncio, eventlog
>>> store = eventlog.RunStore.in_memory()
>>> session = AdvancedEventLogSession("user-7", store)
>>> async def demo():
...     await session.add_items([{"role": "user", "content": "Hi"},
...                              {"role": "assistant", "content": "Hello"},
...                              {"role": "user", "content": "Tell me a joke"}])
...     branch = await session.create_branch_from_turn(2, "serious")
...     await session.add_items([{"role": "user", "content": "Tell me a fact"}])
...     return branch, [i["content"] for i in await session.get_items()]
>>> asyncio.run(demo())
('serious', ['Hi', 'Hello', 'Tell me a fact'])
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import msgspec

from eventlog import AsyncRunStore, RunStore, event_type, stream_id_for
from eventlog.errors import EventLogError, StreamNotFound
from eventlog.integrations.openai_agents import EventLogSession

__all__ = ["BRANCH_KIND", "AdvancedEventLogSession", "TurnUsage"]

#: The stream kind of a branch (``main`` is the session's own stream).
BRANCH_KIND = "agents.branch"
MAIN = "main"


@event_type("agents.turn_usage")
class TurnUsage(msgspec.Struct, frozen=True):
    """A run's usage recorded for one user turn of a branch (``store_run_usage``)."""

    turn: int
    requests: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    input_tokens_details: dict[str, Any] | None = None
    output_tokens_details: dict[str, Any] | None = None


def _details(value: object) -> dict[str, Any] | None:
    """The SDK's token details as a dict (it stores ``json.dumps(details.__dict__)``)."""
    if not value:
        return None
    found = getattr(value, "__dict__", None)
    return dict(found) if isinstance(found, dict) else None


def _is_user(item: object) -> bool:
    return isinstance(item, Mapping) and item.get("role") == "user"


class AdvancedEventLogSession(EventLogSession):
    """An :class:`EventLogSession` with branches and per-turn usage (see the module doc)."""

    def __init__(
        self,
        session_id: str,
        store: RunStore | AsyncRunStore,
        **options: Any,
    ) -> None:
        super().__init__(session_id, store, **options)
        self._branch = MAIN

    # -- branches -------------------------------------------------------------------------
    @property
    def current_branch_id(self) -> str:
        """The branch that ``get_items`` reads and ``add_items`` writes (``main`` at first)."""
        return self._branch

    def branch_stream_id(self, branch_id: str) -> UUID:
        """The id of the stream that holds ``branch_id`` (``main``: the session's own)."""
        if branch_id == MAIN:
            return self.store_session_id
        return stream_id_for(BRANCH_KIND, json.dumps([self.session_id, branch_id]))

    def _branches(self) -> list[tuple[str, UUID, datetime, int]]:
        """Every branch: ``(branch id, stream, created_at, fork seq)``, main first (sync)."""
        store = self._sync
        main = store.get_session(self.store_session_id)
        if main is None:
            return []
        out = [(MAIN, self.store_session_id, main.created_at, 0)]
        todo = [self.store_session_id]
        while todo:  # the forks index, branch by branch (no scan of the store)
            for link in store.list_stream_forks(todo.pop()):
                record = store.get_stream(link.id)
                if record is None or record.kind != BRANCH_KIND:
                    continue
                name = str(record.metadata.get("branch_id", link.id))
                out.append((name, link.id, record.created_at, link.fork_seq))
                todo.append(link.id)
        out[1:] = sorted(out[1:], key=lambda b: b[2])
        return out

    async def create_branch_from_turn(
        self, turn_number: int, branch_name: str | None = None
    ) -> str:
        """Branch before the current branch's ``turn_number``-th user message; switch to it.

        ``ValueError`` if there is no such turn, or ``branch_name`` is blank or used.
        """
        if branch_name is not None and not branch_name.strip():
            raise ValueError("Branch name cannot be empty")
        found, _, _ = await self._live(None)
        users = [seq for seq, item in found if _is_user(item)]
        if not isinstance(turn_number, int) or not 1 <= turn_number <= len(users):
            raise ValueError(
                f"Turn {turn_number} does not contain a user message in branch '{self._branch}'"
            )
        name = branch_name or f"branch_from_turn_{turn_number}_{uuid4().hex[:8]}"
        target = self.branch_stream_id(name)
        if name == MAIN or self._sync.get_stream(target) is not None:
            raise ValueError(f"Branch '{name}' already exists in this session; choose another")
        meta = {"agents_session_id": self.session_id, "branch_id": name}
        at = users[turn_number - 1] - 1
        store = self._store
        if isinstance(store, AsyncRunStore):
            await store.fork_stream(
                self._active, at, kind=BRANCH_KIND, metadata=meta, new_stream_id=target
            )
        else:
            await asyncio.to_thread(
                store.fork_stream,
                self._active,
                at,
                kind=BRANCH_KIND,
                metadata=meta,
                new_stream_id=target,
            )
        self._branch, self._active = name, target
        return name

    async def switch_to_branch(self, branch_id: str) -> None:
        """Make ``branch_id`` the current branch (``ValueError`` if it does not exist)."""
        if branch_id != MAIN and self._sync.get_stream(self.branch_stream_id(branch_id)) is None:
            raise ValueError(f"Branch '{branch_id}' does not exist")
        self._branch, self._active = branch_id, self.branch_stream_id(branch_id)

    async def delete_branch(self, branch_id: str, force: bool = False) -> None:
        """Delete a branch (not ``main``; the current one only with ``force``, then ``main``).

        A branch that other branches were made from cannot be deleted (they read its items):
        ``ValueError`` naming them.
        """
        if not branch_id or not branch_id.strip():
            raise ValueError("Branch ID cannot be empty")
        if branch_id == MAIN:
            raise ValueError("Cannot delete the 'main' branch")
        stream = self.branch_stream_id(branch_id)
        if self._sync.get_stream(stream) is None:
            raise ValueError(f"Branch '{branch_id}' does not exist")
        if branch_id == self._branch:
            if not force:
                raise ValueError(
                    f"Cannot delete current branch '{branch_id}'. Use force=True or switch "
                    "branches first"
                )
            await self.switch_to_branch(MAIN)
        try:
            await asyncio.to_thread(self._sync.delete_stream, stream)
        except EventLogError as exc:
            raise ValueError(f"Cannot delete branch '{branch_id}': {exc}") from exc

    async def list_branches(self) -> list[dict[str, Any]]:
        """Every branch, oldest first (``main`` first), as the SDK lists them.

        Each: ``branch_id``, ``message_count``, ``user_turns``, ``is_current``, ``created_at``.
        """
        out: list[dict[str, Any]] = []
        for name, stream, created, _ in await asyncio.to_thread(self._branches):
            items = await self._items_of(stream)
            out.append(
                {
                    "branch_id": name,
                    "message_count": len(items),
                    "user_turns": sum(map(_is_user, items)),
                    "is_current": name == self._branch,
                    "created_at": created.isoformat(),
                }
            )
        return out

    async def _items_of(self, stream: UUID) -> list[Any]:
        active = self._active
        self._active = stream
        try:
            found, _, _ = await self._live(None)
        finally:
            self._active = active
        return [item for _, item in found]

    # -- usage ------------------------------------------------------------------------------
    async def store_run_usage(self, result: Any) -> None:
        """Record ``result.context_wrapper.usage`` for the current user turn of this branch.

        Nothing is recorded while the branch has no user turn (as the SDK skips it).
        """
        usage = getattr(getattr(result, "context_wrapper", None), "usage", None)
        if usage is None:
            return
        found, _, _ = await self._live(None)
        turn = sum(1 for _, item in found if _is_user(item))
        if turn == 0:
            return
        event = TurnUsage(
            turn,
            int(usage.requests),
            int(usage.input_tokens),
            int(usage.output_tokens),
            int(usage.total_tokens),
            _details(usage.input_tokens_details),
            _details(usage.output_tokens_details),
        )
        await self._append([event])

    def _usage(self, branch_id: str) -> dict[int, TurnUsage]:
        """The branch's own usage by turn, the latest record of each turn (sync)."""
        stream = self.branch_stream_id(branch_id)
        links = self._sync.lineage(stream) if branch_id != MAIN else []
        after = links[0].fork_seq if links else 0
        try:
            records = self._sync.read_stream(stream, after_seq=after)
        except StreamNotFound:
            return {}
        turns: dict[int, TurnUsage] = {}
        for record in records:
            if isinstance(record.event, TurnUsage):
                turns[record.event.turn] = record.event
        return dict(sorted(turns.items()))

    async def get_turn_usage(
        self, user_turn_number: int | None = None, branch_id: str | None = None
    ) -> list[dict[str, Any]] | dict[str, Any]:
        """Usage per turn of a branch (the current one by default), or of one turn ({}: none)."""
        turns = await asyncio.to_thread(self._usage, branch_id or self._branch)

        def row(u: TurnUsage) -> dict[str, Any]:
            return {
                "requests": u.requests,
                "input_tokens": u.input_tokens,
                "output_tokens": u.output_tokens,
                "total_tokens": u.total_tokens,
                "input_tokens_details": u.input_tokens_details,
                "output_tokens_details": u.output_tokens_details,
            }

        if user_turn_number is not None:
            found = turns.get(user_turn_number)
            return {} if found is None else row(found)
        return [{"user_turn_number": t, **row(u)} for t, u in turns.items()]

    async def get_session_usage(self, branch_id: str | None = None) -> dict[str, int] | None:
        """Usage summed over one branch's turns, or every branch's (None: no usage stored)."""

        def total() -> dict[str, int] | None:
            names = [branch_id] if branch_id else [b[0] for b in self._branches()]
            rows = [u for name in names for u in self._usage(name).values()]
            if not rows:
                return None
            return {
                "requests": sum(u.requests for u in rows),
                "input_tokens": sum(u.input_tokens for u in rows),
                "output_tokens": sum(u.output_tokens for u in rows),
                "total_tokens": sum(u.total_tokens for u in rows),
                "total_turns": len(rows),
            }

        return await asyncio.to_thread(total)
