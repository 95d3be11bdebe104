"""Two runs side by side: their events aligned, and where they diverge (``eventlog diff``).

Each run's events become steps: an event's type and its key fields (the tool's name and the
outcome, the model, the finish reason, the status), with consecutive text and tool-argument
deltas folded into one step, since the chunking of a stream is noise. ``difflib`` aligns the
two step sequences; the result lists equal and differing hunks with the seqs on each side.

>>> from datetime import UTC, datetime
>>> from uuid import uuid4
>>> from eventlog.events import Failure, Success, TextDelta, ToolExecutionFinished
>>> from eventlog.model.records import EventRecord
>>> now = datetime.now(UTC)
>>> def records(*events):
...     rid = uuid4()
...     return [EventRecord(rid, i + 1, i + 1, e, now) for i, e in enumerate(events)]
>>> a = records(TextDelta("a"), TextDelta("b"),
...             ToolExecutionFinished("c", "search", Success(1), 5))
>>> b = records(TextDelta("ab"), ToolExecutionFinished("c", "search", Failure("x"), 5))
>>> hunks = diff_events(a, b)
>>> [(h.op, [s.label for s in h.a], [s.label for s in h.b]) for h in hunks][1]
('replace', ['ToolExecutionFinished(search, success)'], ['ToolExecutionFinished(search, failure)'])
>>> [(s.label, s.count) for s in hunks[0].a]
[('TextDelta', 2)]
"""

from __future__ import annotations

from collections.abc import Sequence
from difflib import SequenceMatcher
from uuid import UUID

import msgspec

from eventlog.model.events import (
    Failure,
    ModelStarted,
    RunCompleted,
    RunStatusChanged,
    TextDelta,
    ToolCallCompleted,
    ToolCallDelta,
    ToolCallStarted,
    ToolExecutionFinished,
    ToolExecutionStarted,
)
from eventlog.model.records import EventRecord
from eventlog.tools.story import RunReader, RunSummary, load_run, summarize

__all__ = ["DiffHunk", "RunDiff", "Step", "diff_events", "diff_runs", "steps_of"]


class Step(msgspec.Struct, frozen=True):
    """One step of a run: an event (or a run of deltas) by type and key fields.

    ``label`` is what is compared (``"ToolExecutionFinished(search, failure)"``);
    ``first_seq``..``last_seq`` the events it covers, ``count`` how many.
    """

    label: str
    first_seq: int
    last_seq: int
    count: int = 1


class DiffHunk(msgspec.Struct):
    """A stretch of the alignment, and the steps of each side (``a``, ``b``).

    ``op`` is ``equal``, ``replace``, ``delete`` (only in A) or ``insert`` (only in B).
    """

    op: str
    a: list[Step]
    b: list[Step]


class RunDiff(msgspec.Struct):
    """The alignment of two runs, their summaries, and the first hunk that differs.

    ``diverges_at`` is the index in ``hunks`` of the first differing hunk (None: the runs
    took the same steps).
    """

    run_a: UUID
    run_b: UUID
    same_steps: bool
    diverges_at: int | None
    hunks: list[DiffHunk]
    summary_a: RunSummary
    summary_b: RunSummary


_FOLDED = (TextDelta, ToolCallDelta)


def _label(record: EventRecord) -> str:
    event = record.event
    name = record.type
    if isinstance(event, ModelStarted):
        return f"{name}({event.model})"
    if isinstance(event, ToolCallStarted | ToolExecutionStarted):
        return f"{name}({event.tool_name})"
    if isinstance(event, ToolCallCompleted):
        return f"{name}({event.call.name})"
    if isinstance(event, ToolExecutionFinished):
        outcome = "failure" if isinstance(event.result, Failure) else "success"
        return f"{name}({event.tool_name}, {outcome})"
    if isinstance(event, RunCompleted):
        return f"{name}({event.finish_reason})"
    if isinstance(event, RunStatusChanged):
        return f"{name}({event.status})"
    return name


def steps_of(events: Sequence[EventRecord]) -> list[Step]:
    """The steps of a run's events (consecutive deltas of one type folded into one step)."""
    out: list[Step] = []
    for record in events:
        label = _label(record)
        last = out[-1] if out else None
        if (
            last is not None
            and isinstance(record.event, _FOLDED)
            and last.label == label
            and last.last_seq == record.seq - 1
        ):
            out[-1] = Step(label, last.first_seq, record.seq, last.count + 1)
        else:
            out.append(Step(label, record.seq, record.seq))
    return out


def diff_events(a: Sequence[EventRecord], b: Sequence[EventRecord]) -> list[DiffHunk]:
    """Align two runs' events step by step (``difflib.SequenceMatcher`` over the labels)."""
    sa, sb = steps_of(a), steps_of(b)
    matcher = SequenceMatcher(None, [s.label for s in sa], [s.label for s in sb], autojunk=False)
    return [DiffHunk(op, sa[i1:i2], sb[j1:j2]) for op, i1, i2, j1, j2 in matcher.get_opcodes()]


def diff_runs(reader: RunReader, run_a: UUID | str, run_b: UUID | str) -> RunDiff:
    """Align the runs ``run_a`` and ``run_b`` (``RunNotFound`` if either is missing)."""
    rec_a, ev_a = load_run(reader, run_a)
    rec_b, ev_b = load_run(reader, run_b)
    hunks = diff_events(ev_a, ev_b)
    first = next((i for i, h in enumerate(hunks) if h.op != "equal"), None)
    return RunDiff(
        run_a=rec_a.id,
        run_b=rec_b.id,
        same_steps=first is None,
        diverges_at=first,
        hunks=hunks,
        summary_a=summarize(rec_a, ev_a),
        summary_b=summarize(rec_b, ev_b),
    )
