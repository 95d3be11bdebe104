"""One peer of one workload, in its own process (so its memory figure is its own).

The runner forks a worker per peer (after importing the libraries once, so a worker starts in
milliseconds); the worker runs the peer and writes a :class:`~benchmarks.core.PeerOutput` as
JSON to the job's ``result`` path - never to stdout, which the peer's libraries may print to.
Its memory figure is how much its resident set grew while the peer ran (peak minus start).
"""

from __future__ import annotations

import importlib
import time
import traceback

import msgspec

from benchmarks.core import Params, PeerOutput, Workload

__all__ = ["Job", "load", "run_job"]


class Job(msgspec.Struct):
    """What the runner asks one worker to do."""

    workload: str
    peer: str
    params: Params
    workdir: str
    result: str


def load(key: str) -> Workload:
    """The :class:`Workload` of module ``benchmarks.<key>``."""
    module = importlib.import_module(f"benchmarks.{key}")
    workload = module.WORKLOAD
    assert isinstance(workload, Workload)
    return workload


def _memory_mib() -> tuple[float, float]:
    """(current, peak) resident set size of this process, from ``/proc/self/status``."""
    now = peak = 0.0
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    now = int(line.split()[1]) / 1024
                elif line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) / 1024
    except OSError:
        pass
    return now, peak


def run_job(job: Job) -> None:
    """Run the job's peer and write its output (an exception is reported, not raised)."""
    start_rss, _ = _memory_mib()
    start = time.perf_counter()
    out = PeerOutput(job.workload, job.peer, rss_start_mib=start_rss)
    try:
        out.variants = load(job.workload).run(job.peer, job.params, job.workdir)
    except Exception:
        out.error = traceback.format_exc(limit=8)
    out.seconds = time.perf_counter() - start
    _, peak = _memory_mib()
    out.rss_mib = max(0.0, peak - start_rss)
    with open(job.result, "wb") as f:
        f.write(msgspec.json.encode(out))
