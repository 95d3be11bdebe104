"""Faults: damaged bytes in the LMDB file, events over the size limit.

(Space: tests/test_map_growth.py. Stale readers: tests/test_stale_readers.py. Fork:
tests/test_fork.py. Permissions: tests/test_permissions.py. Kills: tests/test_crash_campaign.py.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from eventlog import (
    MAX_EVENT_BYTES,
    CorruptRecordError,
    EventTooLargeError,
    ImportFileError,
    RawEvent,
    RunStore,
    UserMessage,
)
from eventlog.events import (
    ModelStarted,
    RunStarted,
    Success,
    TextDelta,
    TokenUsage,
    ToolExecutionFinished,
    UsageRecorded,
)
from eventlog.storage.codec import decode_event, encode_event

EVENTLOG = str(Path(sys.executable).parent / "eventlog")


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EVENTLOG, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def two_runs(path: Path) -> tuple[UUID, UUID, bytes]:
    """Runs A (3 events) and B (2 events); returns their ids and A's stored seq 2."""
    with RunStore.open(path) as store:
        sid = store.create_session().id
        a = store.create_run(sid, provider="p", model="m").id
        b = store.create_run(sid, provider="p", model="m").id
        store.append_events(a, [RunStarted(sid, "p", "m"), TextDelta("damaged"), TextDelta("c")])
        store.append_events(b, [TextDelta("b1"), TextDelta("b2")])
        value = store.core.backend.read(
            lambda txn: txn.get("events", store.core.engine.index.event_key(txn, a, 2))
        )
    assert value is not None
    return a, b, value


def damage_file(path: Path, value: bytes, offset: int, new: bytes) -> None:
    """Overwrite bytes of ``value`` wherever it lies in data.mdb (the store is closed).

    LMDB copies pages on write, so a value can also sit in older, free pages: damage every
    copy, so the live one is damaged for sure.
    """
    data = path / "data.mdb"
    blob = data.read_bytes()
    at = blob.find(value)
    assert at >= 0, "the value is in the file"
    with data.open("r+b") as fh:
        while at >= 0:
            fh.seek(at + offset)
            fh.write(new)
            at = blob.find(value, at + 1)


@pytest.mark.parametrize(
    ("offset", "new"),
    [
        (0, b"\xc1"),  # the envelope's array header -> a byte msgpack never uses
        (1, b"\xbf"),  # the type name's length -> the decoder reads past the field
    ],
    ids=["header", "length"],
)
def test_damaged_event_in_the_file_is_reported_everywhere(
    tmp_path: Path, offset: int, new: bytes
) -> None:
    path = tmp_path / "store"
    a, b, value = two_runs(path)
    damage_file(path, value, offset, new)
    with RunStore.open(path) as store:
        with pytest.raises(CorruptRecordError, match=f"run {a} seq 2") as info:
            store.list_events(a)
        assert (info.value.run_id, info.value.seq) == (a, 2)
        with pytest.raises(CorruptRecordError, match=f"run {a} seq 2"):
            store.read_log()
        # everything else stays readable
        assert [r.seq for r in store.list_events(a, to_seq=1)] == [1]
        assert [r.seq for r in store.list_events(a, after_seq=2)] == [3]
        assert [r.seq for r in store.list_events(b)] == [1, 2]
        state = store.get_run_state(a)
        assert state is not None
        assert state.last_seq == 3
        problems = store.verify()
        assert [(p.kind, p.run_id, p.seq) for p in problems if p.kind == "undecodable"] == [
            ("undecodable", a, 2)
        ]
        # and the store still takes appends to the other run
        assert store.append_event(b, TextDelta("b3")).seq == 3

    verify = cli("verify", "--db", path, "--json")
    assert verify.returncode == 1
    reported = json.loads(verify.stdout)
    assert {"kind": "undecodable", "run_id": str(a), "seq": 2}.items() <= reported[0].items()
    export = cli("export", "--all", "--db", path, "-o", tmp_path / "out.jsonl")
    assert export.returncode == 1
    assert f"run {a} seq 2" in export.stderr
    assert "nothing was written to" in export.stderr  # no partial file is left
    assert not (tmp_path / "out.jsonl").exists()
    assert "Traceback" not in export.stderr
    events = cli("events", str(a), "--db", path)
    assert events.returncode == 1
    assert f"run {a} seq 2" in events.stderr
    assert cli("events", str(b), "--db", path).returncode == 0


