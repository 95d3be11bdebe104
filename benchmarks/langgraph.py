"""Workload 15: the LangGraph checkpointer - put, get_tuple, list - against ``SqliteSaver``.

``python -m benchmarks.langgraph [--quick] [--json]``

Both savers store the same seeded agent thread, both durable (an fsync per commit): ours is
``EventLogSaver`` on the LMDB store (``durability="durable"``); the peer is
``langgraph-checkpoint-sqlite``'s ``SqliteSaver`` on a file (WAL journal, as it sets up,
``synchronous=FULL``: the WAL is synced at every commit). The limit of ``put`` (peer
``lmdb``, :class:`_RawLmdbPut`) serializes the same values with the same serializer and
writes those bytes with raw py-lmdb, one synced write transaction per ``put``. Each step of
the thread is what a tool-calling agent's checkpoint looks like: a ``messages`` channel that
grows by one ~300-byte message per step, a ``step`` counter, and a 5 KB ``context`` channel
(retrieved documents) written at the first step only; ``new_versions`` names the channels
that changed, as LangGraph passes them. The same ``JsonPlusSerializer`` serializes for all.

- ``put``: µs per ``put`` of the next checkpoint (a fresh thread per repetition);
- ``get_tuple``: µs per ``get_tuple`` of a thread's latest checkpoint (values, writes);
- ``list``: checkpoints/s listing a whole thread of ``steps`` checkpoints, newest first;
- ``put_concurrent``: checkpoints/s put by ``writers`` OS threads at once, each on its own
  LangGraph thread (an agent server running several graphs): ours shares durable commits
  between the writers waiting at that moment (group commit); ``SqliteSaver`` serializes its
  calls on one connection, one commit each.

Targets (:data:`TARGETS`): ``put`` ≤ 1.25x the raw LMDB put of the same bytes, with one
commit per put (the figure says how many the store made); ``get_tuple`` and ``list`` ≥ 1.2x
``SqliteSaver``; ``put_concurrent`` faster than ``SqliteSaver``. ``put``'s ratio to
``SqliteSaver`` is still shown, without a target (the limit replaced it).
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable, Mapping
from typing import Any, Literal

from benchmarks.core import (
    THROUGHPUT,
    Params,
    PeerOutput,
    Row,
    Sample,
    Workload,
    compare_rows,
    fmt_num,
    latency_sample,
    measure_latency,
    measure_throughput,
)

LABELS = {
    "eventlog": "EventLogSaver (ours, LMDB, durable)",
    "lmdb": "raw py-lmdb put of the same bytes, 1 synced txn (limit)",
    "sqlite-saver": "langgraph SqliteSaver (file, WAL, sync=FULL)",
}


def _params(quick: bool) -> Params:
    return {
        "seed": 1010,
        "steps": 20 if quick else 200,
        "reps": 2 if quick else 5,
        "writers": 8,
        "concurrent_puts": 10 if quick else 50,
    }


def _int(params: Params, key: str) -> int:
    value = params[key]
    assert isinstance(value, int)
    return value


def _thread(seed: int, steps: int) -> list[tuple[dict[str, Any], dict[str, Any], list[str]]]:
    """(channel values, metadata, changed channels) of each step of a seeded agent thread."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(500)]
    context = " ".join(rng.choice(words) for _ in range(1200))[:5000]
    messages: list[dict[str, Any]] = []
    out = []
    for step in range(steps):
        role = ("user", "assistant", "tool")[step % 3]
        text = " ".join(rng.choice(words) for _ in range(60))[:300]
        messages = [*messages, {"role": role, "content": text, "id": f"m{step}"}]
        values = {"messages": messages, "step": step, "context": context}
        changed = ["messages", "step", "context"] if step == 0 else ["messages", "step"]
        out.append((values, {"source": "loop", "step": step, "parents": {}}, changed))
    return out


