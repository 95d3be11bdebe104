"""The KV contract's transactions: write, read, threads, group writes (see ``kv``)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from eventlog.errors import StoreError
from eventlog.storage.keys import pack_u64
from eventlog.storage.kv import KVBackend, KVTxn
from eventlog.testing import kv_support as kvs
from eventlog.testing.kv_support import BIG, A, Abort, B, Interrupt

__all__ = ["KVTransactionsContract"]


class KVTransactionsContract:
    """Commit, abort, snapshots and group writes (mixed into ``KVBackendContract``)."""

    # -- transactions --------------------------------------------------------------------
    def test_write_commits_and_returns_the_result(self, backend: KVBackend) -> None:

        def write(txn: KVTxn) -> int:
            txn.put(A, b"k", b"v")
            return 42

        assert backend.write(write) == 42
        assert backend.read(lambda txn: (txn.get(A, b"k"), "done")) == (b"v", "done")
        assert backend.get(A, b"k") == b"v"
        assert backend.get(A, b"other") is None

    @pytest.mark.parametrize("error", [Abort, Interrupt])
    def test_a_raising_write_keeps_nothing(
        self, backend: KVBackend, error: type[BaseException]
    ) -> None:
        backend.write(kvs.put(B, {b"keep": b"1", b"gone": b"2"}))
        exc = error("stop")

        def fail(txn: KVTxn) -> None:
            txn.put(B, b"keep", b"changed")
            txn.delete(B, b"gone")
            txn.put(B, b"new", b"3")
            txn.put_many("positions", [(pack_u64(1), b"")], append=True)
            txn.last_key(B)
            raise exc

        with pytest.raises(error) as info:
            backend.write(fail)
        assert info.value is exc
        assert kvs.dump(backend, B) == [(b"gone", b"2"), (b"keep", b"1")]
        assert kvs.dump(backend, "positions") == []
        backend.write(kvs.put(B, {b"after": b"4"}))  # the backend is still usable
        assert (kvs.last(backend, B), backend.get(B, b"new")) == (b"keep", None)

    def test_a_raising_read_propagates(self, backend: KVBackend) -> None:
        exc = Abort("read")

        def fail(txn: KVTxn) -> None:
            txn.get(A, b"k")
            raise exc

        with pytest.raises(Abort) as info:
            backend.read(fail)
        assert info.value is exc
        assert backend.read(lambda txn: txn.get(A, b"k")) is None

    def test_a_read_cannot_write(self, backend: KVBackend) -> None:
        backend.write(kvs.put(A, {b"k": b"v"}))
        attempts: list[Callable[[KVTxn], object]] = [
            lambda txn: txn.put(A, b"x", b"y"),
            lambda txn: txn.put_many(A, [(b"x", b"y")]),
            lambda txn: txn.delete(A, b"k"),
            lambda txn: txn.discard(A, b"k"),
        ]
        for attempt in attempts:
            with pytest.raises(StoreError):
                backend.read(attempt)
        assert kvs.dump(backend, A) == [(b"k", b"v")]

    def test_a_read_is_a_snapshot(self, backend: KVBackend) -> None:
        backend.write(kvs.put(A, {b"a": b"1"}))

        def reader(txn: KVTxn) -> list[object]:
            before = (txn.get(A, b"a"), list(txn.scan(A, b"")))
            backend.write(kvs.put(A, {b"a": b"2", b"b": b"2"}))  # commits while the read is open
            after = (txn.get(A, b"a"), list(txn.scan(A, b"")), txn.last_key(A))
            return [before, after, backend.get(A, b"a")]

        assert backend.read(reader) == [
            (b"1", [(b"a", b"1")]),
            (b"1", [(b"a", b"1")], b"a"),
            b"2",
        ]
        assert kvs.dump(backend, A) == [(b"a", b"2"), (b"b", b"2")]

    def test_a_read_never_sees_an_open_write(self, backend: KVBackend) -> None:
        backend.write(kvs.put(A, {b"a": b"1"}))

        def writer(txn: KVTxn) -> list[object]:
            txn.put(A, b"a", b"2")
            txn.put(A, b"b", b"2")
            return [
                backend.get(A, b"a"),
                backend.read(lambda r: (r.get(A, b"b"), list(r.scan(A, b"")), r.last_key(A))),
            ]

        assert backend.write(writer) == [b"1", (None, [(b"a", b"1")], b"a")]
        assert kvs.dump(backend, A) == [(b"a", b"2"), (b"b", b"2")]

    def test_writers_on_many_threads_are_serialized(self, backend: KVBackend) -> None:
        threads, rounds = 4, 15
        errors: list[BaseException] = []

        def increment(txn: KVTxn) -> None:
            value = txn.get(A, b"counter")
            count = 0 if value is None else int(value)
            txn.put(A, b"counter", str(count + 1).encode())

        def work() -> None:
            try:
                for _ in range(rounds):
                    backend.write(increment)
            except BaseException as exc:  # reported below
                errors.append(exc)

        workers = [threading.Thread(target=work) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert errors == []
        assert backend.get(A, b"counter") == str(threads * rounds).encode()

    # -- group writes --------------------------------------------------------------------
    def test_group_runs_every_function_in_one_commit(self, backend: KVBackend) -> None:
        commits: list[None] = []
        backend.on_commit = lambda: commits.append(None)

        def request(i: int) -> Callable[[KVTxn], object]:
            def fn(txn: KVTxn) -> object:
                before = txn.last_key(A)
                txn.put(A, bytes([i]), bytes([i]))
                return (i, before)

            return fn

        out = backend.write_group([request(i) for i in (1, 2, 3)], BIG)
        assert out == [(True, (1, None)), (True, (2, b"\x01")), (True, (3, b"\x02"))]
        assert len(commits) == 1
        assert [k for k, _ in kvs.dump(backend, A)] == [b"\x01", b"\x02", b"\x03"]
        assert backend.write_group([], BIG) == []

    @pytest.mark.parametrize("failing", [(0,), (1,), (3,), (1, 2), (0, 1, 2, 3)])
    def test_a_failing_function_is_rolled_back_alone(
        self, backend: KVBackend, failing: tuple[int, ...]
    ) -> None:
        backend.write(kvs.put(B, {b"old": b"0", b"x": b"0"}))
        errors = {i: Abort(f"request {i}") for i in failing}

        def request(i: int) -> Callable[[KVTxn], object]:
            def fn(txn: KVTxn) -> object:
                seen = (txn.get(B, b"old"), txn.get(B, b"x"), txn.last_key(B))
                txn.put(B, b"r" + bytes([48 + i]), b"done")
                txn.put(B, b"x", bytes([48 + i]))
                txn.put("positions", pack_u64(i + 1), b"", append=True)
                if i in errors:
                    txn.delete(B, b"old")
                    txn.put(B, b"zz" + bytes([48 + i]), b"late")
                    txn.last_key(B)
                    raise errors[i]
                return seen

            return fn

        fns = [request(i) for i in range(4)]
        out = backend.write_group(fns, BIG)
        x = b"0"  # the value of the last request that succeeded
        expected: list[tuple[bool, object]] = []
        for i in range(4):
            if i in errors:
                expected.append((False, errors[i]))
            else:
                expected.append((True, (b"0", x, b"x")))
                x = bytes([48 + i])
        assert out == expected
        assert all(out[i][1] is errors[i] for i in failing)
        ok = [i for i in range(4) if i not in errors]
        assert kvs.dump(backend, B) == [
            (b"old", b"0"),
            *[(b"r" + bytes([48 + i]), b"done") for i in ok],
            (b"x", x),
        ]
        assert [k for k, _ in kvs.dump(backend, "positions")] == [pack_u64(i + 1) for i in ok]

    def test_a_lonely_failing_function(self, backend: KVBackend) -> None:
        exc = Abort("alone")

        def fn(txn: KVTxn) -> None:
            txn.put(A, b"k", b"v")
            raise exc

        assert backend.write_group([fn], BIG) == [(False, exc)]
        assert kvs.dump(backend, A) == []

    def test_a_refused_key_fails_only_its_request(self, backend: KVBackend) -> None:
        out = backend.write_group(
            [
                kvs.put(B, {b"a": b"1"}),
                kvs.put(B, {b"b": b"2", b"": b"x"}),
                kvs.put(B, {b"c": b"3"}),
            ],
            BIG,
        )
        assert [ok for ok, _ in out] == [True, False, True]
        assert isinstance(out[1][1], StoreError)
        assert kvs.dump(backend, B) == [(b"a", b"1"), (b"c", b"3")]

    def test_a_base_exception_aborts_the_whole_group(self, backend: KVBackend) -> None:
        commits: list[None] = []
        backend.on_commit = lambda: commits.append(None)
        exc = Interrupt("stop")

        def stop(txn: KVTxn) -> None:
            raise exc

        fns = [kvs.put(A, {b"a": b"1"}), stop, kvs.put(A, {b"b": b"1"})]
        with pytest.raises(Interrupt) as info:
            backend.write_group(fns, BIG)
        assert info.value is exc
        assert (commits, kvs.dump(backend, A)) == ([], [])

    def test_group_stops_at_max_bytes(self, backend: KVBackend) -> None:
        ran: set[int] = set()

        def request(i: int) -> Callable[[KVTxn], int]:
            def fn(txn: KVTxn) -> int:
                ran.add(i)
                txn.put(A, bytes([i]), b"v" * 100)
                return i

            return fn

        out = backend.write_group([request(i) for i in range(6)], 250)
        assert out == [(True, 0), (True, 1), (True, 2)]
        assert ran == {0, 1, 2}
        assert [k for k, _ in kvs.dump(backend, A)] == [b"\x00", b"\x01", b"\x02"]
        assert backend.write_group([request(7), request(8)], 0) == [(True, 7)]
