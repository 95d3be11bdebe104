"""What the gap is made of: a profile of the store's side of every missed target.

``python -m benchmarks.gap KEY`` profiles one operation of the store (``append_durable``,
``append_fast``, ``append_batch``, ``replay``, ``get_run_state``, ``listing``) with py-spy
(sampling, ``--nonblocking``: the process is never paused, so the figures are not inflated)
and prints where the time of one call goes: a call tree with µs per call, then the source
lines that spend the most time themselves (a C call such as ``txn.commit()`` shows up as the
line that makes it). Without py-spy (or where the system forbids it) it falls back to
pyinstrument, which slows Python calls and so overstates the Python share.

``make bench`` runs it for each missed target and puts the result in the report, beside the
figures that set the gap: ours, raw LMDB doing the store's operations, and the limit.
"""

from __future__ import annotations

import argparse
import json
import linecache
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.core import Row

__all__ = ["profile_missed"]

#: gap key -> (what is timed, calls per loop)
OPS = {
    "append_durable": "append_event, durability='durable'",
    "append_fast": "append_event, durability='fast'",
    "append_batch": "append_events(100 events of one run), durability='durable'",
    "append_batch_spread": "append_many(100 runs x 1 event), durability='durable'",
    "replay": "RunState.fold(get_run(id), list_events(id)), a run of 10,000 events",
    "get_run_state": "get_run_state(random run of 10,000)",
    "listing": "list_runs_filtered(status='failed', limit=100) on 100,000 runs",
    "rebuild": "rebuild_projections() over 100 runs x 1,000 events",
}
_ENTRY = "_profiled_loop"


def _setup(key: str, workdir: str) -> tuple[Callable[[], None], int]:
    """The operation to profile: (loop body, number of calls it makes)."""
    import random

    from benchmarks.data import MODEL, PROVIDER, run_events, uuids
    from benchmarks.stores import create_runs, fill_runs
    from eventlog import AppendRequest, RunState, RunStore
    from eventlog.events import RunFailed

    if key == "append_batch_spread":
        store = RunStore.open(workdir, durability="durable")
        sid = store.create_session().id
        events = run_events(12, 100)
        rids = [store.create_run(sid, provider=PROVIDER, model=MODEL).id for _ in range(100)]
        calls = 100

        def spread_loop() -> None:
            for _ in range(calls):
                store.append_many(
                    [AppendRequest(r, [e]) for r, e in zip(rids, events, strict=True)]
                )

        return spread_loop, calls
    if key in ("append_durable", "append_fast", "append_batch"):
        store = RunStore.open(workdir, durability="fast" if key == "append_fast" else "durable")
        sid = store.create_session().id
        n = {"append_durable": 2_000, "append_fast": 20_000, "append_batch": 30_000}[key]
        events = run_events(11, n)
        rid = store.create_run(sid, provider=PROVIDER, model=MODEL).id
        for ev in events[:50]:  # warm-up
            store.append_event(rid, ev)
        rid = store.create_run(sid, provider=PROVIDER, model=MODEL).id
        if key == "append_batch":
            batches = [events[k : k + 100] for k in range(0, n, 100)]

            def batch_loop() -> None:
                for batch in batches:
                    store.append_events(rid, batch)

            return batch_loop, len(batches)

        def single_loop() -> None:
            for ev in events:
                store.append_event(rid, ev)

        return single_loop, n
    if key == "replay":
        store = RunStore.open(workdir, durability="fast")
        sid = store.create_session().id
        rid = store.create_run(sid, provider=PROVIDER, model=MODEL).id
        events = run_events(12, 10_000)
        for k in range(0, len(events), 1000):
            store.append_events(rid, events[k : k + 1000])

        def replay_loop() -> None:
            for _ in range(30):
                record = store.get_run(rid)
                assert record is not None
                RunState.fold(record, store.list_events(rid))

        return replay_loop, 30
    if key == "get_run_state":
        store = RunStore.open(workdir, durability="fast")
        ids = uuids(13, 11_001)
        create_runs(store, ids[:10_000], ids[10_000:], 10)
        fill_runs(store, ids[:10_000], run_events(13, 10))
        rng = random.Random(14)
        picks = [ids[rng.randrange(10_000)] for _ in range(200_000)]
        get = store.get_run_state

        def get_loop() -> None:
            for rid in picks:
                get(rid)

        return get_loop, len(picks)
    if key == "listing":
        store = RunStore.open(workdir, durability="fast")
        ids = uuids(15, 110_001)
        create_runs(store, ids[:100_000], ids[100_000:], 10)
        failed = ids[9:100_000:10]
        event = RunFailed("rate limited")
        for k in range(0, len(failed), 1000):
            store.append_many([AppendRequest(r, [event]) for r in failed[k : k + 1000]])

        def list_loop() -> None:
            for _ in range(3000):
                store.list_runs_filtered(status="failed", limit=100)

        return list_loop, 3000
    if key == "rebuild":
        store = RunStore.open(workdir, durability="fast")
        ids = uuids(16, 111)
        create_runs(store, ids[:100], ids[100:], 10)
        templates = [run_events(16 + i, 1000) for i in range(4)]
        for k in range(0, 1000, 50):
            store.append_many(
                [AppendRequest(r, templates[i % 4][k : k + 50]) for i, r in enumerate(ids[:100])]
            )

        def rebuild_loop() -> None:
            for _ in range(3):
                store.rebuild_projections()

        return rebuild_loop, 3
    raise ValueError(f"no profile for {key!r}; choose from {', '.join(OPS)}")


