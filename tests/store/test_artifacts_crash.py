"""SIGKILL while artifacts are written and collected: no record without its blob, no garbage.

A child process puts, overwrites and deletes artifacts in a loop (blob writes, event commits,
collections after deletes) and is killed with SIGKILL at a random point; opening the store
again must sweep what the crash left (unreferenced blobs, temporary files of the dead
process) and ``verify()`` must find every record's blob whole. ``make torture`` style
campaigns would run more rounds; here three per test keep it quick.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from eventlog import RunStore
from eventlog.storage.blobs import FileBlobs

_CHILD = r"""
import os, random, sys
from eventlog import RunStore
store = RunStore.open(sys.argv[1])
rng = random.Random(int(sys.argv[2]))
sid = store.create_session().id
live = []
i = 0
while True:
    i += 1
    data = os.urandom(rng.choice([10, 4096, 300_000]))
    live.append(store.artifacts.put(sid, f"a{i % 5}", data).id)
    if len(live) > 3:
        store.artifacts.delete(live.pop(rng.randrange(len(live))))
    if i % 7 == 0:
        store.delete_session(sid)
        sid = store.create_session().id
        live = []
    print(i, flush=True)
"""


def _crash_once(path: Path, seed: int) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), str(seed)],
        stdout=subprocess.PIPE,
        env=env,
    )
    assert child.stdout is not None
    wanted = random.Random(seed).randint(1, 25)
    for _ in range(wanted):  # wait on the child's progress, not on the clock
        line = child.stdout.readline()
        assert line, "the child ended before it was killed"
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    child.stdout.close()


def _check(path: Path) -> None:
    with RunStore.open(path) as store:  # the open sweeps what the crash left
        assert store.verify() == []
        sessions = store.list_sessions(limit=1000)
        records = [a for s in sessions for a in store.artifacts.list_by_session(s.id)]
        referenced = {a.sha256 for a in records}
        files = FileBlobs(path / "blobs")
        assert set(files.shas()) == referenced  # no garbage, nothing missing
        assert not files.tmp.is_dir() or list(files.tmp.iterdir()) == []
        assert store.stats().artifacts == len(records)


@pytest.mark.parametrize("seed", [1])
def test_sigkill_during_puts_deletes_and_collection(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "store"
    for round_ in range(3):
        _crash_once(path, seed * 100 + round_)
        _check(path)


def test_a_dead_process_temp_file_and_an_unreferenced_blob_are_swept(tmp_path: Path) -> None:
    path = tmp_path / "store"
    with RunStore.open(path) as store:
        sid = store.create_session().id
        kept = store.artifacts.put(sid, "kept", b"kept")
    files = FileBlobs(path / "blobs")
    staged = files.stage([b"orphan: a crash after the link, before the commit"])
    assert staged.temp is not None
    dead = staged.temp.with_name("999999999-dead.part")  # no such pid
    staged.temp.rename(dead)
    with RunStore.open(path, readonly=True):
        assert dead.exists()  # a read-only open leaves everything as it is
    with RunStore.open(path) as store:
        assert not dead.exists()
        assert not files.exists(staged.sha256)
        assert store.artifacts.read(kept.id) == b"kept"
