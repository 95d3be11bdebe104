"""Readers killed while holding a read transaction do not make the file grow without bound.

A dead reader's slot in lock.mdb keeps its snapshot's transaction id, so LMDB may not reuse any
page freed after it: a writer that keeps rewriting data then grows the file with every commit.
The backend clears such slots (``mdb_reader_check``) on open, every ``READER_CHECK_INTERVAL``
seconds in a process that writes, and before it grows the map. The experiment: 5 reader
processes each take a read transaction and are SIGKILLed holding it, then a writer churns
(~30 MB appended and deleted). With the periodic check the file stays small; with the check
pushed out of reach (the control) it grows with the churn - so the test can tell them apart.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from multiprocessing.synchronize import Event as EventFlag
from pathlib import Path

import pytest

import eventlog.storage.lmdb as lmdb_backend
from eventlog import RunStore
from eventlog.events import TextDelta

MiB = 1 << 20
READERS = 5
CHURN_ROUNDS = 150  # x 200 KB appended then deleted = 30 MB written
READY_TIMEOUT = 60.0


def hold_a_read_transaction(path: str, ready: EventFlag, forever: EventFlag) -> None:
    """Open a read transaction and block in it until killed."""
    with RunStore.open(path, readonly=True) as store:

        def block(_txn: object) -> None:
            ready.set()
            forever.wait()  # never set: the parent kills this process

        store.core.backend.read(block)


def churn(store: RunStore, rounds: int) -> None:
    sid = store.create_session().id
    for _ in range(rounds):
        run = store.create_run(sid, provider="p", model="m")
        store.append_events(run.id, [TextDelta("x" * 10_000) for _ in range(20)])
        store.delete_run(run.id)


def kill_readers_holding_transactions(path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    forever = ctx.Event()
    for _ in range(READERS):
        ready = ctx.Event()
        proc = ctx.Process(target=hold_a_read_transaction, args=(str(path), ready, forever))
        proc.start()
        assert ready.wait(READY_TIMEOUT), "the reader never opened its transaction"
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(READY_TIMEOUT)
        assert proc.exitcode == -signal.SIGKILL


def file_size_after_churn(path: Path) -> tuple[int, int]:
    """(size of data.mdb after the churn, stale slots left at the end)."""
    with RunStore.open(path, durability="fast") as store:
        churn(store, 5)  # a baseline, before any reader dies
        kill_readers_holding_transactions(path)
        churn(store, CHURN_ROUNDS)
        assert store.verify() == []
        backend = store.core.backend
        assert isinstance(backend, lmdb_backend.LmdbBackend)
        size = backend.info()["used_bytes"]  # the map's pages in use (the file is sparse)
        left = backend.clear_stale_readers()
    return size, left


def test_killed_readers_do_not_make_the_file_grow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lmdb_backend, "READER_CHECK_INTERVAL", 0.0)  # check on every write
    size, left = file_size_after_churn(tmp_path / "store")
    assert size < 4 * MiB  # ~1 MB of live data at any time, 30 MB written
    assert left == 0


def test_control_without_the_periodic_check_the_file_grows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lmdb_backend, "READER_CHECK_INTERVAL", 1e9)  # never, in this test
    size, left = file_size_after_churn(tmp_path / "store")
    assert size > 16 * MiB  # every churned page was kept: the dead readers pinned them
    # the last dead reader's slot was still there (each new reader's open cleared the previous
    # ones: the check on open)
    assert left == 1
