"""How deep a stored value may nest: checked where data enters, so every reader can read it.

An event, a run's or a session's metadata, a stream's metadata: each is a JSON-like value,
and each level of objects and lists counts (the event or record itself is level 1, as its
JSON object is). :data:`MAX_NESTING_DEPTH` is far beyond any real payload and far below what
breaks a reader (Python's JSON encoder and msgspec give up near 1,000 levels, other languages'
parsers sooner). A deeper value raises :class:`~eventlog.errors.NestingTooDeepError` when it is
appended, created or imported, and nothing is written.

>>> nesting_depth({"a": [1, {"b": 2}]})
3
>>> nesting_depth("text")
0
>>> check_depth({"a": {"b": {}}}, "append_event", "payload", max_depth=2)
Traceback (most recent call last):
...
eventlog.errors.NestingTooDeepError: append_event: payload is nested more than 2 levels deep ...
"""

from __future__ import annotations

from typing import Any

import msgspec

from eventlog.errors import NestingTooDeepError

__all__ = ["MAX_NESTING_DEPTH", "check_depth", "nesting_depth"]

#: The deepest nesting of objects and lists a stored value may have (the value itself: 1).
MAX_NESTING_DEPTH = 128

_SCALARS = (
    msgspec.inspect.StrType,
    msgspec.inspect.IntType,
    msgspec.inspect.FloatType,
    msgspec.inspect.BoolType,
    msgspec.inspect.NoneType,
    msgspec.inspect.DateTimeType,
    msgspec.inspect.DateType,
    msgspec.inspect.TimeType,
    msgspec.inspect.UUIDType,
    msgspec.inspect.EnumType,
    msgspec.inspect.LiteralType,
    msgspec.inspect.BytesType,
)
_CONTAINERS = (dict, list, tuple)
# per Struct class: the fields that may hold a container (a str-only event skips the walk)
_nested_fields: dict[type[Any], tuple[str, ...]] = {}


def _may_nest(t: msgspec.inspect.Type) -> bool:
    if isinstance(t, msgspec.inspect.UnionType):
        return any(_may_nest(u) for u in t.types)
    return not isinstance(t, _SCALARS)


def _fields_to_walk(cls: type[Any]) -> tuple[str, ...]:
    found = _nested_fields.get(cls)
    if found is None:
        try:
            info = msgspec.inspect.type_info(cls)
            fields = getattr(info, "fields", ())
            found = tuple(f.name for f in fields if _may_nest(f.type))
        except Exception:
            found = tuple(cls.__struct_fields__)
        _nested_fields[cls] = found
    return found


def nesting_depth(value: object, limit: int | None = None) -> int:
    """Levels of objects and lists in ``value`` (a Struct counts as an object; scalars: 0).

    With ``limit``, stops as soon as the depth is known to exceed it (and returns
    ``limit + 1``): a hostile value costs no more than ``limit`` levels of work. Iterative,
    so any depth is measured without recursion.
    """
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        obj, depth = stack.pop()
        if isinstance(obj, msgspec.Struct):
            children: Any = [getattr(obj, name) for name in _fields_to_walk(type(obj))]
        elif isinstance(obj, dict):
            children = obj.values()
        elif isinstance(obj, _CONTAINERS):
            children = obj
        else:
            continue
        if depth > deepest:
            deepest = depth
            if limit is not None and deepest > limit:
                return limit + 1
        for child in children:
            if isinstance(child, (*_CONTAINERS, msgspec.Struct)):
                stack.append((child, depth + 1))
    return deepest


def check_depth(
    value: object, where: str, what: str, *, max_depth: int = MAX_NESTING_DEPTH
) -> None:
    """Raise :class:`~eventlog.errors.NestingTooDeepError` if ``value`` nests too deep."""
    if _nested_fields.get(type(value)) == ():  # a Struct of scalars only (TextDelta): depth 1
        return
    if nesting_depth(value, max_depth) > max_depth:
        raise NestingTooDeepError(where, what, max_depth)
