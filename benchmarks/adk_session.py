"""Workload 23: a Google ADK session service, ``EventLogSessionService`` against ADK's own
``DatabaseSessionService`` on a SQLite file, at the same durability.

``python -m benchmarks.adk_session [--quick] [--json]``

Ours: ``EventLogSessionService`` over an ``AsyncRunStore`` on LMDB, ``durability="durable"``
(fsync per commit). The peer: ``DatabaseSessionService("sqlite+aiosqlite:///<file>")``, as ADK
sets it up (SQLAlchemy + aiosqlite; SQLite's default rollback journal and
``synchronous=FULL``: every commit synced - checked in the worker and kept in the output).
Both run on one event loop in their worker, one call at a time, on the same seeded events
(a user message, a model text of ~300 bytes or a function call / response, a state delta in
the session and ``user:`` scopes, every 4th also ``app:``). Variants (µs per call):

- ``create``: ``create_session`` with an initial state in the three scopes;
- ``append``: ``append_event`` to one session, holding the session object the service
  returned (as ADK's ``Runner`` does);
- ``get``: ``get_session`` of a session of ``history`` events (what the Runner reads at the
  start of each turn);
- ``get_recent``: ``get_session(config=GetSessionConfig(num_recent_events=10))`` of it.

Target (:data:`TARGETS`): faster than ``DatabaseSessionService`` on every row (≥ 1x). Each
variant also records ``cpu_us``, the process's CPU time per call (every thread): on a loaded
machine a long CPU-bound call (ours: one burst) waits for a CPU more than a call split into
many short bursts around a thread hop (the peer: SQLAlchemy over aiosqlite's thread), so the
wall time alone can mislead there.
The workload is skipped when the ``adk`` extra or SQLAlchemy is not installed.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

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

PEERS = ("eventlog", "adk-database")
LABELS = {
    "eventlog": "EventLogSessionService (ours, LMDB durable)",
    "adk-database": "ADK DatabaseSessionService (SQLite file, synchronous=FULL)",
}


def _skip() -> str | None:
    try:
        import aiosqlite  # noqa: F401
        import google.adk.sessions  # noqa: F401
        import sqlalchemy  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not installed (pip install 'agent-eventlog[adk,bench]')"
    return None


def _params(quick: bool) -> Params:
    return {
        "seed": 2020,
        "calls": 20 if quick else 300,
        "reps": 2 if quick else 5,
        "history": 20 if quick else 100,
        "get_calls": 20 if quick else 300,
    }


def events(seed: int, n: int) -> list[Any]:
    """``n`` seeded ADK events: user messages, model text, tool calls and responses."""
    from google.adk.events.event import Event
    from google.adk.events.event_actions import EventActions
    from google.genai import types

    rng = random.Random(seed)
    words = ["the", "weather", "paris", "agent", "tool", "session", "state", "runner", "adk"]

    def text(k: int) -> str:
        return " ".join(rng.choice(words) for _ in range(k))

    out: list[Any] = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            content = types.Content(role="user", parts=[types.Part(text=text(12))])
        elif kind == 1:
            call = types.FunctionCall(id=f"call-{i}", name="search", args={"q": text(3)})
            content = types.Content(role="model", parts=[types.Part(function_call=call)])
        elif kind == 2:
            answer = types.FunctionResponse(
                id=f"call-{i - 1}", name="search", response={"result": text(30)}
            )
            content = types.Content(role="user", parts=[types.Part(function_response=answer)])
        else:
            content = types.Content(role="model", parts=[types.Part(text=text(50))])
        delta: dict[str, Any] = {"turn": i, "user:last_seen": i, "temp:scratch": text(2)}
        if kind == 3:
            delta["app:answers"] = i
        out.append(
            Event(
                invocation_id=f"inv-{i // 4}",
                author="user" if kind in (0, 2) else "assistant",
                content=content,
                actions=EventActions(state_delta=delta),
            )
        )
    return out


def _open(
    peer: str, workdir: str, loop: asyncio.AbstractEventLoop
) -> tuple[Any, Any, dict[str, Any]]:
    """(closer, session service, facts about the durability) for ``peer``."""
    if peer == "eventlog":
        from eventlog import AsyncRunStore
        from eventlog.integrations.adk import EventLogSessionService

        store = loop.run_until_complete(
            AsyncRunStore.open(os.path.join(workdir, "store"), durability="durable")
        )
        return store, EventLogSessionService(store), {"durability": "durable"}
    import sqlite3

    from google.adk.sessions.database_session_service import DatabaseSessionService

    path = os.path.join(workdir, "sessions.db")
    service = DatabaseSessionService(f"sqlite+aiosqlite:///{path}")
    loop.run_until_complete(service.prepare_tables())
    conn = sqlite3.connect(path)  # what a new connection of the service gets (the defaults)
    facts = {
        "journal_mode": str(conn.execute("PRAGMA journal_mode").fetchone()[0]),
        "synchronous": int(conn.execute("PRAGMA synchronous").fetchone()[0]),
    }
    conn.close()
    return service, service, facts


def _timed(
    call: Callable[[int], object], *, calls: int, reps: int, warmup_calls: int
) -> tuple[list[float], list[float], float]:
    """:func:`measure_latency`, plus the process's CPU time per call (µs, every thread).

    On a loaded machine a call's wall time also holds the time it waited for a CPU; the CPU
    time says what the call itself costs (a peer that hands work to a thread counts it too).
    """
    spent = [0.0, 0]
    clock = time.process_time

    def timed(i: int) -> object:
        start = clock()
        result = call(i)
        spent[0] += clock() - start
        spent[1] += 1
        return result

    p50s, every = measure_latency(timed, calls=calls, reps=reps, warmup_calls=warmup_calls)
    per_call = spent[0] / spent[1] * 1e6
    return p50s, every, round(per_call, 1)


def _run(peer: str, params: Params, workdir: str) -> dict[str, Sample]:
    import copy

    from google.adk.sessions.base_session_service import GetSessionConfig

    seed, calls, reps = (
        int_param(params, "seed"),
        int_param(params, "calls"),
        int_param(params, "reps"),
    )
    history, get_calls = int_param(params, "history"), int_param(params, "get_calls")
    loop = asyncio.new_event_loop()
    closer, service, facts = _open(peer, workdir, loop)
    run = loop.run_until_complete
    out: dict[str, Sample] = {}
    data = events(seed, calls * (reps + 1) + history)
    state = {"topic": "weather", "user:lang": "fr", "app:version": 3}
    try:
        n = iter(range(1 << 30))
        p50s, every, cpu = _timed(
            lambda i: run(
                service.create_session(app_name="bench", user_id=f"u{i % 8}", state=state)
            ),
            calls=calls,
            reps=reps,
            warmup_calls=5,
        )
        out["create"] = latency_sample(p50s, every, cpu_us=cpu, **facts)
        session = run(service.create_session(app_name="bench", user_id="writer", state=state))
        fresh = [copy.deepcopy(e) for e in data]
        p50s, every, cpu = _timed(
            lambda i: run(service.append_event(session, fresh[next(n)])),
            calls=calls,
            reps=reps,
            warmup_calls=calls,
        )
        out["append"] = latency_sample(p50s, every, cpu_us=cpu)
        full = run(service.create_session(app_name="bench", user_id="reader", state=state))
        for e in data[-history:]:
            run(service.append_event(full, copy.deepcopy(e)))
        got = run(service.get_session(app_name="bench", user_id="reader", session_id=full.id))
        assert got is not None, "get_session must find the session"
        assert len(got.events) == history, "get_session must return every event"
        p50s, every, cpu = _timed(
            lambda i: run(
                service.get_session(app_name="bench", user_id="reader", session_id=full.id)
            ),
            calls=get_calls,
            reps=reps,
            warmup_calls=10,
        )
        out["get"] = latency_sample(p50s, every, cpu_us=cpu, events=history)
        recent = GetSessionConfig(num_recent_events=10)
        p50s, every, cpu = _timed(
            lambda i: run(
                service.get_session(
                    app_name="bench", user_id="reader", session_id=full.id, config=recent
                )
            ),
            calls=get_calls,
            reps=reps,
            warmup_calls=10,
        )
        out["get_recent"] = latency_sample(p50s, every, cpu_us=cpu, events=10)
    finally:
        run(closer.close())
        loop.close()
    return out


_FASTER: tuple[str, Literal[">=", "<="], float] = (
    "faster than DatabaseSessionService on SQLite (same durability)",
    ">=",
    1.0,
)
#: the issue's target per variant: peer -> (text, op, ratio threshold); ratio = peer ÷ ours
TARGETS: dict[str, dict[str, tuple[str, Literal[">=", "<="], float]]] = {
    variant: {"adk-database": _FASTER} for variant in ("create", "append", "get", "get_recent")
}


def _rows(outputs: Mapping[str, PeerOutput], params: Params) -> list[Row]:
    rows: list[Row] = []
    for variant, title in (
        ("create", "ADK sessions: create_session (durable)"),
        ("append", "ADK sessions: append_event (durable)"),
        ("get", f"ADK sessions: get_session of {params['history']} events"),
        ("get_recent", "ADK sessions: get_session(num_recent_events=10)"),
    ):
        rows += compare_rows(23, title, outputs, variant, targets=TARGETS[variant], labels=LABELS)
    return rows


WORKLOAD = Workload(
    number=23,
    key="adk_session",
    title="Google ADK sessions: EventLogSessionService vs ADK's DatabaseSessionService",
    peers=PEERS,
    params=_params,
    run=_run,
    rows=_rows,
    skip=_skip,
)

if __name__ == "__main__":
    from benchmarks.runner import main

    main([WORKLOAD.key])
