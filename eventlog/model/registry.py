"""Custom event types: msgspec Structs stored under a stable name and an integer version.

Register a type with :func:`event_type`; it then appends, lists, replays, exports, imports
and projects exactly like the built-in agent events. Its stored envelope names the registered
type name and version (never the Python class name, so the class may be renamed or moved).

>>> import msgspec, eventlog
>>> @eventlog.event_type("doc.ticket_opened", version=2, aliases=("DocTicketCreated",))
... class TicketOpened(msgspec.Struct, frozen=True):
...     title: str
...     priority: int = 0
>>> eventlog.register_upcaster("doc.ticket_opened", from_version=1,
...                            fn=lambda data: {**data, "priority": 0})
>>> from eventlog.storage.codec import decode_payload
>>> decode_payload("DocTicketCreated", 1, msgspec.msgpack.encode({"title": "Printer"}))
TicketOpened(title='Printer', priority=0)

Schema evolution rules (the stored bytes are never rewritten; reads bring them up to date):

- a new field gets a default (old payloads lack it);
- never reorder, rename or retype a field of a stored version;
- any other change: bump ``version`` and register an upcaster from the old version, which
  turns the stored mapping of version N into the mapping of version N + 1;
- renaming the type: register it under the new name with the old one in ``aliases``.

A stored payload that cannot be brought to the current shape (no upcaster for one of the
versions, an upcaster that raised, a shape the class refuses) reads as
:class:`~eventlog.model.events.RawEvent` with its stored name, version and mapping - never an
exception - and ``store.verify()`` reports it with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec

from eventlog.model.events import EVENT_NAMES, EVENT_TYPES, RawEvent

__all__ = [
    "EventType",
    "Upcaster",
    "event_type",
    "register_upcaster",
    "registered",
    "upcast",
]

S = TypeVar("S", bound=type[msgspec.Struct])

#: ``fn(data)``: the stored mapping of version N -> the mapping of version N + 1.
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.:\-]{0,99}")


@dataclass(frozen=True)
class EventType:
    """A registered event type: its stored name, current version, class and old names."""

    name: str
    version: int
    cls: type[msgspec.Struct]
    aliases: tuple[str, ...]


_BY_NAME: dict[str, EventType] = {}  # current names
_ALIASES: dict[str, str] = {}  # old name -> current name
_UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def _check_name(name: object, what: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"{what} {name!r} is not a valid event type name: use 1-100 letters, digits and "
            "`_ . : -`, starting with a letter (e.g. 'ticket.opened')"
        )
    if name in EVENT_TYPES:
        raise ValueError(f"{what} {name!r} is a built-in event type's name; choose another name")
    return name


def event_type(name: str, version: int = 1, *, aliases: Iterable[str] = ()) -> Callable[[S], S]:
    """Class decorator: register a msgspec Struct as the event type ``name`` at ``version``.

    ``aliases`` are names the type was stored under before a rename: stored events of those
    names read as this class. Registering the same class again is a no-op; another class
    under a taken name (or alias) is a ``ValueError``, as are the names of built-in events.
    The class must encode as a map (not ``array_like``), so that code which does not know it
    still reads a mapping.

    >>> import msgspec, eventlog
    >>> @eventlog.event_type("doc.note_added")
    ... class NoteAdded(msgspec.Struct, frozen=True):
    ...     text: str
    >>> eventlog.model.registry.registered("doc.note_added").version
    1
    """
    _check_name(name, "event type name")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"event type {name!r}: version must be an int >= 1, got {version!r}")
    if isinstance(aliases, str):
        raise TypeError(f"event type {name!r}: aliases must be a collection of names, not a str")
    old_names = tuple(_check_name(a, f"alias of {name!r}") for a in aliases)

    def register(cls: S) -> S:
        _register(cls, name, version, old_names)
        return cls

    return register


def _register(cls: type[Any], name: str, version: int, aliases: tuple[str, ...]) -> None:
    if not isinstance(cls, type) or not issubclass(cls, msgspec.Struct):
        raise TypeError(
            f"@event_type({name!r}) decorates msgspec.Struct subclasses, got {cls!r}; "
            "define the event as `class X(msgspec.Struct, frozen=True): ...`"
        )
    if cls is RawEvent or cls in EVENT_TYPES.values():
        raise ValueError(f"{cls.__name__} is a built-in event type; it cannot be registered")
    if cls.__struct_config__.array_like:
        raise ValueError(
            f"event type {name!r}: {cls.__name__} is array_like; an event must encode as a map "
            "so that code without the class still reads a mapping - drop array_like=True"
        )
    existing = _BY_NAME.get(name)
    if existing is not None:
        if existing.cls is cls and existing.version == version and existing.aliases == aliases:
            return  # the same registration again (a module imported twice)
        raise ValueError(
            f"event type {name!r} is already registered to {existing.cls.__qualname__} "
            f"(version {existing.version}); give {cls.__qualname__} another name, or bump the "
            "version of the existing class instead of defining a second one"
        )
    if name in _ALIASES:
        raise ValueError(
            f"event type name {name!r} is an alias of {_ALIASES[name]!r}; choose another name"
        )
    if cls in EVENT_NAMES:
        raise ValueError(
            f"{cls.__qualname__} is already registered as {EVENT_NAMES[cls][0]!r}; a class "
            "has one type name (list old names in aliases=)"
        )
    for alias in aliases:
        if alias == name or alias in _BY_NAME or alias in _ALIASES:
            raise ValueError(
                f"alias {alias!r} of event type {name!r} is already a type name or an alias; "
                "each stored name must resolve to one type"
            )
    try:
        custom = _custom_types(msgspec.inspect.type_info(cls), set())
    except (NameError, TypeError):  # a forward reference not defined yet: checked on first use
        custom = []
    if custom:
        raise ValueError(
            f"event type {name!r}: {cls.__qualname__} cannot be stored: a field has type "
            f"{custom[0].__qualname__}, which msgspec cannot encode; use field types msgspec "
            "knows (str, int, float, bool, None, lists, dicts, Structs, UUID, datetime, ...)"
        )
    _BY_NAME[name] = EventType(name, version, cls, aliases)
    for alias in aliases:
        _ALIASES[alias] = name
    EVENT_NAMES[cls] = (name, version)


def _custom_types(info: object, seen: set[int]) -> list[type]:
    """The classes in a type tree (``msgspec.inspect``) that msgspec cannot encode itself."""
    if id(info) in seen:
        return []
    seen.add(id(info))
    if isinstance(info, msgspec.inspect.CustomType):
        return [info.cls]
    found: list[type] = []
    if isinstance(info, msgspec.Struct):  # every msgspec.inspect.Type is a Struct
        for field in info.__struct_fields__:
            value = getattr(info, field)
            items = value if isinstance(value, tuple) else (value,)
            for item in items:
                if isinstance(item, msgspec.inspect.Field):
                    item = item.type
                if isinstance(item, msgspec.inspect.Type):
                    found += _custom_types(item, seen)
    return found


def register_upcaster(name: str, from_version: int, fn: Upcaster) -> None:
    """Register ``fn`` to turn stored payloads of ``name`` at ``from_version`` into the next.

    ``fn(data) -> data`` gets the stored mapping of version ``from_version`` (JSON-like
    values as msgpack decodes them: a UUID may be bytes or a str, a datetime a datetime or a
    str - copy fields, don't reinterpret them) and returns the mapping of version
    ``from_version + 1``. Reads chain upcasters up to the registered version; the stored
    bytes are never rewritten.

    >>> import msgspec, eventlog
    >>> @eventlog.event_type("doc.price_set", version=2)
    ... class PriceSet(msgspec.Struct, frozen=True):
    ...     cents: int
    >>> eventlog.register_upcaster("doc.price_set", 1, lambda d: {"cents": round(d["eur"] * 100)})
    >>> eventlog.model.registry.upcast("doc.price_set", 1, {"eur": 2.5})
    {'cents': 250}
    """
    if name in _ALIASES:
        raise ValueError(
            f"{name!r} is an alias of {_ALIASES[name]!r}; register upcasters under the current "
            "name (versions continue across a rename)"
        )
    info = _BY_NAME.get(name)
    if info is None:
        raise ValueError(
            f"no event type {name!r} is registered; decorate its class with "
            f"@eventlog.event_type({name!r}, version=...) before registering upcasters"
        )
    if isinstance(from_version, bool) or not isinstance(from_version, int):
        raise TypeError(f"from_version must be an int, got {from_version!r}")
    if not 1 <= from_version < info.version:
        raise ValueError(
            f"event type {name!r} is at version {info.version}: an upcaster goes from a "
            f"version in 1..{info.version - 1} to the next, got from_version={from_version}; "
            "bump the version in @event_type first"
        )
    if not callable(fn):
        raise TypeError(f"upcaster of {name!r} v{from_version} must be callable, got {fn!r}")
    key = (name, from_version)
    if key in _UPCASTERS and _UPCASTERS[key] is not fn:
        raise ValueError(
            f"an upcaster for {name!r} from version {from_version} is already registered; "
            "one function per version step"
        )
    _UPCASTERS[key] = fn


def registered(name: str) -> EventType | None:
    """The registered type stored under ``name`` (its current name or an alias), or None."""
    info = _BY_NAME.get(name)
    if info is None:
        current = _ALIASES.get(name)
        if current is not None:
            info = _BY_NAME[current]
    return info


class UpcastFailed(Exception):
    """Why a stored payload cannot be brought to its type's current version (internal)."""


def upcast(name: str, version: int, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (stored as ``name`` at ``version``) brought to the type's current version.

    Raises ``UpcastFailed`` with the reason (a missing upcaster, one that raised or returned
    something else than a dict); ``name`` may be an alias.
    """
    info = registered(name)
    if info is None:
        raise UpcastFailed(f"no event type {name!r} is registered")
    for step in range(version, info.version):
        fn = _UPCASTERS.get((info.name, step))
        if fn is None:
            raise UpcastFailed(
                f"{info.name!r} v{step} has no upcaster to v{step + 1}; register one with "
                f"eventlog.register_upcaster({info.name!r}, from_version={step}, fn=...)"
            )
        try:
            data = fn(data)
        except Exception as exc:
            raise UpcastFailed(
                f"the upcaster of {info.name!r} from v{step} raised {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(data, dict):
            raise UpcastFailed(
                f"the upcaster of {info.name!r} from v{step} returned "
                f"{type(data).__name__}, not a dict"
            )
    return data
