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


class _CountingTx(ScratchTx):
    """A scratch keyspace that records the keys written to it."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []

    def put(self, key: bytes, value: bytes) -> None:
        self.written.append(key)
        super().put(key, value)

    def delete(self, key: bytes) -> None:
        self.written.append(key)
        super().delete(key)


def test_fresh_reads_miss_the_view_below_and_flush_writes_only_the_difference() -> None:
    base = _CountingTx()
    for key, value in ((b"same", b"1"), (b"changed", b"old"), (b"stray", b"x"), (b"del", b"y")):
        base.put(key, value)
    base.written.clear()
    tx = BufferedTx(base, fresh=True)
    assert tx.get(b"same") is None  # the view below counts as empty
    assert list(tx.scan(b"s")) == []  # (scan flushes first: the view is now what was written)
    assert base.data == {}
    tx = BufferedTx(base, fresh=True)
    base.data.update({b"same": b"1", b"changed": b"old", b"stray": b"x", b"del": b"y"})
    base.written.clear()
    tx.begin()
    tx.put(b"same", b"1")
    tx.put(b"changed", b"new")
    tx.put(b"del", b"z")
    tx.delete(b"del")
    tx.put(b"added", b"2")
    assert list(tx.scan()) == [(b"added", b"2"), (b"changed", b"new"), (b"same", b"1")]
    tx.commit()
    tx.flush()
    assert base.data == {b"added": b"2", b"changed": b"new", b"same": b"1"}
    assert sorted(base.written) == [b"added", b"changed", b"del", b"stray"]  # not b"same"
    assert tx.get(b"stray") is None  # reads the view below again
    assert tx.get(b"same") == b"1"
