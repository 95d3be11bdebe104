"""Workload 17: startup, whole processes: ``eventlog --help`` and ``eventlog runs``.

``python -m benchmarks.startup [--quick] [--json]``

Each call starts a new process and waits for it to exit (wall time, ms): ``eventlog --help``,
``eventlog runs --db DEMO`` on a demo store (what ``make demo`` writes: 6 runs) and, for the
record, ``python -c "import eventlog"``. The peer is ``python -c "import typer"``: the library
the CLI is built on, imported and nothing else; ``python -c pass`` is the interpreter's floor,
and a two-command typer app running one command with one option (``TYPER_APP``) is what typer
itself costs to run a command: typer (0.29 here) coerces option values with pydantic
TypeAdapters, so running any command imports pydantic, which ``import typer`` does not.
Target: ``eventlog --help`` and ``eventlog runs`` each take ≤ 2x the peer's time.

The processes run as after an install: bytecode is cached (``PYTHONPYCACHEPREFIX`` in the
worker's directory, filled by the warm-up calls, so the source tree is not written to), and
``PYTHONDONTWRITEBYTECODE`` is dropped from their environment. Every repetition runs each
command ``calls`` times; the peers' repetitions are interleaved (lockstep).

What the time is made of: after timing, each command runs again under ``python -X importtime``
(``reps`` times, the least self time of each module kept) and the modules' import time is
summed per top-level package; the report shows it for a missed target.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import msgspec

from benchmarks.core import (
    Params,
    PeerOutput,
    Row,
    Sample,
    Workload,
    barrier,
    compare_rows,
    int_param,
    percentiles,
)

PEERS = ("eventlog", "typer", "typer-app", "python")
LABELS = {
    "eventlog": "eventlog (ours)",
    "typer": "python -c 'import typer'",
    "typer-app": "a typer app running 1 command",
    "python": "python -c pass (the floor)",
}
#: the smallest typer CLI that runs a command with an option (``run --limit 5``)
TYPER_APP = """
import typer
app = typer.Typer()
@app.command()
def run(limit: int = 20) -> None:
    print(limit)
@app.command()
def other() -> None:
    pass
