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
  current user turn of the current branch (turn 0 while the branch has items but no user
  message; nothing while it is empty, as the SDK). A later record for the same (branch,
  turn) replaces the earlier one, as the SDK's ``INSERT OR REPLACE``. ``get_turn_usage`` and
  ``get_session_usage`` read it per turn and per branch (``None``: every branch); a branch
  does not inherit the usage of the turns it shares (as in the SDK, where a branch copies
  messages only). A ``pop_item`` that empties a turn of the current branch drops that turn's
  usage, ``delete_branch`` drops the branch's, ``clear_session`` drops all of it - each in
  the transaction of the change that makes it stale.

**Where usage lives.** All of an Agents session's usage is in ONE stream of its own (kind
``agents.usage``, id ``stream_id_for("agents.usage", session_id)``, created by the first
record): ``agents.turn_usage`` events tagged with their branch, and ``agents.usage_dropped``
events (a turn, a branch, or everything). Reading usage folds that stream alone, so it costs
the number of usage records, not the session's items or branches - the SDK's indexed
``SUM`` over its ``turn_usage`` table. (Usage kept in each branch's stream among the items
made ``get_session_usage`` walk every branch and read all of their events.) A stream rather
than a projection: it is written in the same transaction as the items it follows (a pop and
its drop commit together), needs no projector to catch up before a read, and export/import,
copy and ``verify`` carry it as any stream.
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
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID, uuid4

import msgspec

from eventlog import AsyncRunStore, RunStore, event_type, stream_id_for
from eventlog.errors import EventLogError, StreamNotFound
from eventlog.integrations.openai_agents import EventLogSession
from eventlog.integrations.stream_writes import acommit, append_plan, commit
from eventlog.model.events import AnyEvent
from eventlog.model.messages import MessagesCleared
from eventlog.storage.kv import KVTxn

__all__ = ["BRANCH_KIND", "USAGE_KIND", "AdvancedEventLogSession", "TurnUsage", "UsageDropped"]

T = TypeVar("T")

#: The stream kind of a branch (``main`` is the session's own stream).
BRANCH_KIND = "agents.branch"
#: The stream kind of a session's usage records (one stream per Agents session).
USAGE_KIND = "agents.usage"
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
    branch: str = MAIN


@event_type("agents.usage_dropped")
class UsageDropped(msgspec.Struct, frozen=True):
    """Usage records made stale: a branch's turn, the branch (``turn`` None) or all (None)."""

    branch: str | None = None
    turn: int | None = None