def _saver(peer: str, workdir: str) -> Any:
    if peer == "eventlog":
        from eventlog import RunStore
        from eventlog.integrations.langgraph import EventLogSaver

        return EventLogSaver(RunStore.open(os.path.join(workdir, "store"), durability="durable"))
    if peer == "sqlite-saver":
        import sqlite3

        from langgraph.checkpoint.sqlite import SqliteSaver

        conn = sqlite3.connect(os.path.join(workdir, "checkpoints.db"), check_same_thread=False)
        saver = SqliteSaver(conn)
        saver.setup()
        conn.execute("PRAGMA synchronous=FULL")
        return saver
    raise ValueError(f"unknown peer {peer}")


def _fill(saver: Any, thread_id: str, steps: list[Any]) -> Callable[[int], Any]:
    """A function that puts step i of ``steps`` on ``thread_id`` (its parent: the last one)."""
    from langgraph.checkpoint.base import empty_checkpoint

    state: dict[str, Any] = {
        "config": {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    }
    versions: dict[str, Any] = {}

    def put(i: int) -> Any:
        values, metadata, changed = steps[i % len(steps)]
        for channel in changed:
            versions[channel] = saver.get_next_version(versions.get(channel), None)
        cp = empty_checkpoint()
        cp["channel_values"] = values
        cp["channel_versions"] = dict(versions)
        state["config"] = saver.put(
            state["config"], cp, metadata, {c: versions[c] for c in changed}
        )
        return state["config"]

    return put


class _RawLmdbPut:
    """The limit of ``put``: the same serialized bytes written with nothing but py-lmdb.

    What any checkpointer must do for a ``put``: serialize the changed channels' values, the
    checkpoint (without its values) and the metadata with the same ``JsonPlusSerializer``,
    then write them - one put per blob, one for the checkpoint (``(type, bytes)`` pairs and
    the versions, msgpack-encoded) - in one durable (synced) LMDB write transaction. No
    validation, no log, no views, no reads: the physical floor of one durable put.
    """

    def __init__(self, workdir: str) -> None:
        import msgspec
        from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

        from benchmarks.peers.raw_lmdb import open_env

        self.serde = JsonPlusSerializer()
        self._encode = msgspec.msgpack.Encoder().encode
        path = os.path.join(workdir, "raw")
        os.makedirs(path)
        self._env = open_env(path, durable=True)

    def get_next_version(self, current: str | None, channel: None) -> str:
        n = 0 if current is None else int(current.split(".")[0])
        return f"{n + 1:032}.{random.random():016}"

    def put(
        self,
        config: dict[str, Any],
        checkpoint: dict[str, Any],
        metadata: dict[str, Any],
        new_versions: dict[str, Any],
    ) -> dict[str, Any]:
        conf = config["configurable"]
        thread = f"{conf['thread_id']}\x00{conf['checkpoint_ns']}\x00".encode()
        rest = dict(checkpoint)
        values = rest.pop("channel_values")
        versions = rest.pop("channel_versions")
        dumps, encode = self.serde.dumps_typed, self._encode
        items = [
            (thread + b"b" + f"{c}\x00{v}".encode(), encode(dumps(values[c])))
            for c, v in new_versions.items()
        ]
        cp = (dumps(rest), dumps(metadata), conf.get("checkpoint_id"), versions)
        items.append((thread + b"c" + checkpoint["id"].encode(), encode(cp)))
        with self._env.begin(write=True) as txn:
            for key, value in items:
                txn.put(key, value)
        return {"configurable": {**conf, "checkpoint_id": checkpoint["id"]}}


def _run(peer: str, params: Params, workdir: str) -> dict[str, Sample]:
    n, reps = _int(params, "steps"), _int(params, "reps")
    steps = _thread(_int(params, "seed"), n)
    saver: Any = _RawLmdbPut(workdir) if peer == "lmdb" else _saver(peer, workdir)
    # put: every repetition writes a fresh thread of n checkpoints
    threads = iter(range(1_000_000))
    current: dict[str, Callable[[int], Any]] = {}

    def put(i: int) -> None:
        if i % n == 0:
            current["put"] = _fill(saver, f"put-{next(threads)}", steps)
        current["put"](i)

    # ours: count the store's commits (write transactions), to show one per put
    committer = saver._store.core.committer if peer == "eventlog" else None
    before = 0 if committer is None else committer.groups
    p50s, every = measure_latency(put, calls=n, reps=reps, warmup_calls=n)
    extra: dict[str, float] = {}
    if committer is not None:
        extra["commits_per_call"] = (committer.groups - before) / (n * (reps + 1))
    out = {"put": latency_sample(p50s, every, **extra)}
    if peer == "lmdb":
        return out  # the limit of a put only
    # get_tuple and list on one filled thread
    fill = _fill(saver, "read", steps)
    for i in range(n):
        fill(i)
    config = {"configurable": {"thread_id": "read", "checkpoint_ns": ""}}
    expected = steps[-1][0]

    def get(_: int) -> None:
        tup = saver.get_tuple(config)
        assert tup.checkpoint["channel_values"]["step"] == expected["step"]

    p50s, every = measure_latency(get, calls=n, reps=reps, warmup_calls=min(n, 20))
    out["get_tuple"] = latency_sample(p50s, every)

    def listing() -> int:
        found = list(saver.list(config))
        assert len(found) == n
        assert found[0].checkpoint["channel_values"]["step"] == expected["step"]
        return n

    out["list"] = Sample(THROUGHPUT, measure_throughput(lambda: listing, reps=reps, warmup=1))
    writers, per_writer = _int(params, "writers"), _int(params, "concurrent_puts")

    def concurrent() -> Callable[[], int]:
        puts = [_fill(saver, f"c-{next(threads)}", steps) for _ in range(writers)]

        def work() -> int:
            barrier = threading.Barrier(writers)

            def one(put: Callable[[int], Any]) -> None:
                barrier.wait()
                for i in range(per_writer):
                    put(i)

            pool = [threading.Thread(target=one, args=(p,)) for p in puts]
            for t in pool:
                t.start()
            for t in pool:
                t.join()
            return writers * per_writer

        return work

    out["put_concurrent"] = Sample(THROUGHPUT, measure_throughput(concurrent, reps=reps, warmup=1))
    return out


#: the issue's targets per variant: peer -> (text, op, ratio threshold); ratio = peer ÷ ours
#: for µs, ours ÷ peer for checkpoints/s (≥ 1: ours faster)
TARGETS: dict[str, dict[str, tuple[str, Literal[">=", "<="], float]]] = {
    # the limit replaces "faster than SqliteSaver" for put (its ratio stays in the table)
    "put": {"lmdb": ("time ≤ 1.25x raw LMDB of the same bytes (vs. ≥ 0.8x)", ">=", 0.8)},
    "get_tuple": {"sqlite-saver": ("≥ 1.2x SqliteSaver", ">=", 1.2)},
    "list": {"sqlite-saver": ("≥ 1.2x SqliteSaver", ">=", 1.2)},
    "put_concurrent": {"sqlite-saver": ("faster than SqliteSaver", ">=", 1.0)},
}


def _rows(outputs: Mapping[str, PeerOutput], params: Params) -> list[Row]:
    n = _int(params, "steps")
    rows: list[Row] = []
    for variant, title in (
        ("put", f"LangGraph put (thread of {n} steps, durable)"),
        ("get_tuple", "LangGraph get_tuple (latest checkpoint)"),
        ("list", f"LangGraph list ({n} checkpoints, checkpoints/s)"),
        (
            "put_concurrent",
            f"LangGraph put, {_int(params, 'writers')} writer threads (checkpoints/s, durable)",
        ),
    ):
        found = compare_rows(15, title, outputs, variant, targets=TARGETS[variant], labels=LABELS)
        ours = outputs.get("eventlog")
        sample = None if ours is None else ours.variants.get(variant)
        commits = None if sample is None else sample.extra.get("commits_per_call")
        if isinstance(commits, float | int):
            found[0].figure += f"; {fmt_num(commits)} commits per put"
        rows += found
    return rows


WORKLOAD = Workload(
    number=15,
    key="langgraph",
    title="LangGraph checkpointer: put / get_tuple / list vs SqliteSaver",
    peers=("eventlog", "lmdb", "sqlite-saver"),
    params=_params,
    run=_run,
    rows=_rows,
)

if __name__ == "__main__":
    from benchmarks.runner import main

    main([WORKLOAD.key])
