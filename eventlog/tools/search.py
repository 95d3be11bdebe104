"""Finding things in a store: events whose payload matches a regex, runs by time and metadata.

:func:`search_events` is ``eventlog grep``; :func:`filter_runs` is ``eventlog runs`` with
``--since/--until/--model/--provider/--metadata``. Both read through a store's public API
(a :class:`~eventlog.RunStore` satisfies the protocols) and take a bad argument as a
:class:`~eventlog.errors.QueryError` naming it.

>>> from eventlog import RunStore
>>> from eventlog.events import Failure, TextDelta, ToolExecutionFinished
>>> store = RunStore.in_memory()
>>> run = store.create_run(store.ensure_session(), provider="openai", model="gpt-4o")
>>> _ = store.append_events(run.id, [
...     TextDelta("hello"),
...     ToolExecutionFinished("c1", "run_tests", Failure("timed out after 30s"), 900),
... ])
>>> [(h.seq, h.field, h.text) for h in search_events(store, r"timed out")]
[(2, 'result.error', 'timed out after 30s')]
>>> [r.model for r in filter_runs(store, metadata={})]
['gpt-4o']
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

import msgspec

from eventlog.errors import QueryError
from eventlog.model.records import EventRecord, RunRecord
from eventlog.model.status import RunStatus
from eventlog.tools.story import payload_of

__all__ = [
    "LogReader",
    "RunLister",
    "SearchHit",
    "compile_pattern",
    "filter_runs",
    "metadata_filter",
    "search_events",
]

_PAGE = 1000


class LogReader(Protocol):
    """What :func:`search_events` reads: the log in position order, or one stream."""

    def read_log(self, *, after_position: int = 0, limit: int | None = None) -> list[EventRecord]:
        """Events of every stream in position order."""
        ...

    def read_stream(
        self,
        stream_id: UUID | str,
        /,
        *,
        after_seq: int = 0,
        to_seq: int | None = None,
        limit: int | None = None,
        reverse: bool = False,
    ) -> list[EventRecord]:
        """One stream's events in seq order."""
        ...


class RunLister(Protocol):
    """What :func:`filter_runs` reads: the status index, newest first."""

    def list_runs_filtered(
        self,
        *,
        session_id: UUID | str | None = None,
        status: RunStatus | str | None = None,
        limit: int = 100,
        offset: int = 0,
        unresolved: bool = False,
        after: UUID | str | None = None,
    ) -> list[RunRecord]:
        """Runs newest first (``after``: the ones that follow this run)."""
        ...


class SearchHit(msgspec.Struct):
    """An event whose payload matched: where (``field``, dotted path) and the matching value."""

    record: EventRecord
    field: str
    text: str

    @property
    def seq(self) -> int:
        """The event's seq in its stream."""
        return self.record.seq


def compile_pattern(pattern: str, *, ignore_case: bool = False) -> re.Pattern[str]:
    """``pattern`` compiled, or a :class:`~eventlog.errors.QueryError` saying what is wrong.

    >>> from eventlog.errors import QueryError
    >>> try:
    ...     compile_pattern("time(d out")
    ... except QueryError as exc:
    ...     exc.option
    'pattern'
    """
    try:
        return re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    except re.error as exc:
        raise QueryError(
            "pattern",
            pattern,
            f"{exc} (escape special characters with a backslash, e.g. \\( or \\.)",
        ) from None


