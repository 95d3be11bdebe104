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

from eventlog.events import EVENT_NAMES, EVENT_TYPES, Event, ToolCall

__all__ = [
    "AssistantMessage",
    "ImageUrlPart",
    "JsonPart",
    "Message",
    "MessageAppended",
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


class MessageAppended(Event, frozen=True):
    """A message appended to a session's stream (what ``store.append_message`` writes)."""

    message: Message


EVENT_TYPES["MessageAppended"] = MessageAppended
EVENT_NAMES[MessageAppended] = ("MessageAppended", MessageAppended.version)
