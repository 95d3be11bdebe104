"""The PostgreSQL backend's knowledge of the server's keys (``Tails``) against a model.

``Tails`` answers ``last_key`` and "is this key absent?" without a query while it knows the
gap; puts and deletes must keep every answer it gives true. Pure Python (no server) for the
model test; the write transaction's use of it runs on a real server.
"""

from __future__ import annotations

import bisect
import random
from pathlib import Path

import pytest
from pg_support import statements, url_for

from eventlog.storage.kv import KVTxn
from eventlog.storage.opening import open_backend
from eventlog.storage.postgres.cache import Tails


def _last_below(keys: list[bytes], below: bytes | None) -> bytes | None:
    i = len(keys) if below is None else bisect.bisect_left(keys, below)
    return keys[i - 1] if i else None


@pytest.mark.parametrize("seed", range(8))
def test_tails_answers_stay_true_under_puts_deletes_and_learning(seed: int) -> None:
    rng = random.Random(seed)
    space = [bytes([a, b]) for a in range(4) for b in range(6)]
    space += [k + b"\xff" for k in space[::3]]  # keys of other lengths between them
    model: list[bytes] = sorted(rng.sample(space, 8))
    tails = Tails()
    answered = 0
    for _ in range(3000):
        op = rng.random()
        k = rng.choice(space)
        below = None if rng.random() < 0.1 else k + b"\x80" if rng.random() < 0.3 else k
        if op < 0.25:  # a put
            if k not in model:
                bisect.insort(model, k)
            tails.put(k)
        elif op < 0.45:  # a delete
            if k in model:
                model.remove(k)
            tails.delete(k)
        elif op < 0.65:  # the server answered a question
            tails.learn(below, _last_below(model, below))
        else:
            known, key = tails.answer(below)
            if known:
                answered += 1
                assert key == _last_below(model, below), (below, model)
    assert answered > 300  # the test asks what it knows, not only what it does not


@pytest.mark.usefixtures("pg_schemas")
def test_a_learned_gap_counts_the_transactions_own_deletes_and_puts(tmp_path: Path) -> None:
    backend = open_backend(url_for(tmp_path / "store")).backend
    try:

        def fill(txn: KVTxn) -> None:
            for k in (b"a", b"c", b"e", b"g"):
                txn.put("projections", k, k)

        backend.write(fill)

        def work(txn: KVTxn) -> list[object]:
            txn.discard("projections", b"c")
            txn.put("projections", b"f", b"f")
            found = txn.get("projections", b"d")  # learns the server's gap (c, e)
            return [
                found,
                txn.last_key("projections", b"e"),  # c is deleted in this transaction
                txn.last_key("projections", b"g"),  # f is buffered
                txn.get("projections", b"b"),
                txn.get("projections", b"c"),
                txn.get("projections", b"e"),
            ]

        assert backend.write(work) == [None, b"a", b"f", None, None, b"e"]

        def again(txn: KVTxn) -> list[bytes | None]:  # the next transaction reads through the cache
            return [txn.get("projections", k) for k in (b"c", b"d", b"f", b"h")] + [
                txn.last_key("projections", b"e"),
                txn.last_key("projections"),
            ]

        assert backend.write(again) == [None, None, b"f", None, b"a", b"g"]
    finally:
        backend.close()


@pytest.mark.usefixtures("pg_schemas")
def test_a_streams_record_read_in_a_write_brings_its_head(tmp_path: Path) -> None:
    from eventlog.storage.keys import SEQ_END, pack_u64

    writer = open_backend(url_for(tmp_path / "store")).backend
    n1, n2, n3 = pack_u64(1), pack_u64(2), pack_u64(3)
    try:

        def fill(txn: KVTxn) -> None:
            for sid, number in ((b"s1", n1), (b"s2", n2), (b"s3", n3)):
                txn.put("streams", sid, number + b"r")
            for key in (n1 + pack_u64(1), n1 + pack_u64(2), n3 + pack_u64(1)):
                txn.put("events", key, b"e")

        # another backend writes, so the reader's cache knows nothing
        other = open_backend(url_for(tmp_path / "store")).backend
        other.write(fill)
        other.close()

        def heads(txn: KVTxn) -> list[object]:
            txn.put("events", n3 + pack_u64(2), b"e")  # buffered, not on the server yet
            out: list[object] = []
            for sid, number in ((b"s1", n1), (b"s2", n2), (b"s3", n3)):
                with statements() as sent:
                    out.append(txn.get("streams", sid))
                    out.append(txn.last_key("events", number + SEQ_END))
                out.append(len(sent))
            return out

        assert writer.write(heads) == [
            *(n1 + b"r", n1 + pack_u64(2), 1),
            *(n2 + b"r", n1 + pack_u64(2), 1),  # no event: the key below is stream 1's
            *(n3 + b"r", n3 + pack_u64(2), 1),  # the buffered put counts
        ]
    finally:
        writer.close()
