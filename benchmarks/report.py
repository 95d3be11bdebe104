"""The report: machine and versions, the table (terminal and Markdown), JSON, the README.

The JSON results file holds the machine, Python and library versions, every workload's
parameters, every worker's output (every repetition of every peer) and the rows.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sqlite3
import subprocess
import time
from collections.abc import Sequence
from typing import Any

import lmdb
import msgspec

import eventlog
from benchmarks.core import Row

__all__ = [
    "PG_README",
    "build",
    "markdown_table",
    "meta_line",
    "text_table",
    "update_readme",
    "write",
]

README_START = "<!-- results:start -->"
README_END = "<!-- results:end -->"
#: the PostgreSQL rows' own section (``--only pg_...`` runs refresh it without the others)
PG_README = ("<!-- pg-results:start -->", "<!-- pg-results:end -->")


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_gib() -> float:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    return int(line.split()[1]) / (1 << 20)
    except OSError:
        pass
    return 0.0


def _filesystem(path: str) -> str:
    """The mount and filesystem type holding ``path`` (where the benchmark data lives)."""
    best = ("?", "?", "?")
    real = os.path.realpath(path)
    try:
        with open("/proc/mounts") as f:
            for line in f:
                dev, mnt, fstype = line.split()[:3]
                if real.startswith(mnt) and len(mnt) >= len(best[1]):
                    best = (dev, mnt, fstype)
    except OSError:
        pass
    return f"{best[2]} on {best[0]} ({best[1]})"


def _git(root: str) -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "eventlog", "projections"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + (" (engine modified)" if dirty else "")


def machine() -> dict[str, Any]:
    """The machine, Python and library versions the figures were measured with."""
    here = os.path.dirname(os.path.abspath(__file__))
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(_mem_gib(), 1),
        "os": platform.platform(),
        "filesystem": _filesystem(os.path.join(here, "results")),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "eventlog": f"{eventlog.__version__} @ {_git(os.path.dirname(here))}",
        "lmdb": f"py-lmdb {lmdb.__version__} (LMDB {'.'.join(map(str, lmdb.version()))})",
        "msgspec": _version("msgspec"),
        "sqlite": sqlite3.sqlite_version,
        "eventsourcing": _version("eventsourcing"),
        "matplotlib": _version("matplotlib"),
        "psycopg": f"{_version('psycopg')} (pool {_version('psycopg-pool')})",
        "postgresql": _postgresql(),
    }


def _postgresql() -> str:
    """The PostgreSQL rows' server: its version and durability settings."""
    from benchmarks.pg import URL, server_version

    try:
        return f"{server_version()} at {URL}"
    except SystemExit as exc:  # EVENTLOG_REQUIRE_POSTGRES=1 and no server: the runner says so
        return str(exc)


def row_dict(row: Row) -> dict[str, Any]:
    """A row as JSON (with the target's verdict)."""
    out: dict[str, Any] = {
        "number": row.number,
        "workload": row.workload,
        "peer": row.peer,
        "figure": row.figure,
        "ratio": row.ratio,
        "rss_mib": row.rss_mib,
        "note": row.note,
    }
    if row.check is not None:
        out["target"] = {
            "text": row.check.text,
            "value": row.check.value,
            "op": row.check.op,
            "threshold": row.check.threshold,
            "met": row.check.met,
        }
    if row.extra:
        out["extra"] = row.extra
    return out


def build(
    outcomes: Sequence[Any],
    rows: Sequence[Row],
    gaps: dict[str, str],
    *,
    quick: bool,
    started: float,
    argv: Sequence[str],
) -> dict[str, Any]:
    """The whole results document."""
    return {
        "suite": "eventlog benchmarks",
        "mode": "quick" if quick else "full",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "seconds": round(time.time() - started, 1),
        "command": " ".join(argv),
        "machine": machine(),
        "workloads": [msgspec.to_builtins(o) for o in outcomes],
        "rows": [row_dict(r) for r in rows],
        "gaps": gaps,
    }


def _ratio(row: Row) -> str:
    return "" if row.ratio is None else f"{row.ratio:.2f}x"


def _target(row: Row) -> str:
    if row.check is None:
        return row.note
    if row.ratio is None:  # a row whose target is not a ratio to a peer: show the measured value
        return f"{row.check.text}: {row.check.value:.2f}x"
    return row.check.text


def _met(row: Row) -> str:
    if row.check is None:
        return ""
    return "met" if row.check.met else "MISSED"


def text_table(rows: Sequence[Row]) -> str:
    """The terminal table: one block per workload, a line per peer."""
    lines = []
    head = f"   {'peer':<30} {'figure':<44} {'vs.':>7}  {'target':<46} {'':<6} {'mem':>8}"
    last = None
    for row in rows:
        if (row.number, row.workload) != last:
            lines.append("")
            lines.append(f"{row.number}. {row.workload}")
            lines.append(head)
            last = (row.number, row.workload)
        target = _target(row)
        rss = "" if row.rss_mib is None else f"{row.rss_mib:.0f} MiB"
        lines.append(
            f"   {row.peer:<30} {row.figure:<44} {_ratio(row):>7}  {target:<46} "
            f"{_met(row):<6} {rss:>8}"
        )
    lines.append("")
    lines.append("vs. = how many times faster ours is than that peer (>= 1: ours is faster)")
    return "\n".join(lines)


