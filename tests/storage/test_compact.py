"""``compact``: the LMDB file shrinks, nothing is lost, other processes are never hurt.

Real processes: one that holds the store open (compact refuses, then --wait outlasts it),
writers and a reader that open, append or read, and close in a loop while compactions run
(every event is there, counts match, the reader never fails or goes back), and compactions
SIGKILLed at random points (the store reopens whole every time). PostgreSQL: VACUUM.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from uuid import UUID

import pytest
from pg_support import url_for

from eventlog import RunStore
from eventlog.errors import ConfigError, StoreBusyError, StoreError
from eventlog.events import TextDelta
from eventlog.storage.lmdb_compact import TEMP_NAME
from eventlog.tools.compact import compact_store


def fill(path: Path, *, runs: int = 60, kept: int = 6, events: int = 40) -> list[UUID]:
    """A store where most runs were deleted (free pages to reclaim); the kept runs' ids."""
    with RunStore.open(path, durability="fast") as store:
        sid = store.ensure_session()
        ids = []
        for _ in range(runs):
            run = store.create_run(sid, provider="p", model="m")
            store.append_events(run.id, [TextDelta("x" * 400)] * events)
            ids.append(run.id)
        for rid in ids[kept:]:
            store.delete_run(rid)
        store.flush()
    return ids[:kept]


def child(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def check_whole(path: Path, expected: dict[UUID, int]) -> None:
    with RunStore.open(path) as store:
        assert store.verify() == []
        assert {rid: len(store.list_events(rid)) for rid in expected} == expected


HOLDER = """
    import sys
    from eventlog import RunStore
    with RunStore.open(sys.argv[1], readonly=True) as store:
        print("open", flush=True)
        sys.stdin.readline()
"""


def test_compact_shrinks_and_refuses_while_another_process_has_it_open(tmp_path: Path) -> None:
    path = tmp_path / "store"
    kept = fill(path)
    holder = child(HOLDER, str(path))
    assert holder.stdout is not None
    assert holder.stdin is not None
    assert holder.stdout.readline() == "open\n"
    with pytest.raises(StoreBusyError, match="open in another process"):
        compact_store(path)
    with RunStore.open(path), pytest.raises(StoreError, match="open in this process"):
        compact_store(path)
    with pytest.raises(ConfigError, match="PostgreSQL"):
        compact_store(path, full=True)
    holder.stdin.write("\n")
    holder.stdin.flush()
    report = compact_store(path, wait=30)  # waits for the holder to close the store
    holder.communicate(timeout=30)
    assert holder.returncode == 0
    assert report.bytes_after < report.bytes_before / 3
    assert report.bytes_after == (path / "data.mdb").stat().st_size
    check_whole(path, dict.fromkeys(kept, 40))


WRITER = """
    import sys
    from uuid import UUID
    from eventlog import RunStore
    from eventlog.events import TextDelta
    path, run, rounds = sys.argv[1], UUID(sys.argv[2]), int(sys.argv[3])
    for i in range(rounds):
        with RunStore.open(path) as store:
            store.append_events(run, [TextDelta(f"{i}")] * 5)
        if i == 0:
            print("started", flush=True)
"""

READER = """
    import os, sys
    from eventlog import RunStore
    path, stop = sys.argv[1], sys.argv[2]
    last, reads = -1, 0
    while not os.path.exists(stop) or reads == 0:
        with RunStore.open(path, readonly=True) as store:
            n = store.last_position()
            assert store.verify() == [] if reads % 10 == 0 else True
        assert n >= last, (n, last)
        last, reads = n, reads + 1
    print(reads, flush=True)
"""


def test_writers_and_a_reader_in_other_processes_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "store"
    kept = fill(path)
    targets, rounds = kept[:2], 10
    stop = tmp_path / "stop"
    writers = [child(WRITER, str(path), str(rid), str(rounds)) for rid in targets]
    reader = child(READER, str(path), str(stop))
    for w in writers:
        assert w.stdout is not None
        assert w.stdout.readline() == "started\n"
    reports = [compact_store(path, wait=60) for _ in range(3)]  # between the writers' opens
    for w in writers:
        err = w.communicate(timeout=60)[1]
        assert w.returncode == 0, err
    stop.touch()
    out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    assert int(out) > 0
    assert reports[0].bytes_after < reports[0].bytes_before
    expected = dict.fromkeys(kept, 40)
    expected.update(dict.fromkeys(targets, 40 + 5 * rounds))
    check_whole(path, expected)


COMPACTOR = """
    import sys
    from eventlog.tools.compact import compact_store
    print("go", flush=True)
    compact_store(sys.argv[1])
"""


def test_sigkill_during_compact_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "store"
    kept = fill(path, runs=120, kept=10, events=60)
    rng = random.Random(18)
    for _ in range(3):
        proc = child(COMPACTOR, str(path))
        assert proc.stdout is not None
        assert proc.stdout.readline() == "go\n"
        deadline = time.monotonic() + rng.uniform(0.0, 0.05)
        while time.monotonic() < deadline and proc.poll() is None:
            pass  # a random point in the compaction (busy wait: no sleep to time a kill)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        check_whole(path, dict.fromkeys(kept, 60))
    compact_store(path)
    assert not os.path.exists(path / TEMP_NAME)  # a killed compaction's copy is removed
    check_whole(path, dict.fromkeys(kept, 60))


@pytest.mark.usefixtures("pg_schemas")
def test_postgres_compact_is_a_vacuum(tmp_path: Path) -> None:
    url = url_for(tmp_path)
    with RunStore.open(url) as store:
        run = store.create_run(store.ensure_session(), provider="p", model="m")
        store.append_events(run.id, [TextDelta("x")] * 20)
    plain = compact_store(url)
    full = compact_store(url, full=True)
    assert (plain.backend, plain.full, full.full) == ("postgresql", False, True)
    assert min(plain.bytes_before, full.bytes_after) > 0
    with RunStore.open(url) as store:
        assert len(store.list_events(run.id)) == 20
        assert store.verify() == []
