"""Workload 29: the Agents SDK's branches and usage, ``AdvancedEventLogSession`` against the
SDK's own ``AdvancedSQLiteSession`` on a file, at the same durability.

``python -m benchmarks.agents_branches [--quick] [--json]``

Ours: ``AdvancedEventLogSession`` over an ``AsyncRunStore`` on LMDB, ``durability="durable"``
(fsync per commit); a branch is a zero-copy fork of the session's stream. The peer:
``agents.extensions.memory.AdvancedSQLiteSession(session_id=..., db_path=<file>,
create_tables=True)``, as the SDK sets it up (WAL journal; SQLite's default
``synchronous=FULL``, so the WAL is synced at every commit - checked in the worker and kept in
the output); a branch copies the structure rows of the turns it keeps. Both run on one event
loop in their worker, one call at a time, on the same seeded items (turns of a user message,
a function call, its output and an assistant message; :func:`benchmarks.agents_session.items`)
and the same run result (a real ``RunResult`` from ``Runner.run`` with the SDK's
``ScriptedModel``, as tests/integrations/test_openai_agents_branches.py makes it). Variants
(µs per call), each on sessions of ``turns`` user turns (4 items each):

- ``create``: ``create_branch_from_turn(turns // 2 + 1)`` of ``main``, a new name each call
  (the SDK never reuses one), a fresh session per repetition; after each call the session's
  pointer is set back to ``main`` by an attribute assignment (both switch to the new branch,
  and a public ``switch_to_branch`` would be timed with it);
- ``get_branch``: ``get_items()`` of the current branch after ``switch_to_branch`` to a branch
  made at the middle turn, holding one turn of its own (ours: the parent's items up to the
  fork, then its own);
- ``switch``: ``switch_to_branch``, alternately ``main`` and that branch;
- ``store_usage``: ``store_run_usage(result)`` for the last turn of ``main`` (durable; a
  fresh session per repetition; a later record of the turn replaces the earlier one);
- ``session_usage``: ``get_session_usage()`` (every branch) of a session with usage stored
  for each of its turns and for the one turn of its branch.

Targets (:data:`TARGETS`): every row faster than ``AdvancedSQLiteSession`` (≥ 1x), as issue
20 asks of each adapter against the framework's own default persistent store.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Callable, Mapping
from typing import Any, Literal

from agents import Agent, Runner
from agents.extensions.memory.advanced_sqlite_session import AdvancedSQLiteSession
from agents.testing import ModelStep, ScriptedModel, assistant_message
from agents.usage import Usage

from benchmarks.agents_session import items
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
from eventlog.integrations.openai_agents_branches import AdvancedEventLogSession

PEERS = ("eventlog", "advanced-sqlite")
LABELS = {
    "eventlog": "AdvancedEventLogSession (ours, LMDB durable)",
    "advanced-sqlite": "SDK AdvancedSQLiteSession (file, WAL, synchronous=FULL)",
}
#: the usage of the scripted run (one model step)
USAGE = {"requests": 1, "input_tokens": 120, "output_tokens": 30, "total_tokens": 150}


def _params(quick: bool) -> Params:
    return {
        "seed": 2929,
        "turns": 5 if quick else 50,
        "calls": 10 if quick else 100,
        "reps": 2 if quick else 5,
        "get_calls": 20 if quick else 300,
    }


def _usage() -> Usage:
    return Usage(
        requests=USAGE["requests"],
        input_tokens=USAGE["input_tokens"],
        output_tokens=USAGE["output_tokens"],
        total_tokens=USAGE["total_tokens"],
    )


def _run_result() -> Any:
    """A real ``RunResult`` of one scripted step (no session), its usage :data:`USAGE`."""
    model = ScriptedModel(
        [ModelStep(output=[assistant_message("Done.", item_id="msg_r")], usage=_usage())]
    )
    agent = Agent(name="a", instructions="be brief", model=model)
    return asyncio.run(Runner.run(agent, "Hi"))


def _open(
    peer: str, workdir: str, loop: asyncio.AbstractEventLoop
) -> tuple[Any, Callable[[str], Any], Callable[[Any], None], dict[str, Any]]:
    """(store or None, session factory, back-to-``main``, durability facts) for ``peer``."""
    if peer == "eventlog":
        store = loop.run_until_complete(
            AsyncRunStore.open(os.path.join(workdir, "store"), durability="durable")
        )

        def ours_main(session: Any) -> None:
            session._branch, session._active = "main", session.store_session_id

        return (
            store,
            lambda sid: AdvancedEventLogSession(sid, store),
            ours_main,
            {"durability": "durable"},
        )
    path = os.path.join(workdir, "sessions.db")
    opened: list[AdvancedSQLiteSession] = []

    def make(sid: str) -> AdvancedSQLiteSession:
        session = AdvancedSQLiteSession(session_id=sid, db_path=path, create_tables=True)
        opened.append(session)
        return session

    probe = make("probe")
    conn = probe._get_connection()
    facts = {
        "journal_mode": str(conn.execute("PRAGMA journal_mode").fetchone()[0]),
        "synchronous": int(conn.execute("PRAGMA synchronous").fetchone()[0]),
    }

    def theirs_main(session: Any) -> None:
        session._branch_state = ("main", session._branch_state[1])

    return opened, make, theirs_main, facts


def _run(peer: str, params: Params, workdir: str) -> dict[str, Sample]:
    seed, turns, calls, reps = (
        int_param(params, "seed"),
        int_param(params, "turns"),
        int_param(params, "calls"),
        int_param(params, "reps"),
    )
    get_calls = int_param(params, "get_calls")
    result = _run_result()
    loop = asyncio.new_event_loop()
    store, make, to_main, facts = _open(peer, workdir, loop)
    run = loop.run_until_complete
    out: dict[str, Sample] = {}
    data = items(seed, 4 * (turns + 1))
    history, extra = data[: 4 * turns], data[4 * turns :]
    mid = turns // 2 + 1

    def seeded(sid: str) -> Any:
        session = make(sid)
        run(session.add_items(history))
        return session

    try:
        # create: a branch of main at the middle turn, a fresh session per repetition
        warm = 3
        sessions = [seeded(f"create-{r}") for r in range(reps + 1)]
        counter = itertools.count()

        def create(_: int) -> None:
            n = next(counter)
            session = sessions[0 if n < warm else 1 + (n - warm) // calls]
            run(session.create_branch_from_turn(mid, f"b{n}"))
            to_main(session)

        p50s, every = measure_latency(create, calls=calls, reps=reps, warmup_calls=warm)
        assert len(run(sessions[-1].get_items())) == len(history)
        out["create"] = latency_sample(p50s, every, items=len(history), at_turn=mid, **facts)
        # get_branch: the branch made at the middle turn, one turn of its own
        reader = seeded("read")
        run(reader.create_branch_from_turn(mid, "mid"))
        run(reader.add_items(extra))
        run(reader.switch_to_branch("main"))
        run(reader.switch_to_branch("mid"))
        expected = history[: 4 * (mid - 1)] + extra
        assert run(reader.get_items()) == expected, "get_items must read the branch"
        p50s, every = measure_latency(
            lambda i: run(reader.get_items()), calls=get_calls, reps=reps, warmup_calls=20
        )
        out["get_branch"] = latency_sample(p50s, every, items=len(expected))
        # switch: main and the branch, alternately
        names = ("main", "mid")
        p50s, every = measure_latency(
            lambda i: run(reader.switch_to_branch(names[i % 2])),
            calls=get_calls,
            reps=reps,
            warmup_calls=20,
        )
        out["switch"] = latency_sample(p50s, every)
        # store_usage: the last turn of main, a fresh session per repetition
        users = [seeded(f"usage-{r}") for r in range(reps)]
        p50s, every = measure_latency(
            lambda i: run(users[i // calls].store_run_usage(result)),
            calls=calls,
            reps=reps,
            warmup_calls=5,
        )
        got = run(users[-1].get_turn_usage(turns))
        assert isinstance(got, dict)
        assert got["total_tokens"] == USAGE["total_tokens"], "the usage of the last turn"
        out["store_usage"] = latency_sample(p50s, every, **facts)
        # session_usage: usage stored for every turn of main and the branch's own turn
        totals = make("totals")
        for t in range(turns):
            run(totals.add_items(history[4 * t : 4 * t + 4]))
            run(totals.store_run_usage(result))
        run(totals.create_branch_from_turn(mid, "mid"))
        run(totals.add_items(extra))
        run(totals.store_run_usage(result))
        stored = turns + 1
        assert run(totals.get_session_usage()) == {
            **{k: v * stored for k, v in USAGE.items()},
            "total_turns": stored,
        }, "get_session_usage must sum every branch's turns"
        p50s, every = measure_latency(
            lambda i: run(totals.get_session_usage()),
            calls=get_calls,
            reps=reps,
            warmup_calls=20,
        )
        out["session_usage"] = latency_sample(p50s, every, turns=stored)
    finally:
        if isinstance(store, AsyncRunStore):
            run(store.close())
        else:
            for session in store:
                session.close()
        loop.close()
    return out


#: the issue's target per variant: peer -> (text, op, ratio threshold); ratio = peer ÷ ours
_FASTER: tuple[str, Literal[">=", "<="], float] = (
    "faster than AdvancedSQLiteSession (same durability)",
    ">=",
    1.0,
)
TARGETS: dict[str, dict[str, tuple[str, Literal[">=", "<="], float]]] = {
    variant: {"advanced-sqlite": _FASTER}
    for variant in ("create", "get_branch", "switch", "store_usage", "session_usage")
}


def _rows(outputs: Mapping[str, PeerOutput], params: Params) -> list[Row]:
    turns = int_param(params, "turns")
    rows: list[Row] = []
    for variant, title in (
        ("create", f"Agents branches: create_branch_from_turn, {turns} turns (durable)"),
        ("get_branch", "Agents branches: get_items() of a branch made at the middle turn"),
        ("switch", "Agents branches: switch_to_branch"),
        ("store_usage", "Agents branches: store_run_usage (durable)"),
        ("session_usage", "Agents branches: get_session_usage(), every branch"),
    ):
        rows += compare_rows(29, title, outputs, variant, targets=TARGETS[variant], labels=LABELS)
    return rows


WORKLOAD = Workload(
    number=29,
    key="agents_branches",
    title="OpenAI Agents SDK branches: AdvancedEventLogSession vs AdvancedSQLiteSession",
    peers=PEERS,
    params=_params,
    run=_run,
    rows=_rows,
)

if __name__ == "__main__":
    from benchmarks.runner import main

    main([WORKLOAD.key])
