"""`eventlog streams` and stream names in the CLI find the kinds without walking the store.

The kinds come from ``list_stream_kinds`` (one seek per kind); ``stats()`` reads every key,
so these tests make it fail: a command that still called it would exit with an error.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli_commands import _restore_logging, ok  # noqa: F401 - the fixture is autouse

from eventlog import RunStore, stream_id_for
from eventlog.events import TextDelta

KINDS = ("cli.beta", "cli.alpha", "cli.alpha.two")


@pytest.fixture
def streams_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "store"
    with RunStore.open(path) as store:
        run = store.create_run(store.ensure_session(), provider="p", model="m")
        store.append_event(run.id, TextDelta("not a stream of another kind"))
        for kind in KINDS:
            sid = stream_id_for(kind, f"name-{kind}")
            store.append_to_stream(
                sid, [TextDelta(kind)], expected_seq=0, kind=kind, metadata={"k": kind}
            )

    def walk(self: RunStore) -> None:
        raise AssertionError("stats() walks every key of the store")

    monkeypatch.setattr(RunStore, "stats", walk)
    return path


def test_streams_lists_every_kind_without_a_walk(streams_db: Path) -> None:
    listed = json.loads(ok("streams", "--db", streams_db, "--json").stdout)
    assert [(s["kind"], s["events"], s["metadata"]) for s in listed] == [
        (kind, 1, {"k": kind}) for kind in sorted(KINDS)
    ]
    assert [s["id"] for s in listed] == [
        str(stream_id_for(kind, f"name-{kind}")) for kind in sorted(KINDS)
    ]


def test_a_stream_name_resolves_in_any_kind_without_a_walk(streams_db: Path) -> None:
    for kind in KINDS:
        events = json.loads(ok("events", f"name-{kind}", "--db", streams_db, "--json").stdout)
        assert [e["payload"]["delta"] for e in events] == [kind]