app()
"""
#: ours' variants: what the row is called
VARIANTS = {
    "help": "startup: eventlog --help (whole process)",
    "runs": "startup: eventlog runs, demo store (whole process)",
    "import": "startup: python -c 'import eventlog'",
}
TARGETED = ("help", "runs")
#: the peers' one variant
PROCESS = "process"


def _params(quick: bool) -> Params:
    return {
        "seed": 1717,
        "demo_runs": 6,
        "calls": 2 if quick else 4,
        "reps": 1 if quick else 8,
        "warmup": 1 if quick else 3,
        "importtime_reps": 1 if quick else 3,
    }


def _script() -> str:
    return str(Path(sys.executable).parent / "eventlog")


def _commands(peer: str, workdir: str, params: Params) -> dict[str, list[str]]:
    """The command of each variant of ``peer`` (ours: after writing the demo store)."""
    python = sys.executable
    if peer == "typer":
        return {PROCESS: [python, "-c", "import typer"]}
    if peer == "typer-app":
        return {PROCESS: [python, "-c", TYPER_APP, "run", "--limit", "5"]}
    if peer == "python":
        return {PROCESS: [python, "-c", "pass"]}
    from eventlog import RunStore
    from eventlog.cli.demo_data import write_demo_runs

    demo = os.path.join(workdir, "demo")
    with RunStore.open(demo) as store:
        write_demo_runs(store, runs=int_param(params, "demo_runs"), seed=int_param(params, "seed"))
    return {
        "help": [_script(), "--help"],
        "runs": [_script(), "runs", "--db", demo],
        "import": [python, "-c", "import eventlog"],
    }


def _environment(workdir: str) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("PYTHONDONTWRITEBYTECODE", "EVENTLOG_DB", "PYTHONPROFILEIMPORTTIME"):
        env.pop(name, None)
    env["PYTHONPYCACHEPREFIX"] = os.path.join(workdir, "pycache")
    return env


def _once(command: Sequence[str], env: Mapping[str, str]) -> float:
    """Run ``command`` to its end; its wall time in ms (it must exit 0)."""
    start = time.perf_counter()
    done = subprocess.run(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
    )
    elapsed = (time.perf_counter() - start) * 1e3
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: {done.stderr!r}")
    return elapsed


def import_breakdown(
    command: Sequence[str], env: Mapping[str, str], reps: int
) -> tuple[int, list[tuple[str, float]]]:
    """(modules imported, [(top-level package, ms)] by descending time) of one process.

    ``python -X importtime``: each module's least self time over ``reps`` runs, summed per
    top-level package.
    """
    best: dict[str, int] = {}
    # a console script (not the interpreter itself): its file run by the interpreter
    args = command[1:] if command[0] == sys.executable else command
    argv = [sys.executable, "-X", "importtime", *args]
    for _ in range(reps):
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
        for line in done.stderr.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            own, _, name = line[len("import time:") :].split("|")
            module = name.strip()
            best[module] = min(best.get(module, sys.maxsize), int(own))
    groups: Counter[str] = Counter()
    for module, us in best.items():
        groups[module.split(".")[0]] += us
    return len(best), [(k, v / 1e3) for k, v in groups.most_common()]


def _run(peer: str, params: Params, workdir: str) -> dict[str, Sample]:
    commands = _commands(peer, workdir, params)
    env = _environment(workdir)
    calls, reps = int_param(params, "calls"), int_param(params, "reps")
    for command in commands.values():  # fills the bytecode cache
        for _ in range(int_param(params, "warmup")):
            _once(command, env)
    every: dict[str, list[float]] = {v: [] for v in commands}
    rep_p50: dict[str, list[float]] = {v: [] for v in commands}
    for _ in range(reps):
        gc.collect()
        barrier()
        for variant, command in commands.items():
            times = [_once(command, env) for _ in range(calls)]
            every[variant] += times
            rep_p50[variant].append(percentiles(times)["p50"])
    out = {}
    for variant, command in commands.items():
        count, groups = import_breakdown(command, env, int_param(params, "importtime_reps"))
        imports = ", ".join(f"{name} {ms:.1f}" for name, ms in groups[:10])
        extra: dict[str, Any] = {
            "modules": count,
            "import_ms": round(sum(ms for _, ms in groups), 1),
            "imports": imports,
        }
        out[variant] = Sample("ms", rep_p50[variant], percentiles(every[variant]), extra)
    return out


def _rows(outputs: Mapping[str, PeerOutput], params: Params) -> list[Row]:
    target: dict[str, tuple[str, Literal[">=", "<="], float]] = {
        "typer": ("time ≤ 2x python -c 'import typer' (vs. ≥ 0.5x)", ">=", 0.5)
    }
    rows: list[Row] = []
    for variant, title in VARIANTS.items():
        # each peer's one process, compared with each of ours' commands
        row_outputs = {}
        for peer, out in outputs.items():
            sample = out.variants.get(variant if peer == "eventlog" else PROCESS)
            if sample is not None:
                row_outputs[peer] = msgspec.structs.replace(out, variants={variant: sample})
        rows += compare_rows(
            17,
            title,
            row_outputs,
            variant,
            targets=target if variant in TARGETED else None,
            labels=LABELS,
            gap="startup",
        )
    for row in rows:  # the worker's memory is not the measured processes'
        row.rss_mib = None
    return rows


def gap_text(outcomes: Sequence[Any]) -> str:
    """What each process's imports are made of (ms per top-level package), from the run."""
    lines = []
    for outcome in outcomes:
        if outcome.key != "startup":
            continue
        for peer, out in outcome.peers.items():
            for variant, sample in out.variants.items():
                name = VARIANTS.get(variant, LABELS.get(peer, peer))
                lines.append(
                    f"{name}: p50 {sample.pct.get('p50', 0):.0f} ms, "
                    f"{sample.extra.get('modules', 0)} modules, "
                    f"{sample.extra.get('import_ms', 0)} ms of imports (-X importtime): "
                    f"{sample.extra.get('imports', '')}"
                )
    return "\n".join(lines)


WORKLOAD = Workload(
    number=17,
    key="startup",
    title="startup: eventlog --help and eventlog runs as whole processes vs import typer",
    peers=PEERS,
    params=_params,
    run=_run,
    rows=_rows,
)

if __name__ == "__main__":
    from benchmarks.runner import main

    main([WORKLOAD.key])