def _leaves(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _leaves(inner, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _leaves(inner, f"{path}[{i}]")
    elif isinstance(value, str):
        yield path, value
    elif value is not None:
        yield path, json.dumps(value)


def _match(record: EventRecord, pattern: re.Pattern[str]) -> SearchHit | None:
    payload = payload_of(record)
    for key in ("type", "timestamp"):
        payload.pop(key, None)
    for path, text in _leaves(payload, ""):
        if pattern.search(text):
            return SearchHit(record, path, text)
    return None


def _source(reader: LogReader, stream_ids: Sequence[UUID] | None) -> Iterator[EventRecord]:
    if stream_ids is not None:
        for sid in stream_ids:
            after = 0
            while chunk := reader.read_stream(sid, after_seq=after, limit=_PAGE):
                yield from chunk
                after = chunk[-1].seq
        return
    after = 0
    while chunk := reader.read_log(after_position=after, limit=_PAGE):
        yield from chunk
        after = chunk[-1].position


def search_events(
    reader: LogReader,
    pattern: str | re.Pattern[str],
    *,
    types: Sequence[str] | None = None,
    stream_ids: Sequence[UUID] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = None,
) -> Iterator[SearchHit]:
    """Events whose payload has a value ``pattern`` matches (``re.search``), in log order.

    Every string value of the payload is searched (numbers and booleans as JSON text; the
    event's ``type`` and ``timestamp`` are not). ``types``: only these stored type names;
    ``stream_ids``: only these streams (runs, sessions or other kinds), one after the other;
    ``since``/``until``: only events stored in ``[since, until)``; ``limit``: stop after so
    many hits. A bad pattern is a :class:`~eventlog.errors.QueryError`.
    """
    compiled = compile_pattern(pattern) if isinstance(pattern, str) else pattern
    wanted = None if not types else set(types)
    found = 0
    if limit is not None and limit <= 0:
        return
    for record in _source(reader, stream_ids):
        if wanted is not None and record.type not in wanted:
            continue
        if since is not None and record.recorded_at < since:
            continue
        if until is not None and record.recorded_at >= until:
            continue
        hit = _match(record, compiled)
        if hit is not None:
            yield hit
            found += 1
            if limit is not None and found >= limit:
                return


def metadata_filter(items: Sequence[str], *, option: str = "--metadata") -> dict[str, Any]:
    """``["user=ada", "tries=3"]`` as a mapping; a value that parses as JSON is that value.

    >>> metadata_filter(["user=ada", "tries=3", "demo=true"])
    {'user': 'ada', 'tries': 3, 'demo': True}
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise QueryError(option, item, "write it as key=value, e.g. user=ada")
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out


def _meta_ok(metadata: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    for key, value in wanted.items():
        if key not in metadata:
            return False
        have = metadata[key]
        if have != value and str(have) != str(value):
            return False
    return True


def filter_runs(
    reader: RunLister,
    *,
    session_id: UUID | None = None,
    status: RunStatus | str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    model: str | None = None,
    provider: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    limit: int = 100,
    offset: int = 0,
    unresolved: bool = False,
    after: UUID | None = None,
) -> list[RunRecord]:
    """Runs newest first that match every filter given, ``limit`` of them from ``offset``.

    ``since``/``until``: created in ``[since, until)``; ``model``/``provider``: equal to;
    ``metadata``: each key present with that value (``3`` also matches ``"3"``). Pages
    through the status index by keyset (each page after the last run of the one before;
    ``after``: start after this run) and stops at the first run created before ``since``.
    ``unresolved``: only runs with unresolved tool calls (the tool ledger's index).
    """
    out: list[RunRecord] = []
    skipped = 0
    cursor = after
    if limit <= 0:
        return out
    sifted = any(x is not None for x in (since, until, model, provider)) or bool(metadata)
    size = _PAGE if sifted else min(_PAGE, limit + offset)  # unfiltered: read what is needed
    while True:
        page = reader.list_runs_filtered(
            session_id=session_id,
            status=status,
            limit=size,
            unresolved=unresolved,
            after=cursor,
        )
        for run in page:
            if since is not None and run.created_at < since:
                return out
            if until is not None and run.created_at >= until:
                continue
            if model is not None and run.model != model:
                continue
            if provider is not None and run.provider != provider:
                continue
            if metadata and not _meta_ok(run.metadata, metadata):
                continue
            if skipped < offset:
                skipped += 1
                continue
            out.append(run)
            if len(out) >= limit:
                return out
        if len(page) < size:
            return out
        cursor = page[-1].id
