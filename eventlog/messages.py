"""Session messages (public path; defined in :mod:`eventlog.model.messages`).

>>> from eventlog.messages import UserMessage, TextPart
"""

from __future__ import annotations

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
    ToolCall,
    ToolMessage,
    UserMessage,
)

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