def _fold(records: Sequence[Any]) -> dict[tuple[str, int], TurnUsage]:
    """The live usage rows by (branch, turn), from the usage stream's events in order."""
    rows: dict[tuple[str, int], TurnUsage] = {}
    for record in records:
        event = record.event
        if isinstance(event, TurnUsage):
            rows[(event.branch, event.turn)] = event
        elif isinstance(event, UsageDropped):
            if event.branch is None:
                rows.clear()
            elif event.turn is None:
                rows = {key: row for key, row in rows.items() if key[0] != event.branch}
            else:
                rows.pop((event.branch, event.turn), None)
    return rows


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
        delete = self._sync.core.plans.streams.delete_stream(stream)
        drop = self._drop_plan(UsageDropped(branch_id), lambda key: key[0] == branch_id)

        def work(txn: KVTxn) -> None:  # the branch and its usage go together
            delete(txn)
            if drop is not None:
                drop(txn)

        try:
            await self._commit(work)
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
    @property
    def usage_stream_id(self) -> UUID:
        """The id of the stream that holds this Agents session's usage (every branch's)."""
        return stream_id_for(USAGE_KIND, self.session_id)

    def _rows(self) -> dict[tuple[str, int], TurnUsage]:
        """The live usage rows by (branch, turn): one short read of the usage stream, inline."""
        try:
            return _fold(self._sync.read_stream(self.usage_stream_id))
        except StreamNotFound:
            return {}

    def _usage_plan(self, events: Sequence[AnyEvent]) -> Callable[[KVTxn], object]:
        """A write plan appending ``events`` to the usage stream (created on first use)."""
        sid = self.usage_stream_id
        meta = {"agents_session_id": self.session_id}
        create = self._sync.core.plans.streams.create_stream(sid, USAGE_KIND, meta, ensure=True)
        return append_plan(self._sync, sid, events, create=create)

    def _drop_plan(
        self, event: UsageDropped, stale: Callable[[tuple[str, int]], bool]
    ) -> Callable[[KVTxn], object] | None:
        """``event``'s write plan, or None when no live row is ``stale`` (nothing to drop)."""
        return self._usage_plan([event]) if any(map(stale, self._rows())) else None

    async def _commit(self, plan: Callable[[KVTxn], T]) -> T:
        store = self._store
        if isinstance(store, AsyncRunStore):
            return await acommit(store, plan, finish=True)
        return await asyncio.to_thread(commit, store, plan)

    async def _popping(self, found: list[tuple[int, Any]]) -> Callable[[KVTxn], object] | None:
        """Drop the usage of the turn that popping ``found[-1]`` empties on this branch.

        A turn empties when its user message goes (the newest item: nothing of its turn
        follows), or turn 0 (items before any user message) when its last item goes.
        """
        _, item = found[-1]
        if _is_user(item):
            if len(found) == 1:
                turn = 1
            else:
                live, _, _ = await self._live(None)
                turn = sum(1 for _, i in live if _is_user(i))
        elif len(found) == 1:
            turn = 0
        else:
            return None
        key = (self._branch, turn)
        return self._drop_plan(UsageDropped(*key), key.__eq__)

    async def clear_session(self) -> None:
        """Empty the history of the current branch and drop all usage (every branch's)."""
        drop = self._drop_plan(UsageDropped(), lambda _: True)
        if self._sync.get_session(self.store_session_id) is None:
            if drop is not None:
                await self._commit(drop)
            return
        await self._append([MessagesCleared()], also=drop)

    async def store_run_usage(self, result: Any) -> None:
        """Record ``result.context_wrapper.usage`` for the current user turn of this branch.

        Nothing is recorded while the branch has no item (as the SDK skips it); turn 0 while
        it has items but no user message (as the SDK numbers them).
        """
        usage = getattr(getattr(result, "context_wrapper", None), "usage", None)
        if usage is None:
            return
        branch = self._branch
        found, _, _ = await self._live(None)
        if not found:
            return
        event = TurnUsage(
            turn=sum(1 for _, item in found if _is_user(item)),
            requests=int(usage.requests),
            input_tokens=int(usage.input_tokens),
            output_tokens=int(usage.output_tokens),
            total_tokens=int(usage.total_tokens),
            input_tokens_details=_details(usage.input_tokens_details),
            output_tokens_details=_details(usage.output_tokens_details),
            branch=branch,
        )
        await self._commit(self._usage_plan([event]))

    async def get_turn_usage(
        self, user_turn_number: int | None = None, branch_id: str | None = None
    ) -> list[dict[str, Any]] | dict[str, Any]:
        """Usage per turn of a branch (the current one by default), or of one turn ({}: none)."""
        branch = branch_id or self._branch
        turns = sorted((t, u) for (b, t), u in self._rows().items() if b == branch)

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
            found = dict(turns).get(user_turn_number)
            return {} if found is None else row(found)
        return [{"user_turn_number": t, **row(u)} for t, u in turns]

    async def get_session_usage(self, branch_id: str | None = None) -> dict[str, int] | None:
        """Usage summed over one branch's turns, or every branch's (None: no usage stored)."""
        rows = [u for (b, _), u in self._rows().items() if not branch_id or b == branch_id]
        if not rows:
            return None
        return {
            "requests": sum(u.requests for u in rows),
            "input_tokens": sum(u.input_tokens for u in rows),
            "output_tokens": sum(u.output_tokens for u in rows),
            "total_tokens": sum(u.total_tokens for u in rows),
            "total_turns": len(rows),
        }
