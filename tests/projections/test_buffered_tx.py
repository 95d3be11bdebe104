"""BufferedTx, the keyspace a rebuild writes through: reads its own writes, undoes a batch."""

from __future__ import annotations

import pytest

from eventlog.engine.projectors import ScratchTx
from eventlog.engine.rebuild import BufferedTx


def test_reads_see_pending_writes_and_flush_writes_them_in_order() -> None:
    base = ScratchTx()
    base.put(b"a", b"1")
    base.put(b"gone", b"x")
    tx = BufferedTx(base)
    tx.put(b"c", b"3")
    tx.put(b"b", b"2")
    tx.delete(b"gone")
    assert (tx.get(b"a"), tx.get(b"b"), tx.get(b"gone")) == (b"1", b"2", None)
    assert base.data == {b"a": b"1", b"gone": b"x"}  # nothing written yet
    assert list(tx.scan()) == [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")]  # flushes first
    assert base.data == {b"a": b"1", b"b": b"2", b"c": b"3"}


def test_rollback_undoes_the_writes_since_begin_and_scan_merges_meanwhile() -> None:
    base = ScratchTx()
    base.put(b"k1", b"old")
    tx = BufferedTx(base, limit=2)
    tx.put(b"k2", b"kept")
    tx.begin()
    tx.put(b"k1", b"new")
    tx.put(b"k3", b"new")
    tx.put(b"k4", b"new")  # over the limit, but no flush inside a batch
    tx.delete(b"k2")
    assert list(tx.scan(b"k")) == [(b"k1", b"new"), (b"k3", b"new"), (b"k4", b"new")]
    tx.rollback()
    assert (tx.get(b"k1"), tx.get(b"k2"), tx.get(b"k3")) == (b"old", b"kept", None)
    tx.flush()
    assert base.data == {b"k1": b"old", b"k2": b"kept"}


def test_bad_keys_raise_the_keyspace_error_and_write_nothing() -> None:
    base = ScratchTx()
    tx = BufferedTx(base)
    with pytest.raises(TypeError, match="projection keys are bytes"):
        tx.put("text", b"v")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="projection key too long"):
        tx.put(b"x" * 1000, b"v")
    tx.flush()
    assert base.data == {}
