"""Exactly-once effects under SIGKILL: a process manager's outputs and its ack in one append.

A child process consumes input events as the persistent consumer ``pm`` and, for each, writes
its outputs and the consumer's new position in one ``append_many(..., ack=)``
(:mod:`reliability.process_manager`). The parent kills it with SIGKILL at random moments -
right after it has seen a random number of the child's commits (waiting on a subscription,
not sleeping) or while the child is still opening the store - then restarts it. After every
kill the outputs are exactly the inputs up to the consumer's position; at the end every input
has exactly one output and the consumer's position is the last input's.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
import signal
from dataclasses import dataclass, field
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from pathlib import Path

import pytest
from pg_support import url_for

from eventlog import RunStore
from eventlog.testing.event_types import TicketTagged
from reliability.process_manager import (
    CONSUMER,
    INPUTS,
    OUT_KIND,
    OUTPUTS,
    output_stream,
    run_process_manager,
)

INPUT_COUNT = 120
START_TIMEOUT = 60.0  # seconds for a child to open the store
JOIN_TIMEOUT = 60.0
MAX_ROUNDS = 200


@dataclass
class Outcome:
    kills: int = 0
    kills_while_opening: int = 0
    clean_exits: int = 0
    violations: list[str] = field(default_factory=list)


def _context() -> ForkServerContext:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["reliability.process_manager"])
    return ctx


def _outputs(store: RunStore) -> list[int]:
    """The input positions in the shared output stream, in order."""
    out = []
    for record in store.read_stream(OUTPUTS):
        assert isinstance(record.event, TicketTagged)
        out.append(int(record.event.tag))
    return out


def _check(store: RunStore, inputs: list[int], outcome: Outcome, when: str) -> int:
    """Outputs = the inputs up to the consumer's position, once each; return that position."""
    [consumer] = [c for c in store.consumers() if c.name == CONSUMER]
    done = [p for p in inputs if p <= consumer.position]
    got = _outputs(store)
    if got != done:
        outcome.violations.append(f"{when}: consumer at {consumer.position}, outputs {got}")
    for p in done[-3:]:  # the newest per-input streams: created once, one event each
        if [r.seq for r in store.read_stream(output_stream(p))] != [1]:
            outcome.violations.append(f"{when}: output stream of input {p} is not one event")
    return consumer.position


def _wait_for_commits(store: RunStore, after: int, count: int, proc: BaseProcess) -> None:
    """Return once ``count`` events after position ``after`` are committed, or the child ended.

    Waits on a subscription (woken by each commit), checking the child every half second of
    silence: a child that failed must end the round, not a minute later.
    """
    seen = 0
    while proc.is_alive():
        with store.subscribe(after_position=after, timeout=0.5) as sub:
            for record in sub:
                after = record.position
                seen += 1
                if seen >= count:
                    return


def _campaign(path: str, seed: int) -> Outcome:
    rng = random.Random(seed)
    ctx = _context()
    outcome = Outcome()
    with RunStore.open(path) as store:
        store.create_stream(INPUTS, kind="reliability.input")
        store.create_stream(OUTPUTS, kind=OUT_KIND)
        records = store.append_to_stream(
            INPUTS, [TicketTagged(f"in-{i}") for i in range(INPUT_COUNT)]
        )
        inputs = [r.position for r in records]
        store.subscribe(name=CONSUMER).close()  # registered at 0
        acked = 0
        for round_ in range(MAX_ROUNDS):
            if acked >= inputs[-1]:
                break
            ready = ctx.Event()
            proc = ctx.Process(
                target=run_process_manager, args=(path, inputs[-1], rng.randrange(1 << 30), ready)
            )
            proc.start()
            assert proc.pid is not None
            if rng.random() < 0.1:
                outcome.kills_while_opening += 1  # killed at once: while it starts or opens
            else:
                if not ready.wait(START_TIMEOUT):
                    outcome.violations.append(f"round {round_}: the child did not start")
                remaining = sum(1 for p in inputs if p > acked)
                # each input is 2 events: stop after a random number of them, mid-input too
                count = rng.randint(1, min(15, 2 * remaining))
                _wait_for_commits(store, store.last_position(), count, proc)
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.join(JOIN_TIMEOUT)
            if proc.exitcode == -signal.SIGKILL:
                outcome.kills += 1
            elif proc.exitcode == 0:
                outcome.clean_exits += 1  # it finished the last input before the kill
            else:
                outcome.violations.append(f"round {round_}: the child exited with {proc.exitcode}")
            acked = _check(store, inputs, outcome, f"after round {round_}")
            if outcome.violations:
                return outcome
        if acked < inputs[-1]:  # the last run, never killed
            ready = ctx.Event()
            proc = ctx.Process(target=run_process_manager, args=(path, inputs[-1], seed, ready))
            proc.start()
            proc.join(JOIN_TIMEOUT * 4)
            if proc.exitcode != 0:
                outcome.violations.append(f"the last run exited with {proc.exitcode}")
        assert _check(store, inputs, outcome, "at the end") == inputs[-1]
        assert _outputs(store) == inputs  # every input exactly once, in order
        assert len(store.list_streams(OUT_KIND, limit=INPUT_COUNT + 10)) == INPUT_COUNT + 1
        assert store.verify() == []
    return outcome


def test_ack_with_append_is_exactly_once_under_sigkill_on_lmdb(tmp_path: Path) -> None:
    outcome = _campaign(str(tmp_path / "store"), seed=21)
    assert outcome.violations == []
    assert outcome.kills >= 10
    assert outcome.kills_while_opening >= 1


@pytest.mark.usefixtures("pg_schemas")
def test_ack_with_append_is_exactly_once_under_sigkill_on_postgres(tmp_path: Path) -> None:
    outcome = _campaign(url_for(tmp_path / "store"), seed=22)
    assert outcome.violations == []
    assert outcome.kills >= 10