def markdown_table(rows: Sequence[Row]) -> str:
    """The same table in Markdown."""
    out = [
        "| # | workload | peer | figure | vs. | target | met | memory |",
        "|---|---|---|---|--:|---|---|--:|",
    ]
    last = None
    for row in rows:
        first = (row.number, row.workload) != last
        last = (row.number, row.workload)
        target = _target(row)
        met = _met(row)
        met = f"**{met}**" if met == "MISSED" else met
        rss = "" if row.rss_mib is None else f"{row.rss_mib:.0f} MiB"
        out.append(
            f"| {row.number if first else ''} | {row.workload if first else ''} | {row.peer} "
            f"| {row.figure} | {_ratio(row)} | {target} | {met} | {rss} |"
        )
    return "\n".join(out)


def meta_line(doc: dict[str, Any]) -> str:
    """Machine and versions in one paragraph."""
    m = doc["machine"]
    return (
        f"{doc['mode']} run of {doc['started']}, {doc['seconds']:.0f} s - {m['cpu']}, "
        f"{m['cores']} cores, {m['memory_gib']} GiB, {m['filesystem']}; {m['os']}; "
        f"{m['python']}; eventlog {m['eventlog']}; {m['lmdb']}; msgspec {m['msgspec']}; "
        f"SQLite {m['sqlite']}; eventsourcing {m['eventsourcing']}; "
        f"psycopg {m.get('psycopg', '?')}; {m.get('postgresql', 'PostgreSQL not recorded')}"
    )


def _gap_section(doc: dict[str, Any], rows: Sequence[Row]) -> str:
    missed = [r for r in rows if r.check is not None and not r.check.met]
    if not missed:
        return "Every target is met."
    parts = ["### What the gap is made of (missed targets, measured in this run)", ""]
    seen: set[str] = set()
    for row in missed:
        assert row.check is not None
        if row.ratio is None:
            parts.append(f"- **{row.number}. {row.workload}**: {_target(row)}.")
        else:
            parts.append(
                f"- **{row.number}. {row.workload}** vs. {row.peer}: {_ratio(row)}, target "
                f"{row.check.text}."
            )
        key = row.gap
        if key and key not in seen and key in doc["gaps"]:
            seen.add(key)
            parts.append("")
            parts.append("```")
            parts.append(doc["gaps"][key].rstrip())
            parts.append("```")
            parts.append("")
    return "\n".join(parts)


def markdown(doc: dict[str, Any], rows: Sequence[Row], chart: str | None) -> str:
    """The report in Markdown: the table, the machine, the chart, the gaps."""
    parts = [markdown_table(rows), "", meta_line(doc), ""]
    parts.append(
        "vs. = how many times faster ours is than that peer (ours ÷ peer for events/s, "
        "peer ÷ ours for µs): ≥ 1 means ours is faster. Throughput: median (min-max) of the "
        "repetitions; latency: p50/p90/p99 of every call."
    )
    if chart:
        parts += ["", f"![ratios and growth]({chart})"]
    parts += ["", _gap_section(doc, rows)]
    return "\n".join(parts) + "\n"


def write(doc: dict[str, Any], rows: Sequence[Row], out_dir: str, *, chart: bool) -> list[str]:
    """Write ``latest.json``, ``latest.md`` and ``latest.png`` into ``out_dir``."""
    paths = []
    json_path = os.path.join(out_dir, "latest.json")
    with open(json_path, "wb") as f:
        f.write(msgspec.json.format(msgspec.json.encode(doc), indent=1))
    paths.append(json_path)
    png = None
    if chart:
        from benchmarks.chart import draw

        png_path = os.path.join(out_dir, "latest.png")
        draw(doc, rows, png_path)
        paths.append(png_path)
        png = "latest.png"
    md_path = os.path.join(out_dir, "latest.md")
    with open(md_path, "w") as f:
        f.write(f"# Benchmark results ({doc['mode']})\n\n" + markdown(doc, rows, png))
    paths.append(md_path)
    return paths


def update_readme(
    path: str,
    doc: dict[str, Any],
    rows: Sequence[Row],
    out_dir: str,
    *,
    section: tuple[str, str] = (README_START, README_END),
    chart: bool = True,
) -> None:
    """Replace a results section of ``benchmarks/README.md`` (between ``section``'s markers)."""
    start, end = section
    with open(path) as f:
        text = f.read()
    if start not in text or end not in text:
        return
    rel = os.path.relpath(os.path.join(out_dir, "latest.png"), os.path.dirname(path))
    body = markdown(doc, rows, rel if chart else None)
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    with open(path, "w") as f:
        f.write(f"{head}{start}\n{body}{end}{tail}")
