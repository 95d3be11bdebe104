"""Session messages: a session is a stream, each message one ``MessageAppended`` event.

``Message`` is the tagged union of DOMAIN.md (tag ``role``): :class:`SystemMessage`,
:class:`UserMessage`, :class:`AssistantMessage` (with ``tool_calls``) and :class:`ToolMessage`
(with ``tool_call_id`` and ``name``). ``content`` is a list of parts (tag ``type``):
:class:`TextPart`, :class:`JsonPart`, :class:`ImageUrlPart`; a plain string is accepted as one
text part. Every field round-trips exactly.

>>> m = UserMessage("What is LMDB?")
>>> m.content
[TextPart(text='What is LMDB?')]
>>> AssistantMessage("", tool_calls=[ToolCall("c1", "search", {"q": "lmdb"})]).tool_calls[0].name
'search'
"""

from __future__ import annotations

from typing import Any, TypeAlias

import msgspec

from eventlog.model.events import EVENT_NAMES, EVENT_TYPES, Event, ToolCall

__all__ = [
    "AssistantMessage",
    "ImageUrlPart",
    "JsonPart",
    "Message",
    "MessageAppended",
    "MessageRetracted",
    "MessagesCleared",
    "Part",
    "SystemMessage",
    "TextPart",
    "ToolCall",
    "ToolMessage",
    "UserMessage",
]


class TextPart(msgspec.Struct, frozen=True, tag="text"):
    """Plain text."""

    text: str


class JsonPart(msgspec.Struct, frozen=True, tag="json"):
    """Any JSON value."""

    value: Any


class ImageUrlPart(msgspec.Struct, frozen=True, tag="image_url"):
    """An image by URL (``mime_type`` optional)."""

    url: str
    mime_type: str | None = None


Part: TypeAlias = TextPart | JsonPart | ImageUrlPart


def _parts(content: str | list[Part]) -> list[Part]:
    if isinstance(content, str):
        return [TextPart(content)]
    if not isinstance(content, list) or not all(
        isinstance(p, TextPart | JsonPart | ImageUrlPart) for p in content
    ):
        raise TypeError(
            "message content must be a str or a list of TextPart / JsonPart / ImageUrlPart, "
            f"got {content!r:.80}"
        )
    return content


class _MessageBase(msgspec.Struct, tag_field="role"):
    content: str | list[Part]

    def __post_init__(self) -> None:
        self.content = _parts(self.content)


class SystemMessage(_MessageBase, tag="system"):
    """Instructions for the model."""


class UserMessage(_MessageBase, tag="user"):
    """What the user said."""


class AssistantMessage(_MessageBase, tag="assistant"):
    """What the model said, with the tool calls it requested."""

    tool_calls: list[ToolCall] = msgspec.field(default_factory=list)


class ToolMessage(msgspec.Struct, tag_field="role", tag="tool"):
    """A tool's result for ``tool_call_id`` (tool ``name``)."""

    tool_call_id: str
    name: str
    content: str | list[Part]

    def __post_init__(self) -> None:
        self.content = _parts(self.content)


Message: TypeAlias = SystemMessage | UserMessage | AssistantMessage | ToolMessage
MESSAGE_TYPES = (SystemMessage, UserMessage, AssistantMessage, ToolMessage)


class MessageAppended(Event, frozen=True, omit_defaults=True):
    """A message appended to a session's stream (what ``store.append_message`` writes).

    ``source`` optionally keeps the item the message was mapped from, exactly as given (an
    Agents SDK input item, say), so nothing of it is lost; it is omitted when None, so the
    stored bytes of plain messages are what they were before the field existed.
    """

    message: Message
    source: Any = None


class MessageRetracted(Event, frozen=True, omit_defaults=True):
    """The session's entry at ``seq`` is withdrawn (an undo): ``list_messages`` skips it.

    ``newest_left``, when the writer knows it (it appended with ``expected_seq``): the seq of
    the newest entry still in the transcript after this one (0: none). Everything between it
    and this event is withdrawn, so a reader walking a stack-like history back (an Agents SDK
    session's pops) jumps there instead of reading what was undone.
    """

    seq: int
    newest_left: int | None = None


class MessagesCleared(Event, frozen=True):
    """The session's transcript is emptied: ``list_messages`` returns only later messages."""


for _cls in (MessageAppended, MessageRetracted, MessagesCleared):
    EVENT_TYPES[_cls.__name__] = _cls
    EVENT_NAMES[_cls] = (_cls.__name__, _cls.version)
