"""MAX_NESTING_DEPTH on every path into the store, on every backend.

A 1,000-deep document (which crashed the readers, or raised a raw RecursionError) is refused
with :class:`NestingTooDeepError` by every append path and by record creation, and nothing is
written; a document exactly at the limit is accepted and read back by every reader.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pg_support import url_for

from eventlog import MAX_NESTING_DEPTH, AppendRequest, NestingTooDeepError, RunStore
from eventlog.events import RawEvent, TextDelta, ToolCall, ToolCallCompleted
from eventlog.messages import AssistantMessage


def nested(levels: int) -> Any:
    """A JSON value of exactly ``levels`` levels of lists (0: a scalar)."""
    value: Any = "bottom"
    for _ in range(levels):
        value = [value]
    return value


def raw_at(depth: int) -> RawEvent:
    """A RawEvent whose depth is ``depth`` (the event 1, its data 2, then the lists)."""
    return RawEvent("test.deep", 1, {"v": nested(depth - 2)})


@pytest.fixture(params=["memory", "lmdb", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunStore]:
    if request.param == "memory":
        opened = RunStore.in_memory()
    elif request.param == "lmdb":
        opened = RunStore.open(tmp_path / "store")
    else:
        request.getfixturevalue("pg_schemas")
        opened = RunStore.open(url_for(tmp_path / "store"))
    with opened:
        yield opened


def every_append_path(store: RunStore) -> dict[str, Callable[[Any], object]]:
    session = store.create_session()
    run = store.create_run(session.id, provider="p", model="m")
    stream = store.create_stream(kind="test.deep")
    return {
        "append_event": lambda ev: store.append_event(run.id, ev),
        "append_events": lambda ev: store.append_events(run.id, [TextDelta("a"), ev]),
        "append_many": lambda ev: store.append_many([AppendRequest(run.id, (ev,))]),
        "append_to_stream": lambda ev: store.append_to_stream(stream.id, [ev]),
        "append_to_stream batch": lambda ev: store.append_to_stream(stream.id, [ev, ev]),
    }


@pytest.mark.parametrize("depth", [MAX_NESTING_DEPTH + 1, 1000, 5000])
def test_too_deep_events_are_refused_on_every_path(store: RunStore, depth: int) -> None:
    paths = every_append_path(store)
    deep_events = {
        "RawEvent": raw_at(depth),
        "ToolCallCompleted": ToolCallCompleted(ToolCall("c", "t", nested(depth - 2))),
    }
    before = store.last_position()
    for where, append in paths.items():
        for name, event in deep_events.items():
            with pytest.raises(NestingTooDeepError) as caught:
                append(event)
            message = str(caught.value)
            assert f"more than {MAX_NESTING_DEPTH} levels deep" in message, (where, name)
            assert "eventlog.MAX_NESTING_DEPTH" in message
            assert "nothing was written" in message
            assert caught.value.max_depth == MAX_NESTING_DEPTH
            assert isinstance(caught.value, ValueError)
    assert store.last_position() == before


def test_too_deep_records_and_messages_are_refused(store: RunStore) -> None:
    deep = {"k": nested(1000)}
    session = store.create_session()
    with pytest.raises(NestingTooDeepError):
        store.create_session(metadata=deep)
    with pytest.raises(NestingTooDeepError):
        store.create_run(session.id, provider="p", model="m", metadata=deep)
    with pytest.raises(NestingTooDeepError):
        store.create_stream(kind="test.deep", metadata=deep)
    call = ToolCall("c", "t", nested(1000))
    with pytest.raises(NestingTooDeepError):
        store.append_message(session.id, AssistantMessage("", tool_calls=[call]))
    assert [s.id for s in store.list_sessions()] == [session.id]
    assert store.list_runs(session.id) == []
    assert store.list_messages(session.id) == []


def test_a_document_at_the_limit_is_accepted_and_read_back(store: RunStore) -> None:
    paths = every_append_path(store)
    event = raw_at(MAX_NESTING_DEPTH)
    for append in paths.values():
        append(event)
    read = store.read_log()
    assert [r.event for r in read if r.type == "test.deep"] == [event] * 6
    copy = RunStore.in_memory()
    copy.import_jsonl(list(store.export_jsonl()), require_trailer=True)
    assert [r.event for r in copy.read_log() if r.type == "test.deep"] == [event] * 6
    assert store.verify() == []
