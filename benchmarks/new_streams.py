"""Workload 1's new-stream rows: a new stream's first event, durable, on LMDB.

Run by the ``eventlog`` peer of :mod:`benchmarks.append_durable`. Each repetition appends the
same seeded events one per call (one fsynced transaction each) three ways, back to back so
the three figures are measured seconds apart:

- ``new_stream``: each event is the first of a new stream, created by the append itself
  (``append_to_stream(sid, [e], expected_seq=0, kind=...)``: one commit);
- ``new_stream_2commits``: ``create_stream`` then ``append_to_stream`` (two commits, the
  only way before first appends created streams);
- ``existing_stream``: each event appended to one existing stream.

Target: a new stream's first event ≥ 0.8x an existing stream's append (one commit each).
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Mapping
from uuid import uuid4

from benchmarks.core import (
    THROUGHPUT,
    Check,
    Params,
    PeerOutput,
    Row,
    Sample,
    barrier,
    describe,
    int_param,
    ratio,
    written_bytes,
)
from benchmarks.data import run_events

__all__ = ["VARIANTS", "new_stream_append", "new_stream_rows"]

KIND = "bench.doc"
VARIANTS = ("new_stream", "new_stream_2commits", "existing_stream")


def new_stream_append(params: Params, workdir: str) -> dict[str, Sample]:
    """The three variants' events/s, one figure per repetition each."""
    from eventlog import RunStore

    events = run_events(int_param(params, "seed"), int_param(params, "events"))
    rates: dict[str, list[float]] = {v: [] for v in VARIANTS}
    written = dict.fromkeys(VARIANTS, 0)  # bytes handed to write() (LMDB's dirty pages)
    with RunStore.open(os.path.join(workdir, "new_streams"), durability="durable") as store:
        existing = store.create_stream(kind=KIND).id
        append = store.append_to_stream

        def new_stream() -> None:
            for event in events:
                append(uuid4(), [event], expected_seq=0, kind=KIND)

        def two_commits() -> None:
            for event in events:
                sid = store.create_stream(kind=KIND).id
                append(sid, [event], expected_seq=0)

        def existing_stream() -> None:
            for event in events:
                append(existing, [event])

        work: dict[str, Callable[[], None]] = {
            "new_stream": new_stream,
            "new_stream_2commits": two_commits,
            "existing_stream": existing_stream,
        }
        for rep in range(1 + int_param(params, "reps")):  # the first is a warm-up
            for variant in VARIANTS:
                gc.collect()
                barrier()
                before = written_bytes()
                start = time.perf_counter()
                work[variant]()
                elapsed = time.perf_counter() - start
                if rep:
                    rates[variant].append(len(events) / elapsed)
                    written[variant] += written_bytes() - before
    per_event = int_param(params, "reps") * len(events)
    return {
        v: Sample(THROUGHPUT, r, extra={"written_per_event": written[v] / per_event})
        for v, r in rates.items()
    }


def new_stream_rows(number: int, outputs: Mapping[str, PeerOutput]) -> list[Row]:
    """A new stream's first event vs an existing stream's append, and vs two commits."""
    out = outputs.get("eventlog")
    got = {} if out is None else out.variants
    new, two, existing = (got.get(v) for v in VARIANTS)
    title = "durable first event of a new stream"
    if new is None or two is None or existing is None:
        return [Row(number, title, "eventlog (ours, LMDB)", "error")]

    def describe_written(sample: Sample) -> str:
        return f"{describe(sample)}, {sample.extra['written_per_event']:,.0f} B written/event"

    vs_existing = ratio(new, existing)
    return [
        Row(number, title, "new stream, 1 commit", describe_written(new)),
        Row(
            number,
            title,
            "existing stream",
            describe_written(existing),
            ratio=vs_existing,
            check=Check("≥ 0.8x an existing stream's append", vs_existing, ">=", 0.8),
        ),
        Row(
            number,
            title,
            "new stream, 2 commits (before)",
            describe_written(two),
            ratio=ratio(new, two),
        ),
    ]
