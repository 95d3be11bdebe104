"""The subscription benchmark still runs (tiny sizes, no timing assertion)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_subscribe_latency_runs() -> None:
    args = ["--quick", "--events", "20", "--interval", "0.001", "--idle", "0.1", "--json"]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.subscribe_latency", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["events"] == 20
    assert set(figures["latency_ms"]) == {"p50", "p90", "p99", "max"}
