"""Workload 24: the web viewer's server time (``eventlog ui``), against the library it calls.

``python -m benchmarks.viewer [--quick] [--json]``

- **Run page**: ``GET /runs/<id>`` of a run of 10k events (a model call, text deltas, tool
  calls), served in-process through Starlette's TestClient (ASGI, no network), vs. the library
  calls the page makes alone: ``load_run`` (the record and every event), ``summarize``,
  ``build_tree``. Target: the page ≤ 3x the library calls (p50).
- **Runs page**: ``GET /`` (counts per status, the first page of 50 runs from the status
  index) of a store of 10k runs vs. one of 1M runs, filled through ``import_jsonl`` chunks
  (as workload 6) and queried call by call in alternation (drift hits both alike). Target:
  1M ≤ 1.5x 10k (p50).

Quick: a 1k-event run, 1k and 3k runs.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING
from uuid import uuid4

from benchmarks.core import (
    Check,
    Params,
    PeerOutput,
    Row,
    Sample,
    Workload,
    fmt_num,
    int_param,
    latency_sample,
    percentiles,
)
from benchmarks.data import uuids
from benchmarks.listing import _EventlogGrower

if TYPE_CHECKING:
    from starlette.testclient import TestClient


def _params(quick: bool) -> Params:
    return {
        "seed": 2020,
        "events": 1_000 if quick else 10_000,
        "sizes": [1_000, 3_000] if quick else [10_000, 1_000_000],
        "per_session": 10,
        "failed_every": 10,
        "calls": 10 if quick else 40,
        "warmup_calls": 2 if quick else 5,
    }


def _skip() -> str | None:
    missing = [m for m in ("starlette", "jinja2", "httpx") if importlib.util.find_spec(m) is None]
    return f"the ui extra is not installed ({', '.join(missing)})" if missing else None


def _events(n: int) -> list[object]:
    from eventlog.events import (
        ModelStarted,
        RunStarted,
        Success,
        TextDelta,
        ToolCall,
        ToolCallCompleted,
        ToolExecutionFinished,
        ToolExecutionStarted,
    )

    out: list[object] = [RunStarted(uuid4(), "openai", "gpt-4o")]
    it = 0
    while len(out) < n:
        it += 1
        out.append(ModelStarted("openai", "gpt-4o", it))
        out.extend(TextDelta(f"token {k} ") for k in range(20))
        cid = f"c{it}"
        out.append(ToolCallCompleted(ToolCall(cid, "search", {"q": f"query {it}"})))
        out.append(ToolExecutionStarted(cid, "search"))
        out.append(ToolExecutionFinished(cid, "search", Success(f"{it} hits"), 12))
    return out[:n]


def _alternate(
    a: Callable[[], object], b: Callable[[], object], calls: int, warm: int
) -> tuple[Sample, Sample]:
    """Time ``a`` and ``b`` call by call in alternation: the machine's drift hits both alike."""
    for _ in range(warm):
        a()
        b()
    times: tuple[list[float], list[float]] = ([], [])
    clock = time.perf_counter_ns
    for _ in range(calls):
        for fn, into in ((a, times[0]), (b, times[1])):
            t0 = clock()
            fn()
            into.append((clock() - t0) / 1000.0)
    return (
        latency_sample([percentiles(times[0])["p50"]], times[0]),
        latency_sample([percentiles(times[1])["p50"]], times[1]),
    )


