"""The story of a run: show (summary + tool-call tree), replay (state at seq N), diff (two runs).

Each command renders what a library function returns: :mod:`eventlog.tools.story`,
:mod:`eventlog.model.debug_state`, :mod:`eventlog.tools.run_diff`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from eventlog.cli._common import (
    DEFAULT_DB,
    DbOption,
    JsonFlag,
    NlFlag,
    die,
    fail_cleanly,
    open_store,
    resolve_run,
    to_builtins,
)
from eventlog.cli.render import safe
from eventlog.cli.timeline import clock, fmt_ms, table_console
from eventlog.cli.what_if import DropOption, InsertOption, WhatIfOption, show_what_if

if TYPE_CHECKING:
    from rich.console import Console

    from eventlog.tools.story import RunSummary

__all__ = ["register"]

RunArg = Annotated[str, typer.Argument(help="Run id or a unique prefix.")]


def _short(value: Any, width: int = 70) -> str:
    text = safe(json.dumps(value, ensure_ascii=False, default=str))
    return text if len(text) <= width else text[: width - 1] + "…"


def _print_summary(out: Console, s: RunSummary) -> None:
    out.print(f"run {s.run_id}  ({safe(s.provider)}/{safe(s.model)}, session {s.session_id})")
    out.print(
        f"  status      {s.status}" + (f" ({safe(s.finish_reason)})" if s.finish_reason else "")
    )
    if s.started_at is not None:
        out.print(f"  started     {clock(s.started_at, date=True)} UTC")
    if s.ended_at is not None:
        out.print(f"  ended       {clock(s.ended_at, date=True)} UTC")
    elif s.last_event_at is not None:
        out.print(f"  last event  {clock(s.last_event_at, date=True)} UTC (not ended)")
    out.print(f"  duration    {fmt_ms(s.duration_ms) or '-'}")
    out.print(f"  events      {s.events}")
    out.print(f"  iterations  {s.iterations}, model calls {s.model_calls}")
    u = s.usage
    out.print(f"  tokens      {u.total_tokens} (input {u.input_tokens}, output {u.output_tokens})")
    failed = (
        f", {s.tool_failures} failed ({safe(', '.join(s.failed_tools))})" if s.tool_failures else ""
    )
    out.print(f"  tool calls  {s.tool_calls}{failed}; tool time {fmt_ms(s.tool_time_ms)}")
    if s.metadata:
        out.print(f"  metadata    {_short(s.metadata, 100)}")
    if s.error is not None:
        out.print(f"  error       {safe(s.error)}")


def show(
    run: RunArg,
    db: DbOption = DEFAULT_DB,
    json_out: JsonFlag = False,
) -> None:
    """A run's story: its summary (status, times, tokens, tools, error), then its tool-call tree.

    The tree is iteration -> model call (latency, tokens, text) -> tool calls (arguments,
    outcome, duration). Tool calls that started executing and have no result (a crash in
    the middle: effects unknown) are flagged UNRESOLVED. --json prints the record, the
    stored state, the summary, the tree and the unresolved tool calls.

    Example: eventlog show 3f2a
    """
    from eventlog.cli.lineage import fork_lines
    from eventlog.tools.story import run_story

    with fail_cleanly(), open_store(db) as store:
        rid = resolve_run(store, run)
        record, state = store.get_run(rid), store.get_run_state(rid)
        story = run_story(store, rid)
        unresolved = store.unresolved_tool_calls(rid)
        lineage_lines, lineage_doc = fork_lines(store, rid)
    if record is None or state is None:
        die(f"run {run} not found")
    if json_out:
        doc = {
            "run": to_builtins(record),
            "state": to_builtins(state),
            "summary": to_builtins(story.summary),
            "tree": to_builtins(story.tree),
            "unresolved_tool_calls": to_builtins(unresolved),
            **lineage_doc,
        }
        typer.echo(json.dumps(doc, indent=2))
        return
    out = table_console()
    _print_summary(out, story.summary)
    if unresolved:
        out.print(
            f"  UNRESOLVED  {len(unresolved)} tool call(s) started and have no result: "
            "their effects are unknown; check them before running them again"
        )
        for c in unresolved:
            at = "" if c.started_at is None else f" at {clock(c.started_at, date=True)} UTC"
            out.print(
                f"    {safe(c.tool_name)}({_short(c.arguments, 60)})  [{safe(c.call_id)}] "
                f"started seq {c.started_seq}{at}"
            )
    for line in lineage_lines:
        out.print(line)
    if not story.tree:
        out.print("no model calls yet")
        return
    out.print("tool-call tree")
    for it in story.tree:
        out.print(f"  iteration {it.iteration}")
        for mc in it.model_calls:
            usage = "" if mc.usage is None else f", {mc.usage.total_tokens} tokens"
            name = f"{safe(mc.provider)}/{safe(mc.model)}" if mc.model else "(no model call)"
            out.print(f"    model {name}  seq {mc.seq}, {fmt_ms(mc.duration_ms) or '-'}{usage}")
            if mc.text:
                out.print(f"      text {_short(mc.text, 90)}")
            for tc in mc.tool_calls:
                took = f" in {fmt_ms(tc.duration_ms)}" if tc.duration_ms is not None else ""
                out.print(
                    f"      tool {safe(tc.tool_name)}({safe(tc.arguments_summary)})  "
                    f"{tc.outcome}{took}  [{safe(tc.call_id)}]"
                )
                if tc.error is not None:
                    out.print(f"        error  {safe(tc.error)}")
                elif tc.output_summary is not None:
                    out.print(f"        output {safe(tc.output_summary)}")


def replay(
    run: RunArg,
    db: DbOption = DEFAULT_DB,
    to_seq: Annotated[int | None, typer.Option(min=0, help="Stop after this seq.")] = None,
    step: Annotated[bool, typer.Option("--step", help="Show the state after each event.")] = False,
    diff: Annotated[
        bool,
        typer.Option("--diff", help="For each event, the fields it changed: old -> new."),
    ] = False,
    what_if: WhatIfOption = None,
    drop: DropOption = None,
    insert_after: InsertOption = None,
    json_out: JsonFlag = False,
    nl: NlFlag = False,
) -> None:
    """Fold the run event by event (time travel: nothing is re-executed).

    The state is the stored run state plus what a debugger wants at seq N: the assistant
    text of the current model call and the pending tool calls. --diff leaves out
    event_count, last_seq and updated_at (every event changes them).

    --what-if SEQ=FILE.json, --drop SEQ and --insert-after SEQ=FILE.json fold the run as if
    its history had been different (FILE.json: an event as `eventlog event RUN SEQ --json`
    prints it, or a list of them) and show the resulting state and how it differs from the
    real one. Nothing is written.

    Example: eventlog replay 3f2a --to-seq 12 --diff

    Example: eventlog replay 3f2a --what-if 14=failed.json --drop 9
    """
    from eventlog.model.debug_state import DebugState
    from eventlog.model.debug_state import replay as replay_steps

    if what_if or drop or insert_after:
        if step or diff or nl:
            die("--what-if, --drop and --insert-after go without --step, --diff and --nl", 2)
        show_what_if(db, run, to_seq, what_if or [], drop or [], insert_after or [], json_out)
        return

    with fail_cleanly(), open_store(db) as store:
        rid = resolve_run(store, run)
        record = store.get_run(rid)
        records = store.list_events(rid, to_seq=to_seq)
    if record is None:
        die(f"run {run} not found")
    if json_out and nl:
        die("choose one of --json and --nl", 2)
    out = table_console()
    if diff:
        items = [to_builtins(s) for s in replay_steps(record, records)]
        if json_out or nl:
            _dump(items, nl)
            return
        for s in items:
            changes = s["changes"]
            head = f"seq {s['seq']} {safe(s['type'])}"
            if not changes:
                out.print(f"{head}  (no other field changed)")
                continue
            out.print(head)
            for c in changes:
                out.print(
                    f"  {safe(c['field']):<26} {_val(c['field'], c['old'], 50)} -> "
                    f"{_val(c['field'], c['new'], 70)}"
                )
        return
    if step:
        state = DebugState.initial(record)
        states: list[dict[str, Any]] = []
        for ev in records:
            state = state.apply(ev)
            states.append({"seq": ev.seq, "type": ev.type, "state": state.to_builtins()})
        if json_out or nl:
            _dump(states, nl)
            return
        for s in states:
            out.print(f"seq {s['seq']} {safe(s['type'])}")
            _print_state(out, s["state"])
        return
    final = DebugState.fold(record, records)
    if json_out or nl:
        typer.echo(json.dumps(final.to_builtins(), indent=None if nl else 2))
        return
    out.print(f"state of run {rid} after seq {final.run.last_seq}")
    _print_state(out, final.to_builtins())


def _val(field: str, value: Any, width: int) -> str:
    """A value in a diff line; a pending tool call as ``tool phase arguments`` (``-``: none)."""
    if not field.startswith("pending_tool_calls."):
        return _short(value, width)
    if not isinstance(value, dict):
        return "-"
    args = json.dumps(value.get("arguments"), ensure_ascii=False, default=str)
    text = safe(f"{value.get('tool_name')} {value.get('phase')} {args}")
    return text if len(text) <= width else text[: width - 1] + "…"


def _dump(items: list[Any], nl: bool) -> None:
    if nl:
        for item in items:
            typer.echo(json.dumps(item))
    else:
        typer.echo(json.dumps(items, indent=2))


def _print_state(out: Console, state: dict[str, Any]) -> None:
    for name, value in state.items():
        if name == "pending_tool_calls":
            out.print(f"  {name:<18} {len(value)}")
            for p in value:
                out.print(
                    f"    {safe(p['tool_name'])} [{safe(p['call_id'])}] {p['phase']}: "
                    f"{_short(p['arguments'], 70)}"
                )
        elif isinstance(value, str):
            text = safe(value)
            out.print(f"  {name:<18} {text if len(text) <= 100 else text[:99] + '…'}")
        else:
            out.print(f"  {name:<18} {_short(value, 100)}")


def diff(
    run_a: Annotated[str, typer.Argument(help="The first run (id or prefix).")],
    run_b: Annotated[str, typer.Argument(help="The second run (id or prefix).")],
    db: DbOption = DEFAULT_DB,
    context: Annotated[
        int, typer.Option(min=0, help="Alike steps shown around each difference.")
    ] = 2,
    json_out: JsonFlag = False,
) -> None:
    """Align two runs' events step by step and show where they diverge.

    Steps are event types with their key fields (tool name and outcome, model, finish
    reason, status); consecutive deltas count as one step. Lines: '  ' alike, '- ' only in
    A, '+ ' only in B, with each side's seqs.

    Example: eventlog diff 3f2a 9bc1
    """
    from eventlog.tools.run_diff import diff_runs

    with fail_cleanly(), open_store(db) as store:
        a, b = resolve_run(store, run_a), resolve_run(store, run_b)
        result = diff_runs(store, a, b)
    if json_out:
        typer.echo(json.dumps(to_builtins(result), indent=2))
        return
    out = table_console()
    sa, sb = result.summary_a, result.summary_b
    out.print(f"A {sa.run_id}  {sa.status}, {sa.events} events, {fmt_ms(sa.duration_ms)}")
    out.print(f"B {sb.run_id}  {sb.status}, {sb.events} events, {fmt_ms(sb.duration_ms)}")
    if result.diverges_at is None:
        out.print("the runs took the same steps")
        return
    first = result.hunks[result.diverges_at]
    at_a = first.a[0].first_seq if first.a else "-"
    at_b = first.b[0].first_seq if first.b else "-"
    out.print(f"diverge at A seq {at_a} / B seq {at_b}")

    def seqs(st: Any) -> str:
        return str(st.first_seq) if st.count == 1 else f"{st.first_seq}-{st.last_seq}"

    for n, hunk in enumerate(result.hunks):
        if hunk.op == "equal":
            pairs = list(zip(hunk.a, hunk.b, strict=True))
            head = pairs[:context] if n > 0 else []
            tail = pairs[-context:] if n < len(result.hunks) - 1 and context else []
            if len(head) + len(tail) >= len(pairs):
                shown, hidden = pairs, 0
            else:
                shown, hidden = head, len(pairs) - len(head) - len(tail)
            for x, y in shown:
                out.print(f"  {safe(x.label):<44} A {seqs(x):<7} B {seqs(y)}")
            if hidden:
                out.print(f"  … {hidden} alike step(s)")
                for x, y in tail:
                    out.print(f"  {safe(x.label):<44} A {seqs(x):<7} B {seqs(y)}")
            continue
        for x in hunk.a:
            out.print(f"- {safe(x.label):<44} A {seqs(x)}")
        for y in hunk.b:
            out.print(f"+ {safe(y.label):<44} {'':<9} B {seqs(y)}")
    if sa.error != sb.error:
        out.print(f"error A: {safe(sa.error or '-')}")
        out.print(f"error B: {safe(sb.error or '-')}")


def register(app: typer.Typer) -> None:
    """Add the story commands to ``app``."""
    for fn in (show, replay, diff):
        app.command()(fn)