def _profiled_loop(body: Callable[[], None]) -> float:
    start = time.perf_counter()
    body()
    return time.perf_counter() - start


def _run_op(key: str, out: str) -> None:
    """The profiled process: set up, time the loop once unprofiled-equivalent, write timings."""
    workdir = tempfile.mkdtemp(prefix=f"gap-{key}-", dir=os.path.dirname(out))
    try:
        body, calls = _setup(key, workdir)
        body()  # warm-up (the sampler samples it too, but outside _profiled_loop)
        seconds = _profiled_loop(body)
        with open(out, "w") as f:
            json.dump({"seconds": seconds, "calls": calls}, f)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# -- reading py-spy's collapsed stacks -----------------------------------------------------
def _frames(stack: str) -> list[tuple[str, str, int]]:
    out = []
    for part in stack.split(";"):
        name, _, where = part.rpartition(" (")
        path, _, line = where.rstrip(")").rpartition(":")
        out.append((name, path, int(line) if line.isdigit() else 0))
    return out


def _short_path(path: str) -> str:
    for marker in ("site-packages/", "/work/main/", os.getcwd() + "/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def _source(path: str, line: int) -> str:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    full = path if os.path.isabs(path) else os.path.join(root, path)
    return linecache.getline(full, line).strip()


def summarize(stacks: Sequence[tuple[list[tuple[str, str, int]], int]], per_call_us: float) -> str:
    """A call tree (µs per call, ≥ 2 % of the total) and the hottest lines."""
    tree: dict[tuple[str, ...], int] = {}
    lines: dict[tuple[str, str, int], int] = {}
    total = 0
    for frames, count in stacks:
        names = [f[0] for f in frames]
        if _ENTRY not in names:
            continue
        inner = frames[names.index(_ENTRY) + 2 :]  # below the loop body
        total += count
        if not inner:
            key = ("(the benchmark's own loop)",)
            tree[key] = tree.get(key, 0) + count
            continue
        path: tuple[str, ...] = ()
        for name, file, _ in inner:
            path = (*path, f"{name}  ({_short_path(file)})")
            tree[path] = tree.get(path, 0) + count
        leaf = inner[-1]
        lines[leaf] = lines.get(leaf, 0) + count
    if not total:
        return "no samples under the profiled loop"
    scale = per_call_us / total
    out = [f"{'µs/call':>9}  {'share':>6}  call tree (py-spy, {total} samples)"]
    for path in sorted(tree):
        n = tree[path]
        if n / total < 0.02 or len(path) > 12:
            continue
        out.append(f"{n * scale:9.2f}  {n / total:6.1%}  {'  ' * (len(path) - 1)}{path[-1]}")
    out.append("")
    out.append(
        f"{'µs/call':>9}  {'share':>6}  hottest lines (self time: the line and the C it calls)"
    )
    for (name, file, line), n in sorted(lines.items(), key=lambda kv: -kv[1])[:14]:
        src = _source(file, line)
        out.append(
            f"{n * scale:9.2f}  {n / total:6.1%}  {name} {_short_path(file)}:{line}  `{src[:70]}`"
        )
    return "\n".join(out)


def profile(key: str, tmp: str) -> str:
    """Profile ``key`` in a subprocess under py-spy; the breakdown as text."""
    os.makedirs(tmp, exist_ok=True)
    timing = os.path.join(tmp, f"gap-{key}.json")
    raw = os.path.join(tmp, f"gap-{key}.txt")
    cmd = [sys.executable, "-m", "benchmarks.gap", "--run", key, "--timing", timing]
    spy = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    header = f"profile of {OPS[key]}"
    try:
        proc = subprocess.run(
            [spy, "record", "--nonblocking", "-r", "1000", "-f", "raw", "-o", raw, "--", *cmd],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if proc.returncode != 0 or not os.path.exists(raw):
            raise RuntimeError(proc.stderr[-500:])
        with open(timing) as f:
            t = json.load(f)
        stacks = []
        with open(raw) as f:
            for line in f:
                stack, _, count = line.rstrip("\n").rpartition(" ")
                if stack and count.isdigit():
                    stacks.append((_frames(stack), int(count)))
        per_call = t["seconds"] / t["calls"] * 1e6
        body = summarize(stacks, per_call)
        return f"{header}: {per_call:.1f} µs per call while sampled\n{body}"
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
        return f"{header}: py-spy failed ({exc}); falling back to pyinstrument\n" + _pyinstrument(
            key, tmp
        )


def _pyinstrument(key: str, tmp: str) -> str:
    from pyinstrument import Profiler

    workdir = tempfile.mkdtemp(prefix=f"gap-{key}-", dir=tmp)
    body, calls = _setup(key, workdir)
    profiler = Profiler(interval=0.0002)
    profiler.start()
    _profiled_loop(body)
    profiler.stop()
    shutil.rmtree(workdir, ignore_errors=True)
    text: str = profiler.output_text(unicode=True, color=False)
    return f"(pyinstrument over {calls} calls; Python calls are slowed by the profiler)\n{text}"


def _decompose(row: Row, outcomes: Sequence[Any]) -> str:
    """The gap in µs per event from the run's own figures: LMDB's share and ours."""
    import statistics

    keys = {
        "append_durable": ("append_durable", "single"),
        "append_fast": ("append_fast", "single"),
        "append_batch": ("append_batch", "one_run"),
        "append_batch_spread": ("append_batch", "spread"),
    }
    if row.number in (4, 5):
        return _per_call_gap(row.number, outcomes)
    if row.gap not in keys:
        return ""
    wkey, variant = keys[row.gap]
    for o in outcomes:
        if o.key != wkey:
            continue
        med = {}
        wrote = {}
        for peer in ("eventlog", "lmdb", "lmdb-ops", "sqlite", "sqlite-off"):
            out = o.peers.get(peer)
            if out is not None and variant in out.variants:
                med[peer] = statistics.median(out.variants[variant].reps)
                wrote[peer] = float(out.variants[variant].extra.get("written_per_event", 0.0))
        if not {"eventlog", "lmdb", "lmdb-ops"} <= med.keys():
            return ""
        us = {p: 1e6 / v for p, v in med.items()}
        sqlite = "".join(
            f"; {label} {us[p]:.1f} µs"
            for p, label in (("sqlite", "the sqlite3 store"), ("sqlite-off", "sqlite3, sync=OFF"))
            if p in us
        )
        return (
            f"per event: ours {us['eventlog']:.1f} µs, raw LMDB doing the store's operations "
            f"{us['lmdb-ops']:.1f} µs, the limit {us['lmdb']:.1f} µs -> gap "
            f"{us['eventlog'] - us['lmdb']:.1f} µs = {us['lmdb-ops'] - us['lmdb']:.1f} µs in "
            f"LMDB (the store's extra gets/puts/pages) + {us['eventlog'] - us['lmdb-ops']:.1f} µs "
            f"in Python (facade, engine, codec, projectors, py-lmdb calls){sqlite}.\n"
            f"bytes handed to write() per event: ours {wrote.get('eventlog', 0):,.0f}, "
            f"the store's operations replayed {wrote.get('lmdb-ops', 0):,.0f}, the limit "
            f"{wrote.get('lmdb', 0):,.0f} (4 KiB pages: each commit writes the pages it dirtied "
            "and a meta page)"
        )
    return ""


def _per_call_gap(number: int, outcomes: Sequence[Any]) -> str:
    """Replay (µs per event) or get_run_state (µs per call, p50): ours, the limit, the gap."""
    import statistics

    wkey, variant = {4: ("replay", "replay"), 5: ("run_state", "get")}[number]
    for o in outcomes:
        if o.key != wkey:
            continue
        us: dict[str, float] = {}
        for peer, out in o.peers.items():
            sample = out.variants.get(variant)
            if sample is None:
                continue
            if number == 5:
                us[peer] = sample.pct["p50"]
            else:
                us[peer] = 1e6 / statistics.median(sample.reps)
        if "eventlog" not in us or "lmdb" not in us:
            return ""
        unit = "µs per call (p50)" if number == 5 else "µs per event"
        others = ", ".join(f"{p} {v:.2f}" for p, v in us.items() if p not in ("eventlog", "lmdb"))
        return (
            f"{unit}: ours {us['eventlog']:.2f}, the limit {us['lmdb']:.2f} -> gap "
            f"{us['eventlog'] - us['lmdb']:.2f}; the peers: {others}"
        )
    return ""


def profile_missed(
    rows: Sequence[Row], outcomes: Sequence[Any], tmp: str, log: Callable[[str], None]
) -> dict[str, str]:
    """Profile each gap key of a missed target once; key -> text for the report."""
    out: dict[str, str] = {}
    for row in rows:
        if row.check is None or row.check.met or not row.gap or row.gap in out:
            continue
        parts = []
        decomposition = _decompose(row, outcomes)
        if decomposition:
            parts.append(decomposition)
        if row.gap in OPS:
            log(f"profiling the gap: {row.gap}")
            parts.append(profile(row.gap, tmp))
        elif row.gap == "growth_bytes":
            parts.append(_growth_breakdown(outcomes))
        elif row.gap == "growth_rate":
            parts.append(_growth_curve(outcomes))
        elif row.gap == "startup":
            from benchmarks.startup import gap_text

            parts.append(gap_text(outcomes))
        out[row.gap] = "\n".join(parts)
    return out


def _growth_extra(outcomes: Sequence[Any]) -> dict[str, Any]:
    for o in outcomes:
        if o.key == "growth" and "eventlog" in o.peers:
            curve = o.peers["eventlog"].variants.get("curve")
            if curve is not None:
                extra: dict[str, Any] = curve.extra
                return extra
    return {}


def _growth_breakdown(outcomes: Sequence[Any]) -> str:
    extra = _growth_extra(outcomes)
    return str(extra.get("breakdown", "no page statistics"))


def _growth_curve(outcomes: Sequence[Any]) -> str:
    extra = _growth_extra(outcomes)
    if not extra:
        return ""
    lines = [
        f"{'events':>12} {'append_event/s':>15} {'÷ reference':>12} {'written/append':>15} "
        f"{'ref. written':>13} {'fill/s':>9} {'÷ reference':>12} {'B/event':>8}"
    ]
    for i, e in enumerate(extra["events"]):
        ref_fill = extra["fill_reference_rate"][i]
        fill = extra["fill_rate"][i]
        wrote, ref_wrote = extra["written_per_append"][i], extra["reference_written_per_append"][i]
        lines.append(
            f"{e:>12,.0f} {extra['single_rate'][i]:>15,.0f} {extra['relative_rate'][i]:>12.2f} "
            f"{wrote:>13,.0f} B {ref_wrote:>11,.0f} B "
            f"{fill:>9,.0f} {fill / ref_fill if ref_fill else 0:>12.2f} "
            f"{extra['bytes_per_event'][i]:>8.0f}"
        )
    lines.append(
        f"the deepest B-tree an append writes is {extra['log_depth']:.0f} pages deep at the end "
        f"(the reference store's: {extra['reference_log_depth']:.0f}); an append's commit "
        "copies and writes every page on the paths to the keys it changes"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m benchmarks.gap KEY``: print the breakdown of one operation."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gap", description=__doc__)
    parser.add_argument("key", nargs="?", choices=sorted(OPS))
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--timing", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run:
        _run_op(args.run, args.timing)
        return
    if not args.key:
        parser.error("name the operation to profile")
    tmp = tempfile.mkdtemp(prefix="gap-", dir=os.path.join(os.path.dirname(__file__), "results"))
    try:
        print(profile(args.key, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
