"""The writer of the crash campaign: appends in a loop and acknowledges every append.

Operations, chosen at random (seeded): create a run, append one event (with
``expected_seq``), append a batch, append to 2-3 runs in one ``append_many``, change a run's
status, finish a run, delete a run. Every event carries an ``event_id`` so the ledger can name
it; a status change is named by its seq and status. The writer owns its session and runs (no
other process appends to them), so it knows each run's head. It never stops by itself before
``max_seconds``: the driver kills it.
"""

from __future__ import annotations

import random
import time
import traceback
from multiprocessing.synchronize import Event as EventFlag
from typing import Literal
from uuid import UUID, uuid4

from eventlog import AppendRequest, RunStore
from eventlog.events import (
    Event,
    ModelStarted,
    RunCompleted,
    Success,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolCallCompleted,
    ToolExecutionFinished,
    UsageRecorded,
)
from reliability.ledger import Ledger

__all__ = ["run_writer"]

Durability = Literal["durable", "fast"]
NON_TERMINAL = ("session_loaded", "building_context", "calling_model", "waiting_for_tools")


def random_event(rng: random.Random) -> Event:
    """One event of a realistic mix; about 2% are 20-60 KB (they make the map grow)."""
    kind = rng.random()
    if kind < 0.5:
        size = rng.randint(20_000, 60_000) if rng.random() < 0.02 else rng.randint(1, 200)
        return TextDelta("x" * size)
    if kind < 0.65:
        return ModelStarted("openai", "gpt-4o", rng.randint(1, 50))
    if kind < 0.8:
        n = rng.randint(1, 5000)
        return UsageRecorded(TokenUsage(n, n // 2, n + n // 2))
    if kind < 0.9:
        return ToolCallCompleted(ToolCall(f"c{rng.randint(1, 99)}", "search", {"q": "lmdb"}))
    return ToolExecutionFinished("c1", "search", Success({"hits": rng.randint(0, 9)}), 12)


class Writer:
    """One writer incarnation: its session, its live runs and their heads."""

    def __init__(self, store: RunStore, ledger: Ledger, rng: random.Random) -> None:
        self.store = store
        self.ledger = ledger
        self.rng = rng
        self.heads: dict[UUID, int] = {}  # live (non-terminal) runs -> last seq
        self.session = uuid4()
        ledger.write(k="i", op="session", id=str(self.session))
        store.create_session(session_id=self.session, title="crash writer")
        ledger.write(k="a", op="session", id=str(self.session))

    def create(self) -> None:
        rid = uuid4()
        self.ledger.write(k="i", op="create", run=str(rid), session=str(self.session))
        self.store.create_run(self.session, provider="p", model="m", run_id=rid)
        self.ledger.write(k="a", op="create", run=str(rid), session=str(self.session))
        self.heads[rid] = 0

    def append(self, runs: list[UUID], sizes: list[int], single: bool = False) -> None:
        batches = [[random_event(self.rng) for _ in range(n)] for n in sizes]
        ids = [[uuid4() for _ in range(n)] for n in sizes]
        self.ledger.write(
            k="i",
            op="append",
            events=[[str(r), str(e)] for r, es in zip(runs, ids, strict=True) for e in es],
        )
        if single:
            records = [
                [
                    self.store.append_event(
                        runs[0], batches[0][0], expected_seq=self.heads[runs[0]], event_id=ids[0][0]
                    )
                ]
            ]
        elif len(runs) == 1:
            records = [self.store.append_events(runs[0], batches[0], event_ids=ids[0])]
        else:
            records = self.store.append_many(
                [
                    AppendRequest(r, b, expected_seq=self.heads[r], event_ids=i)
                    for r, b, i in zip(runs, batches, ids, strict=True)
                ]
            )
        acked = [[str(x.run_id), x.seq, x.position, str(x.event_id)] for rs in records for x in rs]
        self.ledger.write(k="a", op="append", events=acked)
        for run, rs in zip(runs, records, strict=True):
            self.heads[run] = rs[-1].seq

    def status(self, run: UUID, status: str) -> None:
        seq = self.heads[run] + 1
        self.ledger.write(k="i", op="status", run=str(run), seq=seq, status=status)
        self.store.update_run_status(run, status)
        self.ledger.write(k="a", op="status", run=str(run), seq=seq, status=status)
        self.heads[run] = seq

    def finish(self, run: UUID) -> None:
        self.append([run], [1])  # a last event, then the terminal one
        eid = uuid4()
        self.ledger.write(k="i", op="append", events=[[str(run), str(eid)]])
        rec = self.store.append_event(run, RunCompleted("stop", 1), event_id=eid)
        self.ledger.write(k="a", op="append", events=[[str(run), rec.seq, rec.position, str(eid)]])
        del self.heads[run]  # terminal: nothing more may be appended

    def delete(self, run: UUID) -> None:
        positions = [r.position for r in self.store.list_events(run)]
        self.ledger.write(k="i", op="delete", run=str(run), positions=positions)
        self.store.delete_run(run)
        self.ledger.write(k="a", op="delete", run=str(run), positions=positions)
        self.heads.pop(run, None)

    def step(self) -> None:
        rng = self.rng
        if len(self.heads) < 3 or rng.random() < 0.03:
            self.create()
            return
        runs = list(self.heads)
        run = rng.choice(runs)
        roll = rng.random()
        if roll < 0.35:
            self.append([run], [1], single=True)
        elif roll < 0.6:
            self.append([run], [rng.randint(2, 20)])
        elif roll < 0.78:
            chosen = rng.sample(runs, rng.randint(2, min(3, len(runs))))
            self.append(chosen, [rng.randint(1, 5) for _ in chosen])
        elif roll < 0.9:
            self.status(run, rng.choice(NON_TERMINAL))
        elif roll < 0.95:
            self.finish(run)
        else:
            self.delete(run)


def run_writer(
    path: str,
    ledger_path: str,
    seed: int,
    durability: Durability,
    ready: EventFlag | None = None,
    max_seconds: float = 120.0,
    map_size: int = 1 << 20,
) -> None:
    """Open the store, then append until killed (or ``max_seconds``); see the module doc."""
    ledger = Ledger(ledger_path)
    try:
        with RunStore.open(path, durability=durability, map_size=map_size) as store:
            ledger.write(k="open")
            if ready is not None:
                ready.set()
            writer = Writer(store, ledger, random.Random(seed))
            deadline = time.monotonic() + max_seconds
            while time.monotonic() < deadline:
                writer.step()
    except BaseException:
        ledger.write(k="err", error=traceback.format_exc())
        raise
