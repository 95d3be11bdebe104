"""Workload 20: Pydantic AI step persistence, ``EventLogStepStore`` against the harness's own
``SqliteStepStore`` on a file, at the same durability.

``python -m benchmarks.pydantic_ai_steps [--quick] [--json]``

Ours: ``EventLogStepStore`` over an ``AsyncRunStore`` on LMDB, ``durability="durable"`` (fsync
per commit). The peer: ``pydantic_ai_harness.step_persistence.SqliteStepStore(database=path)``
as the harness sets it up (its default persistent store: a connection per call, WAL journal,
SQLite's default ``synchronous=FULL`` - the WAL is synced at every commit, checked in the
worker and kept in the output - and its default media store). Its ``FileStepStore`` does not
fsync, so it is not the same durability and is not compared. Both run on one event loop in
their worker, one call at a time, on the same seeded records - what ``StepPersistence``
writes during a tool-calling run. Variants (µs per call):

- ``record``: ``append_event`` of a step event with the capability's idempotency key (a fresh
  run per repetition);
- ``snapshot``: ``save_snapshot`` of the run's history after each tool round (round k holds k
  rounds: user prompt, then per round a tool call and its ~400-byte result), keyed as the
  capability keys them (a fresh run per repetition);
- ``latest``: ``latest_snapshot`` of a run whose newest complete snapshot holds ``history``
  rounds (with a newer ``interrupted`` one to skip);
- ``effect``: ``record_tool_effect`` of a ``started`` record (the ledger's write per tool call).

Targets (:data:`TARGETS`): faster than ``SqliteStepStore`` on every row (ratio ≥ 1).
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai_harness.step_persistence import (
    ContinuableSnapshot,
    SqliteStepStore,
    StepEvent,
    ToolEffectRecord,
)

from benchmarks.core import (
    Params,
    PeerOutput,
    Row,
    Sample,
    Workload,
    compare_rows,
    int_param,
    latency_sample,
    measure_latency,
)
from eventlog import AsyncRunStore
from eventlog.integrations.pydantic_ai import EventLogStepStore

PEERS = ("eventlog", "sqlite-step-store")
LABELS = {
    "eventlog": "EventLogStepStore (ours, LMDB durable)",
    "sqlite-step-store": "harness SqliteStepStore (file, WAL, synchronous=FULL)",
}
T0 = datetime(2026, 1, 1, tzinfo=UTC)
WORDS = ["the", "of", "lmdb", "weather", "paris", "run", "store", "event", "tool", "agent"]


def _params(quick: bool) -> Params:
    return {
        "seed": 2020,
        "calls": 10 if quick else 200,
        "reps": 2 if quick else 5,
        "history": 5 if quick else 30,
        "get_calls": 10 if quick else 300,
    }


def history(seed: int, rounds: int) -> list[ModelMessage]:
    """A seeded tool-calling history of ``rounds`` rounds (call + ~400-byte result each)."""
    rng = random.Random(seed)

    def text(k: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(k))

    out: list[ModelMessage] = [ModelRequest(parts=[UserPromptPart(text(20), timestamp=T0)])]
    for i in range(rounds):
        call_id = f"call-{i}"
        args = {"q": text(4), "limit": rng.randint(1, 20)}
        out.append(ModelResponse(parts=[ToolCallPart("search", args, call_id)], timestamp=T0))
        result = ToolReturnPart("search", text(70), call_id, timestamp=T0)
        out.append(ModelRequest(parts=[result]))
    return out


def _open(
    peer: str, workdir: str, loop: asyncio.AbstractEventLoop
) -> tuple[Any, Any, dict[str, Any]]:
    """(store to close or None, step store, facts about the durability) for ``peer``."""
    if peer == "eventlog":
        path = os.path.join(workdir, "store")
        store = loop.run_until_complete(AsyncRunStore.open(path, durability="durable"))
        return store, EventLogStepStore(store), {"durability": "durable"}
    import sqlite3

    path = os.path.join(workdir, "steps.db")
    steps = SqliteStepStore(database=path)
    loop.run_until_complete(steps.list_runs())  # creates the schema
    conn = sqlite3.connect(path)
    facts = {
        "journal_mode": str(conn.execute("PRAGMA journal_mode").fetchone()[0]),
        "synchronous": int(conn.execute("PRAGMA synchronous").fetchone()[0]),
    }
    conn.close()
    return None, steps, facts


def _run(peer: str, params: Params, workdir: str) -> dict[str, Sample]:
    seed, calls, reps = (
        int_param(params, "seed"),
        int_param(params, "calls"),
        int_param(params, "reps"),
    )
    rounds, get_calls = int_param(params, "history"), int_param(params, "get_calls")
    loop = asyncio.new_event_loop()
    run = loop.run_until_complete
    store, steps, facts = _open(peer, workdir, loop)
    out: dict[str, Sample] = {}
    full = history(seed, max(calls, rounds) + 1)
    try:
        # record: one step event per call, keyed as StepPersistence keys them
        def record(i: int) -> None:
            event = StepEvent(
                run_id=f"rec-{i // calls}",
                kind="tool_call_started",
                step_index=i % calls,
                timestamp=T0 + timedelta(microseconds=i),
                tool_call_id=f"call-{i}",
                tool_name="search",
                idempotency_key=f"{i % calls}:{i % calls}:tool_call_started:call-{i}",
            )
            run(steps.append_event(event))

        p50s, every = measure_latency(record, calls=calls, reps=reps, warmup_calls=5)
        out["record"] = latency_sample(p50s, every, **facts)

        # snapshot: the history after each round, a fresh run per repetition
        def snapshot(i: int) -> None:
            k = i % calls
            snap = ContinuableSnapshot(
                run_id=f"snap-{i // calls}",
                step_index=k,
                messages=full[: 2 * k + 1],
                timestamp=T0,
                idempotency_key=f"{k}:{k}:complete",
            )
            run(steps.save_snapshot(snap))

        p50s, every = measure_latency(snapshot, calls=calls, reps=reps, warmup_calls=5)
        out["snapshot"] = latency_sample(p50s, every, max_rounds=calls)

        # latest: a run whose newest complete snapshot has `rounds` rounds, then an interrupted one
        for k, state in ((rounds - 1, "complete"), (rounds, "complete"), (rounds, "interrupted")):
            run(
                steps.save_snapshot(
                    ContinuableSnapshot(
                        run_id="latest",
                        step_index=k,
                        messages=full[: 2 * k + 1 + (state == "interrupted")],
                        state=state,  # type: ignore[arg-type]
                        timestamp=T0,
                    )
                )
            )
        got = run(steps.latest_snapshot(run_id="latest"))
        assert got is not None, "the run has a complete snapshot"
        assert got.messages == full[: 2 * rounds + 1], "the latest complete snapshot"
        p50s, every = measure_latency(
            lambda i: run(steps.latest_snapshot(run_id="latest")),
            calls=get_calls,
            reps=reps,
            warmup_calls=10,
        )
        out["latest"] = latency_sample(p50s, every, rounds=rounds)

        # effect: the ledger's `started` record of each tool call
        def effect(i: int) -> None:
            record = ToolEffectRecord(
                tool_call_id=f"call-{i}",
                tool_name="search",
                run_id=f"eff-{i // calls}",
                status="started",
                started_at=T0,
            )
            run(steps.record_tool_effect(record))

        p50s, every = measure_latency(effect, calls=calls, reps=reps, warmup_calls=5)
        out["effect"] = latency_sample(p50s, every)
    finally:
        if store is not None:
            run(store.close())
        loop.close()
    return out


_FASTER: tuple[str, Literal[">=", "<="], float] = (
    "faster than SqliteStepStore (same durability)",
    ">=",
    1.0,
)
TARGETS: dict[str, dict[str, tuple[str, Literal[">=", "<="], float]]] = {
    variant: {"sqlite-step-store": _FASTER}
    for variant in ("record", "snapshot", "latest", "effect")
}


def _rows(outputs: Mapping[str, PeerOutput], params: Params) -> list[Row]:
    rows: list[Row] = []
    titles: list[tuple[str, str]] = [
        ("record", "Pydantic AI steps: append_event (durable)"),
        ("snapshot", f"Pydantic AI steps: save_snapshot, 1-{params['calls']} rounds (durable)"),
        ("latest", f"Pydantic AI steps: latest_snapshot of {params['history']} rounds"),
        ("effect", "Pydantic AI steps: record_tool_effect (durable)"),
    ]
    for variant, title in titles:
        rows += compare_rows(20, title, outputs, variant, targets=TARGETS[variant], labels=LABELS)
    return rows


WORKLOAD = Workload(
    number=20,
    key="pydantic_ai_steps",
    title="Pydantic AI step persistence: EventLogStepStore vs the harness's SqliteStepStore",
    peers=PEERS,
    params=_params,
    run=_run,
    rows=_rows,
)

if __name__ == "__main__":
    from benchmarks.runner import main

    main([WORKLOAD.key])
