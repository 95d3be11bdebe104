"""Random transactions checked against a model, part of ``KVBackendContract``.

Seeded sequences of writes (some aborted), groups (some functions failing) and reads over
tables of both LMDB layouts, every answer compared with a plain dict of sorted keys. They
reach what the fixed tests do not: a backend's caches (PostgreSQL remembers values and
``last_key`` answers across transactions), savepoints and their rollback, cursor reuse.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from eventlog.storage.keys import pack_u64
from eventlog.storage.kv import KVBackend, KVTxn

__all__ = ["RandomOperationsContract"]

State = dict[str, dict[bytes, bytes]]

#: Tables and the keys the operations draw from: u64 keys (append-friendly), and short keys
#: with 0x00/0xff bytes; ``meta`` and ``projections`` share one LMDB database under prefixes.
_POOLS: dict[str, list[bytes]] = {
    "events": [pack_u64(n) for n in range(24)],
    "positions": [pack_u64(n) for n in range(1, 24)],
    "meta": [b"\x00", b"\x00\x00", b"\x01", b"a", b"ab", b"b", b"\xfe", b"\xff", b"\xff\xff"],
    "projections": [b"run\x00" + bytes([c]) for c in b"\x00\x01abc\xff"] + [b"run", b"s"],
}
_KINDS = ["put", "put", "put_many", "delete", "discard", "get", "get", "prefetch"]
_KINDS += ["last_key", "last_key", "scan", "values"]


class _Failed(Exception):
    """Raised by a generated request meant to fail."""


@dataclass(frozen=True)
class _Op:
    kind: str
    table: str
    key: bytes = b""
    value: bytes = b""
    items: tuple[tuple[bytes, bytes], ...] = ()
    stop: bytes | None = None
    number: int = 0
    flag: bool = False  # put/put_many: append; scan: reverse


@dataclass
class _Request:
    ops: list[_Op] = field(default_factory=list)
    expected: list[object] = field(default_factory=list)
    fails: bool = False

    def __call__(self, txn: KVTxn) -> list[object]:
        out = [_run(txn, op) for op in self.ops]
        if self.fails:
            raise _Failed("meant to fail")
        return [x for x in out if x is not _NO_ANSWER]


_NO_ANSWER = object()


def _run(txn: KVTxn, op: _Op) -> object:
    t = op.table
    if op.kind == "put":
        txn.put(t, op.key, op.value, append=op.flag)
    elif op.kind == "put_many":
        txn.put_many(t, list(op.items), append=op.flag)
    elif op.kind == "discard":
        txn.discard(t, op.key)
    elif op.kind == "prefetch":
        txn.prefetch(t, [k for k, _ in op.items])
    elif op.kind == "delete":
        return txn.delete(t, op.key)
    elif op.kind == "get":
        return txn.get(t, op.key)
    elif op.kind == "last_key":
        return txn.last_key(t, op.stop)
    elif op.kind == "scan":
        return list(txn.scan(t, op.key, op.stop, reverse=op.flag))
    elif op.kind == "values":
        return txn.values(t, op.key, op.number)
    return _NO_ANSWER


def _answer(state: State, op: _Op) -> object:
    """What ``op`` answers on ``state`` (and apply it to ``state``)."""
    data = state[op.table]
    keys = sorted(data)
    if op.kind == "put":
        data[op.key] = op.value
    elif op.kind == "put_many":
        data.update(op.items)
    elif op.kind == "discard":
        data.pop(op.key, None)
    elif op.kind == "delete":
        return data.pop(op.key, None) is not None
    elif op.kind == "get":
        return data.get(op.key)
    elif op.kind == "last_key":
        below = [k for k in keys if op.stop is None or k < op.stop]
        return below[-1] if below else None
    elif op.kind == "scan":
        found = [(k, data[k]) for k in keys if op.key <= k and (op.stop is None or k < op.stop)]
        return found[::-1] if op.flag else found
    elif op.kind == "values":
        first = [k for k in keys if k >= op.key][: max(op.number, 0)]
        return [data[k] for k in first], (first[-1] if first else None)
    return _NO_ANSWER


def _op(rng: random.Random, state: State) -> _Op:
    table = rng.choice(list(_POOLS))
    pool = _POOLS[table]
    kind = rng.choice(_KINDS)
    value = rng.choice([b"", b"v", rng.randbytes(rng.randint(1, 40))])
    top = max(state[table], default=None)
    if kind == "put":
        key = rng.choice(pool)
        return _Op(kind, table, key, value, flag=top is None or key > top)
    if kind in ("put_many", "prefetch"):
        keys = sorted(set(rng.sample(pool, rng.randint(0, 4))))
        items = tuple((k, value + k) for k in keys)
        return _Op(kind, table, items=items, flag=bool(keys) and (top is None or keys[0] > top))
    if kind in ("delete", "discard", "get"):  # the greatest key often: last_key's cases
        return _Op(kind, table, top if top is not None and rng.random() < 0.4 else rng.choice(pool))
    start = rng.choice([b"", *pool])
    stop = rng.choice([None, *pool])
    return _Op(kind, table, start, stop=stop, number=rng.randint(0, 6), flag=rng.random() < 0.5)


def _request(rng: random.Random, state: State, *, fails: bool = False) -> _Request:
    """Ops drawn against ``state`` and their answers; ``state`` applied unless it fails."""
    mine = {t: dict(d) for t, d in state.items()}
    request = _Request(fails=fails)
    for _ in range(rng.randint(1, 8)):
        op = _op(rng, mine)
        request.ops.append(op)
        answer = _answer(mine, op)
        if answer is not _NO_ANSWER:
            request.expected.append(answer)
    if not fails:
        for t in state:
            state[t] = mine[t]
    return request


class RandomOperationsContract:
    """Seeded random transactions against a model (mixed into ``KVBackendContract``)."""

    @pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
    def test_random_transactions_match_a_model(self, backend: KVBackend, seed: int) -> None:
        rng = random.Random(seed)
        state: State = {t: {} for t in _POOLS}
        for step in range(80):
            roll = rng.random()
            if roll < 0.45:  # a write
                request = _request(rng, state)
                assert backend.write(request) == request.expected, (seed, step)
            elif roll < 0.6:  # an aborted write leaves nothing
                request = _request(rng, state, fails=True)
                with pytest.raises(_Failed):
                    backend.write(request)
            elif roll < 0.85:  # a group; some of its functions fail
                fns = [_request(rng, state, fails=rng.random() < 0.3) for _ in range(4)]
                got = backend.write_group(fns, 1 << 30)
                assert [ok for ok, _ in got] == [not f.fails for f in fns], (seed, step)
                for f, (ok, answer) in zip(fns, got, strict=True):
                    if ok:
                        assert answer == f.expected, (seed, step)
                    else:
                        assert isinstance(answer, _Failed), (seed, step)
            else:  # a read: the same operations, less the writes
                probe = _request(rng, {t: dict(d) for t, d in state.items()})
                reads = [op for op in probe.ops if op.kind in ("get", "last_key", "scan", "values")]
                read = _Request(ops=reads)
                answers = [_answer({t: dict(d) for t, d in state.items()}, op) for op in reads]
                assert backend.read(read) == answers, (seed, step)
            _check(backend, state, (seed, step))


def _check(backend: KVBackend, state: State, where: object) -> None:
    def dump(txn: KVTxn) -> State:
        return {t: dict(txn.scan(t, b"")) for t in state}

    def last_keys(txn: KVTxn) -> list[bytes | None]:
        return [txn.last_key(t) for t in state]

    assert backend.read(dump) == state, where
    assert backend.read(last_keys) == [max(d, default=None) for d in state.values()], where
