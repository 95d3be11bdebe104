"""An OpenAI Agents SDK session on an eventlog store: ``EventLogSession(session_id, store)``.

It implements the SDK's ``agents.memory.Session`` protocol (``get_items``, ``add_items``,
``pop_item``, ``clear_session``, ``session_id``, ``session_settings``) over one eventlog
session (``pip install 'agent-eventlog[openai-agents]'``):

- every item is one event of the session's stream, stored exactly as given (opaque JSON;
  item ids need not be unique). An item that maps to the store's message model (user /
  system / developer / assistant messages, function calls, function call outputs) is a
  ``MessageAppended(message, source=item)``, so the transcript also reads as
  ``store.list_messages(session.store_session_id)``; any other item is an ``agents.item``
  event (``AgentsItem``). Nothing of the original item is lost either way.
- ``pop_item`` appends ``MessageRetracted(seq, newest_left=...)`` of the newest item with
  ``expected_seq`` = the stream's head, retrying on a conflict: two concurrent pops never
  return the same item. ``newest_left`` lets later reads jump over what was undone, so many
  pops do not make reads slower.
- ``clear_session`` appends ``MessagesCleared``; ``get_items(limit)`` reads the stream's tail
  backwards (``read_stream_view(reverse=True)``: only the fields it needs) until
  it has ``limit`` items, skipping retracted ones and stopping at the last clear - so it
  reads about ``limit`` events, not the history.
- concurrent ``add_items`` never conflict (no ``expected_seq``; each call is one atomic batch
  through the store's group committer), and everything survives reopening the store.

``store`` is an open :class:`~eventlog.RunStore` (its calls run in a worker thread) or
:class:`~eventlog.AsyncRunStore` (writes are awaited on its committer). The session's store id
is ``session_id`` itself when it is a UUID, else ``stream_id_for("agents.session", session_id)``.

>>> import asyncio, eventlog
>>> from eventlog.integrations.openai_agents import EventLogSession
>>> store = eventlog.RunStore.in_memory()
>>> session = EventLogSession("user-42", store)
>>> async def demo():
...     await session.add_items([{"role": "user", "content": "Hi"},
...                              {"type": "reasoning", "id": "r1", "summary": []}])
...     popped = await session.pop_item()
...     return popped, await session.get_items()
>>> asyncio.run(demo())
({'type': 'reasoning', 'id': 'r1', 'summary': []}, [{'role': 'user', 'content': 'Hi'}])
>>> store.list_messages(session.store_session_id)[0].content
[TextPart(text='Hi')]
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar, cast
from uuid import UUID

import msgspec
from agents.items import TResponseInputItem
from agents.memory import SessionSettings
from agents.memory.session_settings import resolve_session_limit

from eventlog import AsyncRunStore, RunStore, event_type, stream_id_for
from eventlog.errors import ConcurrencyError, StreamNotFound
from eventlog.integrations.stream_writes import acommit, append_plan, commit
from eventlog.model.events import AnyEvent, ToolCall
from eventlog.model.messages import (
    AssistantMessage,
    ImageUrlPart,
    JsonPart,
    Message,
    MessageAppended,
    MessageRetracted,
    MessagesCleared,
    Part,
    SystemMessage,
    TextPart,
    ToolMessage,
    UserMessage,
)
from eventlog.model.records import EventRecord
from eventlog.storage.kv import KVTxn

__all__ = ["SESSION_KIND", "AgentsItem", "EventLogSession", "to_message"]

T = TypeVar("T")

#: The kind name ``stream_id_for`` derives session ids with (for non-UUID session ids).
SESSION_KIND = "agents.session"


@event_type("agents.item")
class AgentsItem(msgspec.Struct, frozen=True):
    """An Agents SDK item that has no form in the message model (reasoning, a tool search...)."""

    item: Any


def _parts(content: object) -> list[Part]:
    if isinstance(content, str):
        return [TextPart(content)]
    if not isinstance(content, list):
        return [JsonPart(content)]
    parts: list[Part] = []
    for part in content:
        kind = part.get("type") if isinstance(part, Mapping) else None
        text = part.get("text") if isinstance(part, Mapping) else None
        if kind in ("input_text", "output_text", "text") and isinstance(text, str):
            parts.append(TextPart(text))
        elif kind == "input_image" and isinstance(part, Mapping):
            url = part.get("image_url")
            parts.append(ImageUrlPart(url) if isinstance(url, str) else JsonPart(part))
        else:
            parts.append(JsonPart(part))
    return parts


def _arguments(raw: object) -> object:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def to_message(item: Mapping[str, Any], tool_names: Mapping[str, str]) -> Message | None:
    """The message-model form of an SDK item, or None when it has none.

    ``tool_names`` maps function call ids to tool names (a function call output names only
    its call).

    >>> to_message({"role": "user", "content": "Hi"}, {})
    UserMessage(content=[TextPart(text='Hi')])
    >>> to_message({"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}, {})
    AssistantMessage(content=[], tool_calls=[ToolCall(id='c1', name='f', arguments={})])
    >>> to_message({"type": "reasoning", "id": "r", "summary": []}, {}) is None
    True
    """
    kind = item.get("type", "message")
    if kind == "message":
        role, content = item.get("role"), item.get("content")
        if role == "user":
            return UserMessage(_parts(content))
        if role in ("system", "developer"):
            return SystemMessage(_parts(content))
        if role == "assistant":
            return AssistantMessage(_parts(content))
        return None
    call_id = item.get("call_id")
    if not isinstance(call_id, str):
        return None
    if kind == "function_call" and isinstance(item.get("name"), str):
        call = ToolCall(call_id, item["name"], _arguments(item.get("arguments")))
        return AssistantMessage([], tool_calls=[call])
    if kind == "function_call_output":
        return ToolMessage(call_id, tool_names.get(call_id, ""), _parts(item.get("output")))
    return None


_NOT_AN_ITEM = object()
#: events per read while walking a history back (the loop gets a turn between reads)
_CHUNK = 256


class _View(msgspec.Struct):
    """The payload fields a history read needs (msgspec skips the rest, messages included)."""

    source: Any = msgspec.UNSET  # MessageAppended (absent: a message of another writer)
    item: Any = msgspec.UNSET  # agents.item
    seq: Any = 0  # MessageRetracted
    newest_left: Any = None  # MessageRetracted written by pop_item


def _item_of(type_name: str, view: _View) -> object:
    """The SDK item a stored event holds, or ``_NOT_AN_ITEM``."""
    if type_name == "MessageAppended" and view.source is not msgspec.UNSET:
        return view.source
    if type_name == "agents.item" and view.item is not msgspec.UNSET:
        return view.item
    return _NOT_AN_ITEM


async def _survive_cancel(aw: Awaitable[T]) -> T:
    """Finish a write even if the caller is cancelled meanwhile, then re-raise the cancel.

    A write queued on the committer commits anyway; waiting for it keeps "pop_item returned
    nothing" and "the item is gone" from both happening.
    """
    task = asyncio.ensure_future(aw)
    cancelled: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError as exc:
            cancelled = cancelled or exc
    result = task.result()
    if cancelled is not None:
        raise cancelled
    return result


class EventLogSession:
    """An Agents SDK ``Session`` whose history is an eventlog session's stream.

    ``session_settings.limit`` is the default ``limit`` of :meth:`get_items`. ``title`` is the
    eventlog session's title when it is created (default: the session id).
    """

    def __init__(
        self,
        session_id: str,
        store: RunStore | AsyncRunStore,
        *,
        session_settings: SessionSettings | None = None,
        title: str | None = None,
    ) -> None:
        if not isinstance(session_id, str) or not session_id:
            raise TypeError(f"session_id must be a non-empty str, got {session_id!r}")
        if not isinstance(store, RunStore | AsyncRunStore):
            raise TypeError(
                "store must be an open eventlog RunStore or AsyncRunStore, got "
                f"{type(store).__name__}"
            )
        self.session_id = session_id
        self.session_settings: SessionSettings | None = session_settings or SessionSettings()
        try:
            sid = UUID(session_id)
        except ValueError:
            sid = stream_id_for(SESSION_KIND, session_id)
        #: The id of the eventlog session that holds this history (for ``list_messages``).
        self.store_session_id: UUID = sid
        #: the stream read and written: the session's messages, or a branch's stream
        self._active: UUID = sid
        self._store = store
        self._sync = store.sync if isinstance(store, AsyncRunStore) else store
        self._title = session_id if title is None else title
        self._tool_names: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"EventLogSession({self.session_id!r}, store_session_id={self.store_session_id})"

    # -- the store, sync or async ---------------------------------------------------------
    async def _append(
        self,
        events: Sequence[AnyEvent],
        expected_seq: int | None = None,
        *,
        also: Callable[[KVTxn], object] | None = None,
    ) -> list[EventRecord]:
        """Append ``events`` in one transaction, so every call is one commit.

        A missing session (a new one, or one deleted meanwhile) is created first, in the same
        transaction. ``also``: another write plan run after the append in that transaction
        (a subclass's bookkeeping that must commit with it or not at all).
        """
        store, sid = self._store, self._active
        sessions = self._sync.core.plans.sessions
        meta = {"agents_session_id": self.session_id}

        def create(txn: KVTxn) -> object:  # built only when the session is missing
            if sid != self.store_session_id:  # a branch is created by its fork
                raise StreamNotFound(sid, None)
            return sessions.create_session(self._title, "openai-agents", meta, sid)(txn)

        first = append_plan(self._sync, sid, events, create=create, expected_seq=expected_seq)

        def plan(txn: KVTxn) -> list[EventRecord]:
            records = first(txn)
            if also is not None:
                also(txn)
            return records

        if isinstance(store, AsyncRunStore):
            return await acommit(store, plan, finish=True)  # a cancel waits for the commit
        return await _survive_cancel(asyncio.to_thread(commit, store, plan))

    def _tail(self, to_seq: int | None, limit: int) -> list[tuple[int, str, _View]]:
        """The stream's last ``limit`` events up to ``to_seq``, newest first ([]: none).

        Read inline: one short LMDB read of the few fields needed (a worker thread would cost
        more than the read, and decoding holds the GIL either way).
        """
        try:
            return self._sync.read_stream_view(
                self._active, _View, to_seq=to_seq, limit=limit, reverse=True
            )
        except StreamNotFound:
            return []

    async def _live(self, want: int | None) -> tuple[list[tuple[int, Any]], int, set[int]]:
        """The newest ``want`` items (all: None), the head, and the seqs withdrawn unhinted.

        Items are ``(seq, item)``, oldest first; the last set holds the seqs withdrawn by the
        retractions without a ``newest_left`` hint that were read. Reads backwards in chunks:
        a retraction hides its seq, a clear ends the history, and a pop's retraction (with
        ``newest_left``) jumps over what was undone.
        """
        chunk = _CHUNK if want is None else max(2 * want, 4)
        removed: set[int] = set()
        found: list[tuple[int, Any]] = []
        head = 0
        to_seq: int | None = None
        while True:
            records = self._tail(to_seq, chunk)
            if to_seq is None and records:
                head = records[0][0]
            done = False
            jump: int | None = None
            for seq, type_name, view in records:
                if type_name == "MessagesCleared":
                    done = True
                    break
                if type_name == "MessageRetracted":
                    left = view.newest_left
                    if isinstance(left, int) and 0 <= left < seq:
                        jump = left  # everything between it and here was undone
                        break
                    removed.add(view.seq)
                    continue
                item = _item_of(type_name, view)
                if item is _NOT_AN_ITEM or seq in removed:
                    continue
                found.append((seq, item))
                if want is not None and len(found) >= want:
                    done = True
                    break
            if jump is not None:
                if jump <= 0:
                    break
                to_seq = jump
            elif done or not records or records[-1][0] <= 1:
                break
            else:
                to_seq = records[-1][0] - 1
            await asyncio.sleep(0)  # a long history: let other tasks run between chunks
        found.reverse()
        return found, head, removed

    # -- the Session protocol -------------------------------------------------------------
    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """The history, oldest first.

        With ``limit`` (or ``session_settings.limit``): the latest ``limit`` items, in
        chronological order.
        """
        n = resolve_session_limit(limit, self.session_settings)
        if n is not None and n < 0:
            n = None  # as SQLiteSession: a negative limit means no limit
        if n == 0:
            return []
        found, _, _ = await self._live(n)
        return [cast(TResponseInputItem, item) for _, item in found]

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Append ``items`` (one atomic batch; stored exactly as given)."""
        if isinstance(items, Mapping | str | bytes) or not isinstance(items, Sequence):
            raise TypeError(f"add_items takes a list of items (dicts), got {items!r:.80}")
        if not items:
            return
        for n, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise TypeError(
                    f"add_items: item {n} must be a dict (an SDK input item), got {item!r:.80}"
                )
        for item in items:  # calls made in this batch name their outputs' tools
            if item.get("type") == "function_call":
                self._tool_names[str(item.get("call_id"))] = str(item.get("name"))
        missing = [
            str(item.get("call_id"))
            for item in items
            if item.get("type") == "function_call_output"
            and str(item.get("call_id")) not in self._tool_names
        ]
        if missing:
            await self._learn_tool_names()
        events: list[AnyEvent] = []
        for item in items:
            message = to_message(item, self._tool_names)
            plain = dict(item)
            events.append(
                AgentsItem(plain) if message is None else MessageAppended(message, source=plain)
            )
        await self._append(events)

    async def _learn_tool_names(self) -> None:
        found, _, _ = await self._live(None)
        for _, item in found:
            if isinstance(item, Mapping) and item.get("type") == "function_call":
                self._tool_names[str(item.get("call_id"))] = str(item.get("name"))

    async def pop_item(self) -> TResponseInputItem | None:
        """Remove and return the newest item (None when empty); atomic under concurrency."""
        while True:
            found, head, withdrawn = await self._live(2)
            if not found:
                return None
            seq, item = found[-1]
            left: int | None = found[-2][0] if len(found) > 1 else 0
            if left and any(w < left for w in withdrawn):
                # another writer withdrew an older entry in the stretch a reader would jump
                # over: no hint, readers walk it (rare: this session's own pops never do)
                left = None
            try:
                retract = MessageRetracted(seq, newest_left=left)
                also = await self._popping(found)
                await self._append([retract], expected_seq=head, also=also)
            except ConcurrencyError:
                continue  # someone else wrote meanwhile: look again
            return cast(TResponseInputItem, item)

    async def _popping(self, found: list[tuple[int, Any]]) -> Callable[[KVTxn], object] | None:
        """A write plan to commit with the pop of ``found[-1]`` (``found``: the newest items).

        None here; a subclass keeping its own records of the items (usage per turn) drops
        what the pop makes stale, in the pop's transaction.
        """
        return None

    async def clear_session(self) -> None:
        """Empty the history (``MessagesCleared``; the events stay in the log)."""
        if self._sync.get_session(self.store_session_id) is None:
            return
        await self._append([MessagesCleared()])
