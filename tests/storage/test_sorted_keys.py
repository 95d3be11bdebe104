"""SortedKeys (the memory backend's ordered keys) against a plain sorted list.

Reads between writes settle the waiting keys one by one (few) or by one merge (many); both
paths, chunk splits and emptied chunks are exercised with a tiny chunk size.
"""

from __future__ import annotations

import bisect

from hypothesis import given, settings
from hypothesis import strategies as st

from eventlog.storage.sorted_keys import SortedKeys

_key = st.binary(min_size=1, max_size=2)
_ops = st.lists(st.tuples(st.sampled_from(["add", "add", "remove", "read"]), _key), max_size=300)


class _Small(SortedKeys):
    LOAD = 2  # chunks split and empty after a handful of keys


@settings(max_examples=200, deadline=None)
@given(_ops, _key, st.none() | _key, st.integers(0, 6))
def test_matches_a_sorted_list(
    ops: list[tuple[str, bytes]], lo: bytes, hi: bytes | None, n: int
) -> None:
    keys, model = _Small(), list[bytes]()
    for op, key in ops:
        if op == "add" and key not in model:
            bisect.insort(model, key)
            keys.add(key)
        elif op == "remove" and key in model:
            model.remove(key)
            keys.remove(key)
        elif op == "read":  # settles the waiting keys: one by one, or merged when many
            assert keys.range(key) == [k for k in model if k >= key]
        assert len(keys) == len(model)
    assert keys.range(b"") == model
    assert keys.range(lo, hi) == [k for k in model if k >= lo and (hi is None or k < hi)]
    assert keys.take(lo, n) == [k for k in model if k >= lo][:n]
    below = [k for k in model if hi is None or k < hi]
    assert keys.last_below(hi) == (below[-1] if below else None)
    copy = keys.copy()
    copy.add(b"\xff\xff\xff")
    assert keys.range(b"") == model  # the copy is independent


def test_growing_keys_stay_in_order_across_chunks() -> None:
    keys = _Small()
    for i in range(50):
        keys.add(i.to_bytes(2, "big"))
    assert keys.range(b"") == [i.to_bytes(2, "big") for i in range(50)]
    assert keys.last_below(b"\x00\x10") == b"\x00\x0f"
