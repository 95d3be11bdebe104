"""The KV contract's operations: tables, keys, values, point writes, scans (see ``kv``)."""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import partial

import pytest

from eventlog.errors import StoreError
from eventlog.storage.keys import MAX_KEY, pack_u64, prefix_end
from eventlog.storage.kv import TABLES, KVBackend, KVTxn
from eventlog.testing import kv_support as kvs
from eventlog.testing.kv_support import A, B

__all__ = ["KVOperationsContract"]


class KVOperationsContract:
    """Every operation of a transaction, edge cases included (mixed into ``KVBackendContract``)."""

    # -- tables --------------------------------------------------------------------------
    def test_new_store_tables_are_empty(self, backend: KVBackend) -> None:
        def look(txn: KVTxn) -> list[object]:
            return [
                (list(txn.scan(t, b"")), txn.last_key(t), txn.values(t, b"", 3), txn.get(t, b"k"))
                for t in TABLES
            ]

        assert backend.read(look) == [([], None, ([], None), None)] * len(TABLES)

    def test_tables_are_independent(self, backend: KVBackend) -> None:
        def fill(txn: KVTxn) -> None:
            for i, t in enumerate(TABLES):
                txn.put(t, b"k", t.encode())
                txn.put(t, b"\x00" * (i + 1), b"low")
                txn.put(t, b"\xff" * (i + 1), b"high")

        backend.write(fill)
        for i, t in enumerate(TABLES):
            keys = [b"\x00" * (i + 1), b"k", b"\xff" * (i + 1)]
            assert backend.get(t, b"k") == t.encode()
            assert [k for k, _ in kvs.dump(backend, t)] == keys, t
            assert kvs.last(backend, t) == keys[-1]
            assert kvs.values(backend, t, b"", 10) == ([b"low", t.encode(), b"high"], keys[-1])
            assert kvs.scan(backend, t, reverse=True) == [
                (keys[2], b"high"),
                (b"k", t.encode()),
                (keys[0], b"low"),
            ]
        backend.write(kvs.delete(TABLES[0], b"k"))
        assert all(backend.get(t, b"k") == t.encode() for t in TABLES[1:])

    # -- keys and values -----------------------------------------------------------------
    def test_keys_sort_as_unsigned_bytes(self, backend: KVBackend) -> None:
        keys = [b"\x00", b"\x00\x00", b"\x00\xff", b"\x01", b"a", b"ab", b"b", b"\x7f"]
        keys += [b"\x80", b"\xfe\xff", b"\xff", b"\xff\x00", b"\xff\xff"]
        shuffled = random.Random(1).sample(keys, len(keys))
        for t in (A, B):
            backend.write(kvs.put(t, {k: k + b"!" for k in shuffled}))
            assert kvs.dump(backend, t) == [(k, k + b"!") for k in keys]

    def test_u64_keys_sort_numerically(self, backend: KVBackend) -> None:
        numbers = [0, 1, 2, 255, 256, 65_535, 65_536, 2**32 - 1, 2**32, 2**63, 2**64 - 1]
        shuffled = random.Random(2).sample(numbers, len(numbers))
        backend.write(kvs.put("positions", {pack_u64(n): b"" for n in shuffled}))
        assert [k for k, _ in kvs.dump(backend, "positions")] == [pack_u64(n) for n in numbers]
        assert kvs.last(backend, "positions", pack_u64(2**32)) == pack_u64(2**32 - 1)

    def test_longest_key(self, backend: KVBackend) -> None:
        keys = [b"\x00" * MAX_KEY, b"k" * MAX_KEY, b"\xff" * MAX_KEY]
        for t in (A, B):
            backend.write(kvs.put(t, {k: k[:1] for k in keys}))
            assert [backend.get(t, k) for k in keys] == [b"\x00", b"k", b"\xff"]
            assert kvs.dump(backend, t) == [(k, k[:1]) for k in keys]
            assert kvs.last(backend, t) == keys[-1]
            assert backend.write(kvs.delete(t, *keys)) == [True] * 3

    def test_empty_key_is_never_stored(self, backend: KVBackend) -> None:
        for t in (A, B):
            with pytest.raises(StoreError):
                backend.write(kvs.put(t, {b"": b"v"}))
            with pytest.raises(StoreError):
                backend.write(partial(kvs.put_many, t, [(b"", b"v"), (b"a", b"v")]))
            assert backend.get(t, b"") is None
            assert backend.read(partial(kvs.get, t, b"")) is None
            assert kvs.dump(backend, t) == []
            assert backend.write(kvs.delete(t, b"")) == [False]

    def test_empty_value_is_not_a_missing_value(self, backend: KVBackend) -> None:
        backend.write(kvs.put(A, {b"k": b""}))
        assert backend.get(A, b"k") == b""
        assert backend.read(partial(kvs.get, A, b"k")) == b""
        assert kvs.values(backend, A, b"", 5) == ([b""], b"k")
        assert kvs.dump(backend, A) == [(b"k", b"")]
        assert backend.write(kvs.delete(A, b"k")) == [True]

    def test_large_value(self, backend: KVBackend) -> None:
        big = random.Random(3).randbytes(3 << 20)
        backend.write(kvs.put(A, {b"big": big, b"small": b"s"}))
        assert backend.get(A, b"big") == big
        assert kvs.values(backend, A, b"", 2) == ([big, b"s"], b"small")
        assert kvs.dump(backend, A) == [(b"big", big), (b"small", b"s")]

    def test_keys_and_values_come_back_as_bytes(self, backend: KVBackend) -> None:
        backend.write(kvs.put(B, {b"k": b"v"}))

        def look(txn: KVTxn) -> list[object]:
            (key, value), *_ = txn.scan(B, b"")
            values, last = txn.values(B, b"", 1)
            return [key, value, txn.get(B, b"k"), *values, last, txn.last_key(B)]

        got = [*backend.read(look), backend.get(B, b"k")]
        assert [type(x) for x in got] == [bytes] * len(got)

    # -- point operations in a write -----------------------------------------------------
    def test_put_overwrites_and_delete_answers(self, backend: KVBackend) -> None:
        def first(txn: KVTxn) -> list[object]:
            txn.put(A, b"a", b"1")
            txn.put(A, b"a", b"2")
            out: list[object] = [txn.get(A, b"a"), txn.delete(A, b"a"), txn.delete(A, b"a")]
            txn.put(A, b"a", b"3")
            txn.put_many(A, [(b"b", b"1"), (b"c", b"1")])
            txn.put_many(A, [(b"b", b"2")])
            txn.put_many(A, [])
            txn.discard(A, b"c")
            txn.discard(A, b"missing")
            return [*out, txn.get(A, b"a"), txn.get(A, b"b"), txn.get(A, b"c")]

        assert backend.write(first) == [b"2", True, False, b"3", b"2", None]
        assert kvs.dump(backend, A) == [(b"a", b"3"), (b"b", b"2")]
        assert backend.write(kvs.delete(A, b"a", b"zz")) == [True, False]
        assert kvs.dump(backend, A) == [(b"b", b"2")]

    def test_append_puts(self, backend: KVBackend) -> None:
        for t in (A, "positions"):
            backend.write(kvs.put(t, {pack_u64(1): b"1"}))

            def append(txn: KVTxn, t: str = t) -> list[bytes | None]:
                txn.put(t, pack_u64(2), b"2", append=True)
                txn.put_many(t, [(pack_u64(3), b"3"), (pack_u64(9), b"9")], append=True)
                seen = [txn.last_key(t)]
                txn.delete(t, pack_u64(9))
                seen.append(txn.last_key(t))
                txn.put(t, pack_u64(10), b"10", append=True)
                txn.discard(t, pack_u64(10))
                txn.put_many(t, [(pack_u64(11), b"11")], append=True)
                txn.put(t, pack_u64(0), b"0")
                return [*seen, txn.last_key(t)]

            assert backend.write(append) == [pack_u64(9), pack_u64(3), pack_u64(11)]
            assert kvs.dump(backend, t) == [
                (pack_u64(n), str(n).encode()) for n in (0, 1, 2, 3, 11)
            ]

    def test_prefetch_then_get(self, backend: KVBackend) -> None:
        backend.write(kvs.put(B, {b"a": b"1", b"b": b"2", b"c": b"3"}))
        keys = [b"a", b"b", b"c", b"x", b"a", b"new"]

        def in_write(txn: KVTxn) -> list[bytes | None]:
            txn.put(B, b"new", b"n")
            txn.delete(B, b"b")
            txn.prefetch(B, keys)
            txn.prefetch(B, [])
            txn.put(B, b"c", b"33")
            return [txn.get(B, k) for k in keys]

        def in_read(txn: KVTxn) -> list[bytes | None]:
            txn.prefetch(B, keys)
            return [txn.get(B, k) for k in keys]

        assert backend.write(in_write) == [b"1", None, b"33", None, b"1", b"n"]
        assert backend.read(in_read) == [b"1", None, b"33", None, b"1", b"n"]

    @pytest.mark.parametrize("table", [A, B, "events"])
    def test_prefetched_values_never_go_stale(self, backend: KVBackend, table: str) -> None:
        backend.write(kvs.put(table, {b"a": b"1"}))

        def prefetch(txn: KVTxn, keys: list[bytes]) -> list[bytes | None]:
            txn.prefetch(table, keys)
            return [txn.get(table, k) for k in keys]

        assert backend.write(partial(prefetch, keys=[b"a", b"b"])) == [b"1", None]
        backend.write(kvs.put(table, {b"a": b"2", b"b": b"2"}))
        assert backend.write(partial(prefetch, keys=[b"a", b"b", b"c"])) == [b"2", b"2", None]
        backend.write(kvs.delete(table, b"a"))
        backend.write(kvs.put(table, {b"c": b"3"}))
        assert backend.write(partial(prefetch, keys=[])) == []
        got = backend.write(lambda txn: [txn.get(table, k) for k in (b"a", b"b", b"c")])
        assert got == [None, b"2", b"3"]

    # -- scans, values, last_key -----------------------------------------------------------
    @pytest.mark.parametrize("table", [A, B])
    def test_scan_ranges(self, backend: KVBackend, table: str) -> None:
        data = {bytes([c]): bytes([c]) * 2 for c in b"bdfh"}
        backend.write(kvs.put(table, data))

        def scan(start: bytes, stop: bytes | None, reverse: bool = False) -> list[bytes]:
            return [k for k, _ in kvs.scan(backend, table, start, stop, reverse=reverse)]

        for start, stop, want in [
            (b"", None, b"bdfh"),
            (b"d", None, b"dfh"),
            (b"c", None, b"dfh"),
            (b"d", b"h", b"df"),
            (b"c", b"g", b"df"),
            (b"d", b"d\x00", b"d"),
            (b"i", None, b""),
            (b"", b"b", b""),
            (b"f", b"d", b""),
            (b"f", b"f", b""),
        ]:
            expected = [bytes([c]) for c in want]
            assert scan(start, stop) == expected, (start, stop)
            assert scan(start, stop, reverse=True) == expected[::-1], (start, stop)
        assert kvs.scan(backend, table, b"c", b"e") == [(b"d", b"dd")]

    def test_prefix_scans(self, backend: KVBackend) -> None:
        keys = [b"a", b"a\x00", b"a\xff", b"a\xff\xff", b"ab", b"b", b"\xff", b"\xff\x01"]
        backend.write(kvs.put(B, dict.fromkeys(keys, b"")))
        for prefix in (b"a", b"a\xff", b"\xff", b"b"):
            want = sorted(k for k in keys if k.startswith(prefix))
            end = prefix_end(prefix)
            assert [k for k, _ in kvs.scan(backend, B, prefix, end)] == want
            assert [k for k, _ in kvs.scan(backend, B, prefix, end, reverse=True)] == want[::-1]

    def test_scans_longer_than_a_page(self, backend: KVBackend) -> None:
        backend.write(kvs.put("events", {pack_u64(n): pack_u64(n * 7) for n in range(1, 1201)}))

        def scan(start: int, stop: int | None, reverse: bool) -> list[int]:
            lo, hi = pack_u64(start), None if stop is None else pack_u64(stop)
            return backend.read(
                lambda txn: [
                    int.from_bytes(k) for k, _ in txn.scan("events", lo, hi, reverse=reverse)
                ]
            )

        assert scan(0, None, False) == list(range(1, 1201))
        assert scan(0, None, True) == list(range(1200, 0, -1))
        assert scan(100, 1100, False) == list(range(100, 1100))
        assert scan(100, 1100, True) == list(range(1099, 99, -1))
        values, last = kvs.values(backend, "events", pack_u64(3), 1000)
        assert (len(values), values[0], values[-1], last) == (
            1000,
            pack_u64(21),
            pack_u64(1002 * 7),
            pack_u64(1002),
        )

    def test_values(self, backend: KVBackend) -> None:
        for t in (A, B):  # B shares its LMDB database with other tables: never read theirs
            backend.write(kvs.put(t, {b"b": b"1", b"d": b"2", b"f": b"3"}))
            backend.write(kvs.put("meta", {b"z": b"other"}))
            backend.write(kvs.put("positions", {b"0": b"other"}))

            values = partial(kvs.values, backend, t)
            assert values(b"", 2) == ([b"1", b"2"], b"d")
            assert values(b"c", 2) == ([b"2", b"3"], b"f")
            assert values(b"d", 1) == ([b"2"], b"d")
            assert values(b"", 3) == ([b"1", b"2", b"3"], b"f")
            assert values(b"", 10) == ([b"1", b"2", b"3"], b"f")
            assert values(b"e", 10) == ([b"3"], b"f")
            assert values(b"g", 10) == ([], None)
            assert values(b"", 0) == ([], None)

    def test_last_key(self, backend: KVBackend) -> None:
        for t in (A, B):
            backend.write(kvs.put(t, {b"b": b"", b"d": b"", b"f": b""}))

            assert [
                kvs.last(backend, t, x) for x in (None, b"g", b"f", b"e", b"d", b"b\x00", b"b", b"")
            ] == [
                b"f",
                b"f",
                b"d",
                b"d",
                b"b",
                b"b",
                None,
                None,
            ]

    def test_follow(self, backend: KVBackend) -> None:
        # an index (positions) whose values are keys of a target (events) under an 8-byte
        # number that is a key of an owner (stream_ids); an empty value is a tombstone
        n1, n2, n3 = pack_u64(1), pack_u64(2), pack_u64(3)
        backend.write(kvs.put("stream_ids", {n1: b"one", n2: b"two"}))
        backend.write(kvs.put("events", {n1 + b"a": b"1a", n2 + b"a": b"2a", n1 + b"b": b"1b"}))
        index = {b"p1": n1 + b"a", b"p2": n2 + b"a", b"p3": b"", b"p4": n1 + b"b"}
        backend.write(kvs.put("positions", {**index, b"p5": n3 + b"x", b"p6": n1 + b"zz"}))
        backend.write(kvs.put("meta", {b"p0": n1 + b"a"}))  # another table: never read

        def follow(start: bytes, n: int) -> Callable[[KVTxn], list[object]]:
            return lambda txn: list(txn.follow("positions", start, n, "events", "stream_ids"))

        every = [
            (b"p1", n1 + b"a", b"1a", b"one"),
            (b"p2", n2 + b"a", b"2a", b"two"),
            (b"p3", b"", None, None),
            (b"p4", n1 + b"b", b"1b", b"one"),
            (b"p5", n3 + b"x", None, None),  # no such target key, no such owner
            (b"p6", n1 + b"zz", None, b"one"),
        ]
        assert backend.read(follow(b"", 10)) == every
        assert backend.read(follow(b"p2", 2)) == every[1:3]
        assert backend.read(follow(b"p3\x00", 1)) == every[3:4]
        assert backend.read(follow(b"q", 5)) == []
        assert backend.read(follow(b"", 0)) == []
        assert backend.write(follow(b"p4", 10)) == every[3:]

        def written(txn: KVTxn) -> list[object]:  # a write follows its own changes
            txn.put("events", n2 + b"a", b"new")
            txn.put("positions", b"p7", n2 + b"a")
            txn.delete("positions", b"p1")
            return list(txn.follow("positions", b"", 2, "events", "stream_ids"))

        assert backend.write(written) == [(b"p2", n2 + b"a", b"new", b"two"), every[2]]
        assert backend.read(follow(b"p7", 1)) == [(b"p7", n2 + b"a", b"new", b"two")]

    def test_get_range(self, backend: KVBackend) -> None:
        n1, n2 = pack_u64(1), pack_u64(2)
        backend.write(kvs.put("streams", {b"s1": n1 + b"r", b"s2": n2 + b"x", b"s3": b"\x00" * 9}))
        mine = {n1 + pack_u64(i): b"%d" % i for i in range(1, 6)}
        backend.write(kvs.put("events", {**mine, n2 + pack_u64(1): b"other"}))

        def rng(
            key: bytes, lo: int, hi: bytes | int, n: int | None, reverse: bool = False
        ) -> Callable[[KVTxn], object]:
            stop = hi if isinstance(hi, bytes) else pack_u64(hi)
            return lambda txn: txn.get_range(
                "streams", key, "events", pack_u64(lo), stop, n, reverse=reverse
            )

        def items(*seqs: int) -> list[tuple[bytes, bytes]]:
            return [(n1 + pack_u64(i), b"%d" % i) for i in seqs]

        end = b"\xff" * 8
        assert backend.read(rng(b"s1", 1, end, None)) == (n1 + b"r", items(1, 2, 3, 4, 5))
        assert backend.read(rng(b"s1", 2, 5, None)) == (n1 + b"r", items(2, 3, 4))
        assert backend.read(rng(b"s1", 2, end, 2)) == (n1 + b"r", items(2, 3))
        assert backend.read(rng(b"s1", 1, end, 2, True)) == (n1 + b"r", items(5, 4))
        assert backend.read(rng(b"s1", 1, 4, None, True)) == (n1 + b"r", items(3, 2, 1))
        assert backend.read(rng(b"s1", 4, 4, None)) == (n1 + b"r", [])
        assert backend.read(rng(b"s1", 1, end, 0)) == (n1 + b"r", [])
        assert backend.read(rng(b"s3", 1, end, None)) == (b"\x00" * 9, [])
        assert backend.read(rng(b"s4", 1, end, None)) == (None, [])
        assert backend.write(rng(b"s2", 1, end, 5, True)) == (
            n2 + b"x",
            [(n2 + pack_u64(1), b"other")],
        )

    def test_a_write_sees_its_own_changes(self, backend: KVBackend) -> None:
        backend.write(kvs.put(B, {b"b": b"1", b"d": b"2"}))

        def work(txn: KVTxn) -> list[object]:
            txn.put(B, b"a", b"0")
            txn.put(B, b"e", b"3")
            txn.delete(B, b"d")
            txn.put(B, b"b", b"11")
            seen: list[object] = [
                list(txn.scan(B, b"")),
                list(txn.scan(B, b"", reverse=True)),
                txn.values(B, b"", 5),
                txn.last_key(B),
                txn.last_key(B, b"e"),
            ]
            txn.delete(B, b"e")
            seen += [txn.last_key(B), txn.last_key(B, b"e"), txn.get(B, b"e")]
            txn.put(B, b"z", b"9")
            return [*seen, txn.last_key(B), list(txn.scan(B, b"c"))]

        assert backend.write(work) == [
            [(b"a", b"0"), (b"b", b"11"), (b"e", b"3")],
            [(b"e", b"3"), (b"b", b"11"), (b"a", b"0")],
            ([b"0", b"11", b"3"], b"e"),
            b"e",
            b"b",
            b"b",
            b"b",
            None,
            b"z",
            [(b"z", b"9")],
        ]

    @pytest.mark.parametrize("reverse", [False, True])
    def test_writing_the_yielded_key_while_scanning(
        self, backend: KVBackend, reverse: bool
    ) -> None:
        keys = [pack_u64(n) for n in range(700)]
        backend.write(kvs.put(A, dict.fromkeys(keys, b"v")))

        def drain(txn: KVTxn) -> list[bytes]:
            seen = []
            for key, _ in txn.scan(A, b"", reverse=reverse):
                seen.append(key)
                if int.from_bytes(key) % 2:
                    txn.delete(A, key)
                else:
                    txn.put(A, key, b"w")
            return seen

        assert backend.write(drain) == (keys[::-1] if reverse else keys)
        assert kvs.dump(backend, A) == [(k, b"w") for k in keys[::2]]
