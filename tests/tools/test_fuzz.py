"""Bad input, property-based: only the library's documented errors come out, nothing partial is in.

Targets: the decoder on arbitrary and on damaged bytes, JSONL import lines, event constructors
given values of the wrong type, ids that are not UUIDs, and the CLI's arguments. The
coverage-guided version of the first two is ``make fuzz`` (atheris, tests/fuzz/harness.py).
Figures: tests/RELIABILITY.md.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from eventlog import (
    AppendRequest,
    CorruptRecordError,
    EventLogError,
    ImportFileError,
    InvalidTransition,
    RawEvent,
    RunNotFound,
    RunStore,
)
from eventlog.cli import app
from eventlog.events import (
    EVENT_TYPES,
    ModelStarted,
    Success,
    TextDelta,
    ToolCall,
    ToolExecutionFinished,
)
from eventlog.storage.codec import (
    RUN_RECORD,
    RUN_STATE,
    SESSION,
    decode_event,
    decode_stream,
    decode_values,
    encode_event,
)
from eventlog.storage.keys import event_key

FUZZ = settings(max_examples=300, deadline=None, database=None)
SOME = settings(max_examples=150, deadline=None, database=None)
RUN = uuid4()
NOW = datetime(2026, 1, 1, tzinfo=UTC)

VALID_VALUES = [
    encode_event(TextDelta("hello"), 1, NOW, uuid4()),
    encode_event(ToolExecutionFinished("c", "t", Success({"a": [1, 2]}), 5), 2, NOW, None),
    encode_event(RawEvent("Future", 3, {"x": {"y": 1}}), 3, NOW, None),
]

# -- the decoder --------------------------------------------------------------------------


def decode_all(value: bytes) -> None:
    """Every decoder of stored bytes: a record, or CorruptRecordError - nothing else."""
    try:
        record = decode_event(RUN, 1, value)
        assert (record.run_id, record.seq) == (RUN, 1)
    except CorruptRecordError as exc:
        assert (exc.run_id, exc.seq) == (RUN, 1)
    with contextlib.suppress(CorruptRecordError):
        decode_stream(RUN, [(event_key(1, 1), value)])
    with contextlib.suppress(CorruptRecordError):
        decode_values(RUN, 1, [value])
    for codec in (RUN_STATE, RUN_RECORD, SESSION):
        try:
            codec.decode(value, "run", RUN, "state")
        except CorruptRecordError as exc:
            assert str(RUN) in str(exc)


@FUZZ
@given(st.binary(max_size=400))
def test_decoder_on_arbitrary_bytes(value: bytes) -> None:
    decode_all(value)


@FUZZ
@given(st.sampled_from(VALID_VALUES), st.data())
def test_decoder_on_damaged_envelopes(value: bytes, data: st.DataObject) -> None:
    damaged = bytearray(value)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        at = data.draw(st.integers(0, max(0, len(damaged) - 1)))
        if op == "flip" and damaged:
            damaged[at] ^= data.draw(st.integers(1, 255))
        elif op == "cut":
            del damaged[at:]
        else:
            damaged[at:at] = data.draw(st.binary(min_size=1, max_size=8))
    decode_all(bytes(damaged))


# -- JSONL import ---------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


@pytest.fixture(scope="module")
def export_lines() -> list[str]:
    store = RunStore.in_memory()
    sid = store.create_session(title="t").id
    run = store.create_run(sid, provider="p", model="m").id
    store.append_events(run, [TextDelta("a"), RawEvent("Future", 2, {"k": [1]})])
    store.append_event(run, ToolExecutionFinished("c", "t", Success({"a": 1}), 3), event_id=uuid4())
    return list(store.export_jsonl())


def import_must_be_all_or_nothing(lines: list[str]) -> None:
    store = RunStore.in_memory()
    before = list(store.export_jsonl())
    try:
        store.import_jsonl(lines)
    except ImportFileError as exc:
        # a bad line names it; lines that no longer match the trailer say the export is not whole
        assert str(exc).startswith(("line ", "not a whole export: "))
        assert list(store.export_jsonl()) == before  # nothing partial
        return
    assert store.verify() == []


@SOME
@given(st.lists(st.text(max_size=80) | st.binary(max_size=80).map(repr), max_size=5))
def test_import_of_arbitrary_lines(lines: list[str]) -> None:
    import_must_be_all_or_nothing(lines)


@SOME
@given(st.data())
def test_import_of_lines_with_one_field_replaced(
    export_lines: list[str], data: st.DataObject
) -> None:
    lines = list(export_lines)
    n = data.draw(st.integers(0, len(lines) - 1))
    obj = json.loads(lines[n])
    target: dict[str, Any] = obj
    if "payload" in obj and data.draw(st.booleans()) and isinstance(obj["payload"], dict):
        target = obj["payload"]
    key = data.draw(st.sampled_from([*sorted(target), "extra"]))
    target[key] = data.draw(json_values)
    lines[n] = json.dumps(obj)
    if data.draw(st.booleans()):
        lines = lines[n:] + lines[:n]  # and out of order
    import_must_be_all_or_nothing(lines)


# -- event constructors given the wrong types -----------------------------------------------

anything = (
    json_values
    | st.binary(max_size=8)
    | st.uuids()
    | st.datetimes()
    | st.just(object())
    | st.builds(ToolCall, st.text(max_size=5), st.text(max_size=5), json_values)
    | st.builds(Success, json_values)
)


@st.composite
def wrong_events(draw: st.DrawFn) -> Any:
    classes: list[type[msgspec.Struct]] = [*EVENT_TYPES.values(), RawEvent]
    cls = draw(st.sampled_from(classes))
    fields = msgspec.structs.fields(cls)
    kwargs = {f.name: draw(anything) for f in fields if f.required or draw(st.booleans())}
    try:
        return cls(**kwargs)
    except TypeError:  # a missing or unexpected argument: Python's own error, not ours
        return None


@FUZZ
@given(st.lists(wrong_events(), min_size=1, max_size=3))
def test_events_with_wrong_field_types(events: list[Any]) -> None:
    events = [e for e in events if e is not None]
    store = RunStore.in_memory()
    run = store.create_run(store.ensure_session(), provider="p", model="m").id
    try:
        store.append_events(run, events)
    except (TypeError, ValueError) as exc:
        # a wrong field type, or two terminal events (e.g. RunCancelled then RunFailed): the
        # lifecycle refuses the second, and so the whole batch
        refused = isinstance(exc, InvalidTransition) or "must be" in str(exc)
        assert refused or "nothing was written" in str(exc)
        assert store.list_events(run) == []
        assert store.last_position() == 0
    else:
        assert len(store.list_events(run)) == len(events)
        state = store.get_run_state(run)
        assert state is not None
        assert state.event_count == len(events)
    assert store.verify() == []
    # the run still takes a good event
    store.append_event(run, TextDelta("after"))


@SOME
@given(st.dictionaries(st.text(max_size=5) | st.integers(), anything, max_size=3))
def test_metadata_of_any_shape(metadata: dict[Any, Any]) -> None:
    store = RunStore.in_memory()
    try:
        sid = store.create_session(metadata=metadata).id
    except (TypeError, ValueError):
        assert store.list_sessions() == []
        return
    run = store.create_run(sid, provider="p", model="m", metadata=metadata)  # same shape: fine
    assert store.get_run(run.id) == run
    assert store.verify() == []


# -- ids that are not UUIDs -----------------------------------------------------------------

not_uuids = (
    st.text(max_size=40)
    | st.integers()
    | st.binary(max_size=20)
    | st.none()
    | st.floats()
    | st.lists(st.integers(), max_size=3)
)


@SOME
@given(not_uuids, st.sampled_from(["get_run", "append", "list", "delete", "create", "event_id"]))
def test_ids_that_are_not_uuids(value: Any, call: str) -> None:
    store = RunStore.in_memory()
    sid = store.ensure_session()
    run = store.create_run(sid, provider="p", model="m").id
    calls: dict[str, Callable[[], object]] = {
        "get_run": lambda: store.get_run(value),
        "append": lambda: store.append_event(value, TextDelta("x")),
        "list": lambda: store.list_events(value),
        "delete": lambda: store.delete_run(value),
        "create": lambda: store.create_run(sid, provider="p", model="m", run_id=value),
        "event_id": lambda: store.append_event(run, TextDelta("x"), event_id=value),
    }
    is_uuid = isinstance(value, str) and _parses(value)
    if value is None and call in ("create", "event_id"):
        calls[call]()  # None means "make one up" / "no idempotency key"
        return
    if is_uuid:
        with contextlib.suppress(RunNotFound):
            calls[call]()
        return
    with pytest.raises(TypeError, match="must be a UUID"):
        calls[call]()
    assert store.count_runs() == 1
    assert store.last_position() == 0


def _parses(value: str) -> bool:
    try:
        UUID(value)
    except ValueError:
        return False
    return True


# -- the CLI's arguments ----------------------------------------------------------------------

COMMANDS = ["runs", "show", "events", "replay", "tail", "sessions", "messages", "export"]
COMMANDS += ["verify", "stats", "rebuild", "import"]
WORDS = ["--json", "--nl", "--status", "failed", "bogus", "--limit", "-1", "0", "3", "--to-seq"]
WORDS += ["--diff", "--type", "TextDelta", "--no-payload", "--all", "-n", "--projector", "x"]
WORDS += ["--offset", "-o", "/nonexistent/dir/f", "--after-seq", "", "-", "zz", "ab"]


@pytest.fixture(scope="module")
def cli_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    path = tmp_path_factory.mktemp("cli") / "store"
    with RunStore.open(path, durability="fast") as store:
        sid = store.create_session().id
        run = store.create_run(sid, provider="p", model="m").id
        store.append_events(run, [TextDelta("a"), TextDelta("b")])
        store.flush()
    return path, [str(run), str(run)[:6], str(sid), str(sid)[:4]]


@settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.data())
def test_cli_arguments(cli_store: tuple[Path, list[str]], data: st.DataObject) -> None:
    path, ids = cli_store
    command = data.draw(st.sampled_from(COMMANDS))
    args = data.draw(st.lists(st.sampled_from(WORDS + ids) | st.text(max_size=12), max_size=5))
    if command == "tail":
        args = [a for a in args if a not in ("-f", "--follow")]
    # relative paths the fuzzer makes up (``export -o <text>``) land in the store's temp dir,
    # never in the directory the suite runs from
    cwd = os.getcwd()
    os.chdir(path.parent)
    try:
        result = CliRunner().invoke(app, [command, *args, "--db", str(path)])
    finally:
        os.chdir(cwd)
    # 0 ok, 1 a clean error, 2 a usage error - never a traceback
    assert result.exit_code in (0, 1, 2), (command, args, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        command,
        args,
        repr(result.exception),
    )
    with RunStore.open(path, readonly=True) as store:
        assert store.verify() == []
        assert store.count_runs() == 1


def test_errors_are_in_the_tree() -> None:
    assert issubclass(ImportFileError, EventLogError)
    assert issubclass(CorruptRecordError, EventLogError)


def test_a_wrong_item_in_a_batch_is_named_and_nothing_is_written() -> None:
    store = RunStore.in_memory()
    run = store.create_run(store.ensure_session(), provider="p", model="m").id
    bad = ModelStarted("p", "m", "3")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"append_events item 2: ModelStarted .*\$\.iteration"):
        store.append_events(run, [TextDelta("a"), TextDelta("b"), bad, TextDelta("c")])
    with pytest.raises(TypeError, match=r"append_many item 0 item 1: ModelStarted"):
        store.append_many([AppendRequest(run, [TextDelta("a"), bad])])
    assert store.list_events(run) == []
    # a good batch is stored as the checked copies, equal to what was given
    events = [TextDelta("a"), ModelStarted("p", "m", 3)]
    assert [r.event for r in store.append_events(run, events)] == events
