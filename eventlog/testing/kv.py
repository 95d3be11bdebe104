r"""The contract of a key-value backend: subclass :class:`KVBackendContract` once per backend.

The engine holds every rule of the store and talks to storage only through
:class:`~eventlog.storage.kv.KVBackend` and :class:`~eventlog.storage.kv.KVTxn`; a new backend
starts from this suite (the memory, LMDB and PostgreSQL backends pass it). Requires pytest.
Implement :meth:`KVBackendContract.make_backend`; set ``persistent = False`` for a backend
whose data dies with the object, ``supports_readonly = False`` if it has no read-only mode:

>>> from pathlib import Path
>>> from eventlog.storage.memory import MemoryBackend
>>> from eventlog.testing import KVBackendContract
>>> class TestMemoryKV(KVBackendContract):  # in a test module, collected by pytest
...     persistent = False
...     supports_readonly = False
...
...     def make_backend(self, path: Path, *, readonly: bool = False) -> MemoryBackend:
...         return MemoryBackend()
>>> suite = TestMemoryKV()  # each test is a plain method too
>>> backend = suite.make_backend(Path("unused"))
>>> suite.test_empty_value_is_not_a_missing_value(backend)
>>> backend.close()

The rules (each checked by a test of this module, ``kv_operations``, ``kv_transactions`` or
``kv_model``):

- **Tables.** Every name of :data:`~eventlog.storage.kv.TABLES` exists, is empty in a new
  store, and is independent of the others (same key, different tables, different values).
- **Keys** are 1 to :data:`~eventlog.storage.keys.MAX_KEY` bytes, ordered as unsigned bytes
  (``b"\x00" < b"\x00\x00" < b"\x01" < b"\xff"``), so big-endian ``>Q`` integers sort
  numerically. An empty key is never stored: ``put``/``put_many`` raise ``StoreError``
  (a failure of that request alone in a group), ``get`` finds nothing, ``delete`` answers
  False. ``b""`` is a valid range bound (``scan(t, b"")``: from the first key).
- **Values** are any bytes: ``b""`` is a value (not a missing key), large values round-trip,
  and keys and values come back as ``bytes``.
- **write(fn)** is one transaction: it commits when ``fn`` returns and returns its result;
  when ``fn`` raises anything (a ``BaseException`` too) nothing of it is kept and the same
  exception propagates. Inside, every read (``get``, ``prefetch``+``get``, ``scan``,
  ``values``, ``last_key``) sees the transaction's own puts and deletes. Writers from many
  threads are serialized (no lost update).
- **read(fn)** is a snapshot: it sees every commit made before it began and nothing else -
  not a commit that lands while it is open, not an open write's changes - and refuses
  ``put``/``put_many``/``delete``/``discard`` with ``StoreError``. ``get`` is a one-key read.
  A thread may write while it has a read open, and read while it has a write open (the
  tests check snapshots that way, with no second thread to wait for).
- **scan(t, start, stop)** yields ``start <= key < stop`` in key order (``reverse``: the same
  keys in reverse order); ``stop=None`` means to the end, ``stop <= start`` yields nothing. A
  caller may delete or overwrite the key just yielded and the scan goes on.
  **values(t, start, n)**: the values of the first ``n`` keys ``>= start`` of that table only,
  and the key of the last one (None when none). **last_key(t, below)**: the greatest key
  ``< below`` (of the table when ``below`` is None), or None.
  **follow(t, start, n, target, owner)**: the first ``n`` items of ``t`` from ``start``, each
  with ``target``'s value at its value and ``owner``'s at its value's first 8 bytes (None for
  an empty value or a missing key). **get_range(t, key, target, start, stop, n, reverse)**:
  ``t``'s value at ``key`` and at most ``n`` items of ``target`` in ``[p + start, p + stop)``,
  ``p`` that value's first 8 bytes (``reverse``: the last ones, greatest first); ``(None, [])``
  for a missing key. Both see a write's own changes.
- **write_group(fns, max_bytes)** runs the functions in order in one transaction, each in
  its own nested transaction: a function that raises an ``Exception`` is rolled back alone
  (later functions see nothing of it) and its slot is ``(False, exc)``; the others are
  ``(True, result)``; one commit. After each function the group stops if the bytes of the
  values put so far reached ``max_bytes`` (the answer is then shorter; the functions left
  never ran). A ``BaseException`` aborts the whole group. A closed or read-only backend
  raises (it does not fill the slots).
- **Read-only** backends read and refuse ``write``/``write_group`` with ``StoreError``.
- **close()** is idempotent; afterwards every call raises ``StoreClosedError``.
- **on_commit** (None by default) is called once after each commit, never after an abort,
  and a read from it sees the commit. **make_wakeup()**'s generation changes on each commit
  signalled to it (``on_commit = wakeup.committed``), and on another backend's commit to
  the same store once its ``live()`` is True.
- **Persistent** backends keep their data across close/reopen, and two backends open on one
  store see each other's commits (no stale cache).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import ClassVar

import pytest

from eventlog.errors import StoreClosedError, StoreError
from eventlog.storage.kv import KVBackend
from eventlog.testing import kv_support as kvs
from eventlog.testing.kv_model import RandomOperationsContract
from eventlog.testing.kv_operations import KVOperationsContract
from eventlog.testing.kv_support import BIG, A, Abort, B
from eventlog.testing.kv_transactions import KVTransactionsContract

__all__ = ["KVBackendContract"]


class KVBackendContract(KVOperationsContract, KVTransactionsContract, RandomOperationsContract):
    """The behaviour every backend shares. Subclass and implement :meth:`make_backend`."""

    #: False for backends whose data does not survive close (memory).
    persistent: ClassVar[bool] = True
    #: False for backends with no read-only mode.
    supports_readonly: ClassVar[bool] = True

    def make_backend(self, path: Path, *, readonly: bool = False) -> KVBackend:
        """Open the backend of the store at ``path`` (an empty temporary directory at first).

        Called again with the same ``path`` for the same store (persistent backends), with
        ``readonly=True`` for a read-only one.
        """
        raise NotImplementedError

    @pytest.fixture
    def backend_path(self, tmp_path: Path) -> Path:
        return tmp_path / "store"

    @pytest.fixture
    def backend(self, backend_path: Path) -> Iterator[KVBackend]:
        b = self.make_backend(backend_path)
        yield b
        b.on_commit = None
        b.close()

    # -- read-only, closed ---------------------------------------------------------------
    def test_readonly_backend(self, backend: KVBackend, backend_path: Path) -> None:
        if not self.supports_readonly:
            pytest.skip(f"{type(self).__name__}: no read-only mode")
        backend.write(kvs.put(A, {b"k": b"v"}))
        ro = self.make_backend(backend_path, readonly=True)
        try:
            assert (ro.readonly, backend.readonly) == (True, False)
            assert (ro.get(A, b"k"), kvs.dump(ro, A)) == (b"v", [(b"k", b"v")])
            for refused in (
                lambda: ro.write(kvs.put(A, {b"x": b"1"})),
                lambda: ro.write_group([kvs.put(A, {b"x": b"1"})], BIG),
                lambda: ro.write_group([kvs.put(A, {b"x": b"1"}), kvs.put(A, {b"y": b"1"})], BIG),
            ):
                with pytest.raises(StoreError, match="read-only"):
                    refused()
            ro.health_check()
            backend.write(kvs.put(A, {b"later": b"1"}))
            assert ro.get(A, b"later") == b"1"
        finally:
            ro.close()
        assert kvs.dump(backend, A) == [(b"k", b"v"), (b"later", b"1")]

    def test_closed_backend_refuses_every_call(self, backend_path: Path) -> None:
        b = self.make_backend(backend_path)
        b.write(kvs.put(A, {b"k": b"v"}))
        b.close()
        calls: dict[str, Callable[[], object]] = {
            "read": lambda: b.read(partial(kvs.get, A, b"k")),
            "get": lambda: b.get(A, b"k"),
            "write": lambda: b.write(kvs.put(A, {b"x": b"y"})),
            "write_group of one": lambda: b.write_group([kvs.put(A, {b"x": b"y"})], BIG),
            "write_group": lambda: b.write_group([kvs.put(A, {b"x": b"y"})] * 2, BIG),
            "flush": b.flush,
            "health_check": b.health_check,
        }
        for name, call in calls.items():
            try:
                call()
            except StoreClosedError:
                continue
            pytest.fail(f"{name} worked on a closed backend")
        b.close()  # again: nothing happens

    # -- hooks, wake-ups, flush, path ----------------------------------------------------
    def test_on_commit(self, backend: KVBackend) -> None:
        assert backend.on_commit is None
        seen: list[bytes | None] = []
        backend.on_commit = lambda: seen.append(backend.get(A, b"k"))
        backend.write(kvs.put(A, {b"k": b"1"}))
        with pytest.raises(Abort):
            backend.write(kvs.failing(kvs.put(A, {b"k": b"2"}), Abort()))
        backend.write_group([kvs.put(A, {b"k": b"3"}), kvs.put(A, {b"k": b"4"})], BIG)
        backend.write_group([kvs.put(A, {b"k": b"5"})], BIG)
        assert seen == [b"1", b"4", b"5"]

    def test_wakeup_hears_commits(self, backend: KVBackend) -> None:
        wakeup = backend.make_wakeup()
        try:
            backend.on_commit = wakeup.committed
            seen = wakeup.generation
            backend.write(kvs.put(A, {b"k": b"1"}))
            assert wakeup.generation != seen
            assert wakeup.wait(seen, timeout=0) is True
            seen = wakeup.generation
            with pytest.raises(Abort):
                backend.write(kvs.failing(kvs.put(A, {}), Abort()))
            assert wakeup.generation == seen
            backend.write_group([kvs.put(A, {b"k": b"2"})] * 2, BIG)
            assert wakeup.generation != seen
        finally:
            backend.on_commit = None
            wakeup.close()
        assert wakeup.closed

    def test_flush_health_check_and_path(self, backend: KVBackend) -> None:
        backend.health_check()
        backend.write(kvs.put(A, {b"k": b"v"}))
        backend.flush()
        assert backend.get(A, b"k") == b"v"
        assert backend.path is None or isinstance(backend.path, str)
        assert backend.readonly is False

    # -- persistent backends: reopening, two backends on one store -------------------------
    def _require_persistent(self) -> None:
        if not self.persistent:
            pytest.skip(f"{type(self).__name__}: not persistent")

    def test_data_survives_reopening(self, backend_path: Path) -> None:
        self._require_persistent()
        b = self.make_backend(backend_path)
        path = b.path
        b.write(kvs.put(B, {b"k": b"v", b"\xff": b""}))
        b.flush()
        b.close()
        b = self.make_backend(backend_path)
        try:
            assert (b.path, kvs.dump(b, B), kvs.last(b, B)) == (
                path,
                [(b"k", b"v"), (b"\xff", b"")],
                b"\xff",
            )
        finally:
            b.close()

    def test_two_backends_see_each_others_commits(
        self, backend: KVBackend, backend_path: Path
    ) -> None:
        self._require_persistent()
        other = self.make_backend(backend_path)
        try:
            # each learns the table (a backend may cache what it read and wrote)...
            backend.write(kvs.put(A, {b"a": b"1", b"m": b"1"}))
            look = partial(kvs.look, A, b"a", b"y")
            assert backend.write(look) == (b"1", b"m", b"m")
            assert other.write(look) == (b"1", b"m", b"m")
            # ...then each changes it behind the other's back
            other.write(kvs.put(A, {b"a": b"2", b"z": b"2"}))
            assert backend.write(look) == (b"2", b"z", b"m")
            backend.write(kvs.delete(A, b"z"))
            backend.write(kvs.put(A, {b"a": b"3", b"b": b"3"}))
            assert other.write(look) == (b"3", b"m", b"m")
            assert other.read(lambda txn: txn.get(A, b"a")) == b"3"
            assert other.get(A, b"z") is None
        finally:
            other.close()

    def test_wakeup_hears_another_backends_commits(
        self, backend: KVBackend, backend_path: Path
    ) -> None:
        self._require_persistent()
        mine = backend.make_wakeup()
        other = self.make_backend(backend_path)
        theirs = other.make_wakeup()
        try:
            backend.on_commit = mine.committed
            if not theirs.live():
                pytest.skip("no cross-process wake-ups here: subscribers poll")
            seen = theirs.generation
            backend.write(kvs.put(A, {b"k": b"v"}))
            assert theirs.wait(seen, timeout=30)  # a bound, not a delay: returns when woken
        finally:
            backend.on_commit = None
            theirs.close()
            mine.close()
            other.close()
