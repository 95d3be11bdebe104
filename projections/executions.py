"""Tool executions and per-session statistics, derived from the log (not a second store).

Keys (this projector's keyspace):

- ``r`` + run_id → session_id (learned when the run is created)
- ``k`` + run_id + blake2b(call_id) → position of the execution's first event
- ``e`` + session + position + run_id → ``Execution`` (chronological across the session's
  runs)
- ``x`` + run_id + position → ``b""`` (to delete a run's executions)
- ``u`` + session + run_id → ``[tool_calls, failures, input, output, total tokens]``

A fork's shared events keep their parent's positions: the fork's executions of its prefix and
the parent's are two entries at the same position, told apart by the run id (version 3; the
entries of version 2 had no run id, so a fork's prefix and its parent shared one key, written
by whichever was folded last, and deleting the fork deleted the parent's entry). No key is
shared between runs: the view does not depend on the order in which runs are folded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import ClassVar
from uuid import UUID

import msgspec

from eventlog.engine.protocols import ProjectionReader, ProjectionTx
from eventlog.model.events import (
    Failure,
    TokenUsage,
    ToolExecutionFinished,
    ToolExecutionStarted,
    UsageRecorded,
)
from eventlog.model.records import EventRecord, Execution, ExecutionStatus, RunRecord
from projections._keys import u64

__all__ = ["ExecutionsProjector", "ExecutionsQuery"]


class _RunStats(msgspec.Struct, array_like=True):
    tool_calls: int = 0
    failures: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0


_enc = msgspec.msgpack.Encoder()
_exec_dec = msgspec.msgpack.Decoder(Execution)
_stats_dec = msgspec.msgpack.Decoder(_RunStats)
_EMPTY_STATS = _enc.encode(_RunStats())


def _call_key(run_id: bytes, call_id: str) -> bytes:
    return b"k" + run_id + hashlib.blake2b(call_id.encode(), digest_size=16).digest()


class ExecutionsQuery:
    """Reads of the executions view."""

    def __init__(self, reader: ProjectionReader) -> None:
        self._reader = reader

    def executions(self, session_id: UUID) -> list[Execution]:
        """Every tool execution of the session's runs, in log order."""
        return [_exec_dec.decode(v) for _, v in self._reader.scan(b"e" + session_id.bytes)]

    def totals(self, session_id: UUID) -> tuple[int, int, TokenUsage]:
        """Tool calls, tool failures and summed token usage over the session's runs."""
        calls = failures = 0
        usage = TokenUsage()
        for _, raw in self._reader.scan(b"u" + session_id.bytes):
            s = _stats_dec.decode(raw)
            calls += s.tool_calls
            failures += s.failures
            usage = usage + TokenUsage(s.input_tokens, s.output_tokens, s.total_tokens)
        return calls, failures, usage


class ExecutionsProjector:
    """Maintains executions and per-run statistics (see the module docstring)."""

    name: ClassVar[str] = "executions"
    # 2: a run's totals exist from its creation (an append never looks for an absent key:
    # on PostgreSQL that look-up is a round trip); 3: the run id ends each ``e`` key (a
    # fork's prefix and its parent no longer share one)
    version: ClassVar[int] = 3
    #: a rebuild may feed it stream by stream:
    #: each run's executions and totals follow its own events (keyed by position)
    replay_order: ClassVar[str] = "stream"
    event_types: ClassVar[frozenset[str]] = frozenset(
        {"ToolExecutionStarted", "ToolExecutionFinished", "UsageRecorded"}
    )

    def on_run_created(self, tx: ProjectionTx, run: RunRecord) -> None:
        rid, sid = run.id.bytes, run.session_id.bytes
        tx.put(b"r" + rid, sid)
        tx.put(b"u" + sid + rid, _EMPTY_STATS)

    def on_run_deleted(self, tx: ProjectionTx, run: RunRecord) -> None:
        rid, sid = run.id.bytes, run.session_id.bytes
        for key, _ in list(tx.scan(b"x" + rid)):
            tx.delete(b"e" + sid + key[17:] + rid)
            tx.delete(key)
        for key, _ in list(tx.scan(b"k" + rid)):
            tx.delete(key)
        tx.delete(b"u" + sid + rid)
        tx.delete(b"r" + rid)

    def apply(self, tx: ProjectionTx, record: EventRecord) -> None:
        self.apply_batch(tx, (record,))

    def apply_batch(self, tx: ProjectionTx, records: Sequence[EventRecord]) -> None:
        """One append's records (one stream): the run's totals are read and written once."""
        rid = records[0].run_id.bytes
        sid = tx.get(b"r" + rid)
        if sid is None:
            return  # not a run
        stats_key = b"u" + sid + rid
        raw_stats = tx.get(stats_key)
        stats = _RunStats() if raw_stats is None else _stats_dec.decode(raw_stats)
        for record in records:
            event = record.event
            if isinstance(event, UsageRecorded):
                stats.input_tokens += event.usage.input_tokens
                stats.output_tokens += event.usage.output_tokens
                stats.total_tokens += event.usage.total_tokens
            elif isinstance(event, ToolExecutionStarted | ToolExecutionFinished):
                self._execution(tx, sid, rid, record, event, stats)
        tx.put(stats_key, _enc.encode(stats))

    @staticmethod
    def _execution(
        tx: ProjectionTx,
        sid: bytes,
        rid: bytes,
        record: EventRecord,
        event: ToolExecutionStarted | ToolExecutionFinished,
        stats: _RunStats,
    ) -> None:
        call_key = _call_key(rid, event.call_id)
        known = tx.get(call_key)
        if known is None:  # first event of this execution
            where = u64(record.position)
            tx.put(call_key, where)
            tx.put(b"x" + rid + where, b"")
            execution = Execution(
                event.call_id, event.tool_name, ExecutionStatus.PENDING, None, record.run_id
            )
            stats.tool_calls += 1
        else:
            where = known
            execution = _exec_dec.decode(tx.get(b"e" + sid + where + rid) or b"")
        if isinstance(event, ToolExecutionFinished):
            failed = isinstance(event.result, Failure)
            if failed and execution.status != ExecutionStatus.FAILED:
                stats.failures += 1
            execution.status = ExecutionStatus.FAILED if failed else ExecutionStatus.SUCCESS
            execution.duration_ms = event.duration_ms
        tx.put(b"e" + sid + where + rid, _enc.encode(execution))

    def query(self, reader: ProjectionReader) -> ExecutionsQuery:
        """The query object ``store.projection("executions")`` returns."""
        return ExecutionsQuery(reader)
