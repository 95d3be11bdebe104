"""The PNG chart: every ratio (with its target), the growth curve and the listing curve."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmarks.core import Row

__all__ = ["draw"]

_MET, _MISSED, _PLAIN = "#2a9d8f", "#e76f51", "#8d99ae"


def _short(row: Row) -> str:
    title = row.workload
    if len(title) > 44:
        title = title[:43] + "…"
    return f"{row.number}. {title}\nvs. {row.peer}"


def _ratios(ax: Any, rows: Sequence[Row]) -> None:
    shown = [r for r in rows if r.ratio is not None and r.ratio > 0]
    labels = [_short(r) for r in shown]
    values = [r.ratio or 0.0 for r in shown]
    colors = [_PLAIN if r.check is None else (_MET if r.check.met else _MISSED) for r in shown]
    y = list(range(len(shown)))[::-1]
    ax.barh(y, values, color=colors, height=0.7)
    for yi, row in zip(y, shown, strict=True):
        if row.check is not None:
            ax.plot([row.check.threshold] * 2, [yi - 0.45, yi + 0.45], color="black", lw=2)
        ax.text((row.ratio or 1.0) * 1.08, yi, f"{row.ratio:.2f}x", va="center", fontsize=6.5)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=6.5)
    ax.set_xscale("log")
    ax.axvline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("how many times faster ours is (log; black tick = target)")
    ax.set_title("eventlog vs. the limit and the peers (green: met, red: missed)", fontsize=9)


def _curve(doc: dict[str, Any]) -> dict[str, Any] | None:
    for w in doc["workloads"]:
        if w["key"] == "growth":
            peer = w["peers"].get("eventlog", {})
            extra: dict[str, Any] | None = peer.get("variants", {}).get("curve", {}).get("extra")
            return extra
    return None


def _growth_rates(ax: Any, doc: dict[str, Any]) -> None:
    curve = _curve(doc)
    if not curve:
        ax.set_axis_off()
        return
    x = [e / 1e6 for e in curve["events"]]
    rel = curve["relative_rate"]
    ax.plot(
        x, [r / rel[0] for r in rel], "o-", color="#264653", label="append_event ÷ reference store"
    )
    ax.plot(
        x,
        [s / curve["single_rate"][0] for s in curve["single_rate"]],
        ".:",
        color="#264653",
        alpha=0.5,
        label="append_event, raw",
    )
    fill = [
        f / r if r else 0.0
        for f, r in zip(curve["fill_rate"], curve["fill_reference_rate"], strict=True)
    ]
    if len(fill) > 2 and fill[1]:
        ax.plot(
            x[1:], [f / fill[1] for f in fill[1:]], "s-", color="#2a9d8f", label="fill ÷ reference"
        )
    ax.axhline(0.8, color=_MISSED, lw=0.8, ls=":", label="target 0.8")
    ax.set_ylim(0, max(1.6, ax.get_ylim()[1]))
    ax.set_xlabel("events in the log (millions)")
    ax.set_ylabel("rate relative to the start")
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title("7. growth: append rate (durability=fast)", fontsize=9)


def _growth_bytes(ax: Any, doc: dict[str, Any]) -> None:
    curve = _curve(doc)
    if not curve:
        ax.set_axis_off()
        return
    x = [e / 1e6 for e in curve["events"]][1:]
    ax.plot(x, curve["bytes_per_event"][1:], "^-", color=_MISSED, label="bytes on disk per event")
    ax.axhline(curve["encoded_bytes"], color="grey", lw=0.8, ls="--", label="encoded size")
    ax.axhline(2 * curve["encoded_bytes"], color=_MET, lw=0.8, ls=":", label="2x (target)")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("events in the log (millions)")
    ax.set_ylabel("bytes")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("7. growth: bytes on disk per event", fontsize=9)


def _listing(ax: Any, doc: dict[str, Any]) -> None:
    peers = None
    for w in doc["workloads"]:
        if w["key"] == "listing":
            peers = w["peers"]
    if not peers:
        ax.set_axis_off()
        return
    for name, out in peers.items():
        variants = out.get("variants", {})
        sizes = sorted(int(k) for k in variants)
        if not sizes:
            continue
        ax.plot(sizes, [variants[str(s)]["pct"]["p50"] for s in sizes], "o-", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("runs in the store")
    ax.set_ylabel("list_runs_filtered, p50 µs")
    ax.legend(fontsize=7)
    ax.set_title("6. listing 100 failed runs as the store grows", fontsize=9)


def draw(doc: dict[str, Any], rows: Sequence[Row], path: str) -> None:
    """Write the chart to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = sum(1 for r in rows if r.ratio is not None)
    keys = {w["key"] for w in doc["workloads"]}
    if keys & {"growth", "listing"}:
        fig = plt.figure(figsize=(15, max(8.0, 0.32 * n + 1.5)))
        grid = fig.add_gridspec(3, 2, width_ratios=[1.25, 1])
        _ratios(fig.add_subplot(grid[:, 0]), rows)
        _growth_rates(fig.add_subplot(grid[0, 1]), doc)
        _growth_bytes(fig.add_subplot(grid[1, 1]), doc)
        _listing(fig.add_subplot(grid[2, 1]), doc)
    else:  # no curves to draw (the PostgreSQL rows alone): the ratios only
        fig = plt.figure(figsize=(9, max(5.0, 0.32 * n + 1.5)))
        _ratios(fig.add_subplot(1, 1, 1), rows)
    m = doc["machine"]
    server = str(m.get("postgresql", "PostgreSQL")).split(" (")[0]
    fig.suptitle(
        f"eventlog benchmarks ({doc['mode']}, {doc['started']}) - {m['cpu']}, {m['cores']} cores, "
        f"{m['python']}, " + (m["lmdb"] if any(not k.startswith("pg_") for k in keys) else server),
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
