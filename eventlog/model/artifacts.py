r"""Artifacts: the record of a stored file, the events that put and delete one, and name rules.

An artifact is a blob of bytes (content-addressed by its SHA-256) with a record: its session,
optional run, name, size, digest, content type and metadata. Its changes are events of one
stream per session (kind :data:`ARTIFACT_KIND`, id :func:`artifact_stream_id`), so they have
seq and position and replay, export, copy and subscribe like every other event.

Names are pure data: they are never used as a path (blob paths come from the SHA-256 only),
so ``"../x"`` or ``"/etc/passwd"`` are ordinary names. A name must be a non-empty ``str`` of at
most :data:`MAX_NAME_BYTES` UTF-8 bytes without NUL or other control characters.

>>> check_artifact_name("reports/summary.md")
'reports/summary.md'
>>> check_artifact_name("../x")  # data, not a path
'../x'
>>> check_artifact_name("a\x00b")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
eventlog.errors.InvalidArtifactName: artifact name 'a\x00b' holds a NUL or another control ...
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from eventlog.errors import ConfigError, InvalidArtifactName
from eventlog.model.records import stream_id_for
from eventlog.model.registry import event_type

__all__ = [
    "ARTIFACT_KIND",
    "DEFAULT_MAX_ARTIFACT_BYTES",
    "MAX_NAME_BYTES",
    "ArtifactDeleted",
    "ArtifactPut",
    "ArtifactRecord",
    "artifact_stream_id",
    "check_artifact_name",
    "check_max_artifact_bytes",
]

#: The stream kind of a session's artifact stream.
ARTIFACT_KIND = "eventlog.artifacts"
#: The longest artifact name, in UTF-8 bytes.
MAX_NAME_BYTES = 1024
#: The default size limit of one artifact (``max_artifact_bytes`` changes it): 4 GiB.
DEFAULT_MAX_ARTIFACT_BYTES = 4 << 30


class ArtifactRecord(msgspec.Struct, frozen=True):
    """A stored artifact: what ``store.artifacts.put`` returns and ``get`` reads.

    ``sha256`` is the hex digest of the content (the blob's address); ``size`` is in bytes.
    """

    id: UUID
    session_id: UUID
    run_id: UUID | None
    name: str
    size: int
    sha256: str
    content_type: str | None
    metadata: dict[str, Any]
    created_at: datetime


@event_type("eventlog.artifact_put")
class ArtifactPut(msgspec.Struct, frozen=True):
    """An artifact was stored (its blob was on disk before this event committed)."""

    artifact: ArtifactRecord


@event_type("eventlog.artifact_deleted")
class ArtifactDeleted(msgspec.Struct, frozen=True):
    """An artifact was deleted (its blob is collected once no record refers to it)."""

    artifact_id: UUID
    sha256: str


def artifact_stream_id(session_id: UUID) -> UUID:
    """The id of ``session_id``'s artifact stream (stable: a UUID 5 of the session id)."""
    return stream_id_for(ARTIFACT_KIND, str(session_id))


def check_max_artifact_bytes(limit: object) -> int:
    """``limit`` if it is a valid ``max_artifact_bytes`` (an int >= 0), else ``ConfigError``."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ConfigError(
            f"max_artifact_bytes must be an int >= 0 (bytes), got {limit!r:.80}; for example "
            "max_artifact_bytes=1 << 30 for 1 GiB"
        )
    return limit


def check_artifact_name(name: object) -> str:
    """``name`` if it is a valid artifact name, else :class:`InvalidArtifactName` saying why."""
    if not isinstance(name, str):
        raise InvalidArtifactName(f"artifact name must be a str, got {type(name).__name__}")
    if not name:
        raise InvalidArtifactName(
            "artifact name '' is empty: give the artifact a name such as 'report.md'"
        )
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in name):
        raise InvalidArtifactName(
            f"artifact name {name!r} holds a NUL or another control character: use printable "
            "text (names are data, never paths)"
        )
    size = len(name.encode("utf-8", "surrogatepass"))
    if size > MAX_NAME_BYTES:
        raise InvalidArtifactName(
            f"artifact name is {size} bytes, over the limit of {MAX_NAME_BYTES}: shorten it"
        )
    try:
        name.encode()
    except UnicodeEncodeError:
        raise InvalidArtifactName(
            f"artifact name {name!r} is not valid Unicode (lone surrogate): use UTF-8 text"
        ) from None
    return name