def test_damage_that_still_decodes_is_caught_by_the_checksum(tmp_path: Path) -> None:
    """Damage that leaves well-formed msgpack: "TextDelta" becomes "Te\\0\\0\\0elta", which
    would read back as an unknown (raw) type. The value's CRC-32 catches it: reads, verify()
    and the CLI report that record, and every other record stays readable."""
    path = tmp_path / "store"
    a, b, value = two_runs(path)
    damage_file(path, value, 4, b"\x00\x00\x00")
    with RunStore.open(path) as store:
        with pytest.raises(CorruptRecordError, match=f"run {a} seq 2.*CRC"):
            store.list_events(a)
        assert [r.seq for r in store.list_events(a, to_seq=1)] == [1]
        assert [r.seq for r in store.list_events(b)] == [1, 2]
        problems = [(p.kind, p.run_id, p.seq) for p in store.verify()]
        assert ("undecodable", a, 2) in problems
    verify = cli("verify", "--db", path, "--json")
    assert verify.returncode == 1
    assert f"run {a} seq 2" in verify.stdout


def test_every_single_byte_change_is_a_corrupt_record() -> None:
    """Exhaustive: every offset of four stored events, xor 1..255 - 136,170 variants.

    Every one raises CorruptRecordError naming run and seq (the CRC-32 detects any change of
    up to 32 consecutive bits); nothing else ever comes out, and nothing decodes as data.
    """
    run_id = uuid4()
    now = datetime(2026, 1, 1, tzinfo=UTC)
    events = [
        TextDelta("hello world"),
        ModelStarted("openai", "gpt-4o", 3),
        ToolExecutionFinished("c1", "search", Success({"hits": 2}), 12),
        UsageRecorded(TokenUsage(10, 5, 15)),
    ]
    values = [encode_event(e, 7, now, uuid4()) for e in events]
    assert sum(map(len, values)) == 534
    corrupt = 0
    for value in values:
        assert decode_event(run_id, 1, value).event in events
        for i in range(len(value)):
            for mask in range(1, 256):
                damaged = bytearray(value)
                damaged[i] ^= mask
                with pytest.raises(CorruptRecordError) as info:
                    decode_event(run_id, 1, bytes(damaged))
                assert (info.value.run_id, info.value.seq) == (run_id, 1)
                corrupt += 1
    assert corrupt == 534 * 255


# -- the maximum event size ---------------------------------------------------------------


def test_event_over_the_maximum_size_is_refused_naming_run_and_size(tmp_path: Path) -> None:
    with RunStore.open(tmp_path / "s", durability="fast") as store:
        sid = store.create_session().id
        run = store.create_run(sid, provider="p", model="m").id
        store.append_event(run, TextDelta("before"))
        huge = TextDelta("x" * MAX_EVENT_BYTES)
        with pytest.raises(EventTooLargeError) as info:
            store.append_events(run, [TextDelta("ok"), huge])
        err = info.value
        assert isinstance(err, ValueError)
        assert (err.run_id, err.seq, err.event_type) == (run, 3, "TextDelta")
        assert err.size > MAX_EVENT_BYTES == err.max_bytes
        assert f"run {run}" in str(err)
        assert str(err.size) in str(err)
        assert "16 MiB" in str(err)
        # nothing of the batch was written
        assert [r.seq for r in store.list_events(run)] == [1]
        assert store.last_position() == 1
        with pytest.raises(EventTooLargeError):
            store.append_event(run, RawEvent("Blob", 1, {"b": "x" * MAX_EVENT_BYTES}))
        with pytest.raises(EventTooLargeError):
            store.append_message(sid, UserMessage("x" * MAX_EVENT_BYTES))
        assert store.list_messages(sid) == []
        # just under the limit is fine, and the store is consistent
        record = store.append_event(run, TextDelta("y" * (MAX_EVENT_BYTES - 200)))
        assert (record.seq, record.position) == (2, 2)
        assert store.verify() == []


def test_import_of_an_event_over_the_maximum_size_names_the_line(tmp_path: Path) -> None:
    with RunStore.open(tmp_path / "src", durability="fast") as store:
        run = store.create_run(store.ensure_session(), provider="p", model="m").id
        store.append_event(run, TextDelta("small"))
        lines = list(store.export_jsonl())[:-1]  # (a trailer would no longer match)
    event = json.loads(lines[-1])
    event["payload"]["delta"] = "x" * (MAX_EVENT_BYTES + 1)
    lines[-1] = json.dumps(event)
    with RunStore.open(tmp_path / "dst", durability="fast") as target:
        with pytest.raises(ImportFileError, match=f"line {len(lines)}: .*maximum event size"):
            target.import_jsonl(lines)
        assert target.count_runs() == 0
        assert target.last_position() == 0