def _grow(grower: _EventlogGrower, params: Params, size: int) -> float:
    """Fill ``grower``'s store with ``size`` runs (every tenth failed); the seconds it took."""
    per, every = int_param(params, "per_session"), int_param(params, "failed_every")
    run_ids = uuids(int_param(params, "seed"), size)
    session_ids = uuids(int_param(params, "seed") + 1, (size + per - 1) // per)
    failed = [rid for k, rid in enumerate(run_ids) if k % every == every - 1]
    start = time.perf_counter()
    grower.grow(run_ids, session_ids, failed)  # import_jsonl in chunks of 50k runs
    return time.perf_counter() - start


def _run(peer: str, params: Params, workdir: str) -> dict[str, Sample]:
    import os

    from starlette.testclient import TestClient

    from eventlog.tools.story import build_tree, load_run, summarize
    from eventlog.ui.app import create_app

    calls, warm = int_param(params, "calls"), int_param(params, "warmup_calls")
    per = int_param(params, "per_session")
    sizes = params["sizes"]
    assert isinstance(sizes, list)
    out: dict[str, Sample] = {}
    small = _EventlogGrower("eventlog", os.path.join(workdir, "small"), per)
    big = _EventlogGrower("eventlog", os.path.join(workdir, "big"), per)
    fill_small = _grow(small, params, sizes[0])
    fill_big = _grow(big, params, sizes[-1])
    # the run page of a long run and the library calls it makes alone
    store = small.store
    run = store.create_run(store.ensure_session(), provider="openai", model="gpt-4o")
    events = _events(int_param(params, "events"))
    for k in range(0, len(events), 1000):
        store.append_events(run.id, events[k : k + 1000])  # type: ignore[arg-type]
    base = "http://127.0.0.1:8765"
    with (
        TestClient(create_app(store), base_url=base) as near,
        TestClient(create_app(big.store), base_url=base) as far,
    ):

        def library() -> object:
            record, evs = load_run(store, run.id)
            return summarize(record, evs), build_tree(evs)

        def page() -> object:
            r = near.get(f"/runs/{run.id}")
            assert r.status_code == 200
            return r

        out["library"], out["run_page"] = _alternate(library, page, calls, warm)

        def runs(client: TestClient) -> Callable[[], object]:
            def call() -> object:
                r = client.get("/")
                assert r.status_code == 200
                return r

            return call

        lo, hi = _alternate(runs(near), runs(far), calls, warm)
    lo.extra["fill_seconds"] = round(fill_small, 1)
    hi.extra["fill_seconds"] = round(fill_big, 1)
    out[f"runs_{sizes[0]}"], out[f"runs_{sizes[-1]}"] = lo, hi
    small.store.close()
    big.store.close()
    return out


def _rows(outputs: Mapping[str, PeerOutput], params: Params) -> list[Row]:
    ours = outputs.get("eventlog")
    if ours is None:
        return []
    rows: list[Row] = []
    v = ours.variants
    n = int_param(params, "events")
    if "run_page" in v and "library" in v:
        page, lib = v["run_page"].pct["p50"], v["library"].pct["p50"]
        rows.append(
            Row(
                24,
                f"viewer: run page of a {n:,}-event run vs. its library calls",
                "eventlog (ours, LMDB)",
                f"page p50 {fmt_num(page)} µs, load_run + summarize + build_tree "
                f"p50 {fmt_num(lib)} µs",
                check=Check("page ≤ 3x the library calls", page / lib, "<=", 3.0),
            )
        )
    sizes = params["sizes"]
    assert isinstance(sizes, list)
    lo, hi = v.get(f"runs_{sizes[0]}"), v.get(f"runs_{sizes[-1]}")
    if lo is not None and hi is not None:
        a, b = lo.pct["p50"], hi.pct["p50"]
        rows.append(
            Row(
                24,
                f"viewer: runs page at {sizes[-1]:,} runs vs. {sizes[0]:,} runs",
                "eventlog (ours, LMDB)",
                f"p50 {fmt_num(b)} µs at {sizes[-1]:,}, {fmt_num(a)} µs at {sizes[0]:,} "
                f"(fill {hi.extra.get('fill_seconds')} s)",
                check=Check(f"time at {sizes[-1]:,} ≤ 1.5x at {sizes[0]:,}", b / a, "<=", 1.5),
            )
        )
    return rows


WORKLOAD = Workload(
    number=24,
    key="viewer",
    title="the web viewer: run page vs. its library calls; runs page at 1M vs. 10k runs",
    peers=("eventlog",),
    params=_params,
    run=_run,
    rows=_rows,
    lockstep=False,
    timeout=1200.0,
    skip=_skip,
)

if __name__ == "__main__":
    from benchmarks.runner import main

    main([WORKLOAD.key])
