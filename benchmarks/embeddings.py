"""Workload 28: embeddings - upsert rate, search p50/p99 and recall@10 at 10k and 100k vectors.

``python -m benchmarks.embeddings [--quick] [--json]``

Seeded data: ``size`` vectors of dimension 384 around 1,000 random centres (a centre plus
Gaussian noise, as sentence embeddings cluster by topic), and 200 queries drawn the same way.
Each peer loads the vectors in batches of 1,000, then answers the queries one at a time
(top 10 by cosine similarity):

- eventlog: ``store.embeddings.upsert_many`` on an LMDB store (``durability="fast"``, one
  commit per batch), then ``store.embeddings.search`` - exact below 5k vectors, the
  approximate (usearch HNSW) index above, built by the first search (its time is reported);
- numpy: brute force over the normalized matrix (``argpartition`` of one matrix product);
- sqlite-vec: a ``vec0`` table (``float[384] distance_metric=cosine``) through apsw,
  ``WHERE embedding MATCH ? AND k = 10`` (exact).

recall@10 = the share of numpy's exact top 10 each peer returns, over the queries.
Targets at 100k: eventlog's search p50 ≥ 5x faster than numpy's, faster than sqlite-vec's,
at recall@10 ≥ 0.95.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from benchmarks.core import (
    LATENCY,
    THROUGHPUT,
    Check,
    Params,
    PeerOutput,
    Row,
    Sample,
    Workload,
    fmt_num,
    int_param,
    measure_latency,
    percentiles,
    ratio,
)

NUMBER = 28
_LABELS = {"eventlog": "eventlog (ours, LMDB)", "numpy": "numpy exact", "sqlite-vec": "sqlite-vec"}


def _params(quick: bool) -> Params:
    return {
        "sizes": [1_000, 3_000] if quick else [10_000, 100_000],
        "dim": 32 if quick else 384,
        "queries": 20 if quick else 200,
        "batch": 1_000,
        "reps": 1 if quick else 3,
    }


def _data(size: int, dim: int, queries: int) -> tuple[Any, Any]:
    """``(vectors, queries)``: seeded, clustered float32 data."""
    import numpy as np

    rng = np.random.default_rng(21)
    centres = rng.standard_normal((1_000, dim), dtype=np.float32)
    picks = rng.integers(0, len(centres), size + queries)
    points = centres[picks] + 0.6 * rng.standard_normal((size + queries, dim), dtype=np.float32)
    return points[:size], points[size:]


def _exact_top(vectors: Any, queries: Any, k: int = 10) -> list[set[int]]:
    import numpy as np

    m = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    out = []
    for q in queries:
        scores = m @ (q / np.linalg.norm(q))
        out.append({int(i) for i in np.argpartition(-scores, k)[:k]})
    return out


class _Peer:
    """One peer: ``load(vectors, start)`` adds rows ``start..``; ``search(q)`` -> row numbers."""

    def load(self, vectors: Any, start: int, batch: int) -> None:
        raise NotImplementedError

    def search(self, query: Any) -> list[int]:
        raise NotImplementedError


class _Eventlog(_Peer):
    def __init__(self, workdir: str) -> None:
        from eventlog import RunStore

        self.store = RunStore.open(workdir + "/store", durability="fast")

    def load(self, vectors: Any, start: int, batch: int) -> None:
        emb = self.store.embeddings
        for i in range(0, len(vectors), batch):
            chunk = vectors[i : i + batch]
            emb.upsert_many((str(start + i + j), v) for j, v in enumerate(chunk))

    def search(self, query: Any) -> list[int]:
        return [int(h.id) for h in self.store.embeddings.search(query, k=10)]


class _Numpy(_Peer):
    def __init__(self) -> None:
        import numpy as np

        self.np = np
        self.matrix = np.zeros((0, 0), dtype=np.float32)

    def load(self, vectors: Any, start: int, batch: int) -> None:
        np = self.np
        normed = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        self.matrix = normed if not len(self.matrix) else np.vstack([self.matrix, normed])

    def search(self, query: Any) -> list[int]:
        np = self.np
        scores = self.matrix @ (query / np.linalg.norm(query))
        top = np.argpartition(-scores, 10)[:10]
        return [int(i) for i in top[np.argsort(-scores[top])]]


class _SqliteVec(_Peer):
    def __init__(self, workdir: str, dim: int) -> None:
        import apsw
        import sqlite_vec

        self.conn = apsw.Connection(workdir + "/vec.db")
        self.conn.enable_load_extension(True)
        self.conn.load_extension(sqlite_vec.loadable_path())
        self.conn.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL")
        self.conn.execute(
            f"CREATE VIRTUAL TABLE v USING vec0(embedding float[{dim}] distance_metric=cosine)"
        )

    def load(self, vectors: Any, start: int, batch: int) -> None:
        for i in range(0, len(vectors), batch):
            chunk = vectors[i : i + batch]
            with self.conn:
                self.conn.executemany(
                    "INSERT INTO v(rowid, embedding) VALUES (?, ?)",
                    [(start + i + j + 1, v.tobytes()) for j, v in enumerate(chunk)],
                )

    def search(self, query: Any) -> list[int]:
        rows = self.conn.execute(
            "SELECT rowid FROM v WHERE embedding MATCH ? AND k = 10 ORDER BY distance",
            (query.astype("float32").tobytes(),),
        ).fetchall()
        return [int(str(r[0])) - 1 for r in rows]


def _run(peer: str, params: Params, workdir: str) -> dict[str, Sample]:
    sizes = params["sizes"]
    assert isinstance(sizes, list)
    dim, nq = int_param(params, "dim"), int_param(params, "queries")
    batch, reps = int_param(params, "batch"), int_param(params, "reps")
    vectors, queries = _data(max(sizes), dim, nq)
    makers: dict[str, Callable[[], _Peer]] = {
        "eventlog": lambda: _Eventlog(workdir),
        "numpy": _Numpy,
        "sqlite-vec": lambda: _SqliteVec(workdir, dim),
    }
    if peer not in makers:
        raise ValueError(f"unknown peer {peer}")
    store = makers[peer]()
    out: dict[str, Sample] = {}
    loaded = 0
    load_rates: list[float] = []
    for size in sizes:
        start = time.perf_counter()
        store.load(vectors[loaded:size], loaded, batch)
        load_rates.append((size - loaded) / (time.perf_counter() - start))
        loaded = size
        start = time.perf_counter()
        first = store.search(queries[0])  # builds an index where the peer has one
        first_s = time.perf_counter() - start
        truth = _exact_top(vectors[:size], queries)
        found: list[list[int]] = [[] for _ in range(nq)]

        def call(i: int, found: list[list[int]] = found) -> None:
            found[i % nq] = store.search(queries[i % nq])

        rep_p50, every = measure_latency(call, calls=nq, reps=reps, warmup_calls=0)
        hits = sum(len(set(f) & t) for f, t in zip(found, truth, strict=True))
        out[f"search_{size}"] = Sample(
            LATENCY,
            rep_p50,
            percentiles(every),
            {"recall": hits / (10 * nq), "first_search_s": round(first_s, 3), "n": len(first)},
        )
    out["load"] = Sample(THROUGHPUT, load_rates)
    return out


def _rows(outputs: Mapping[str, PeerOutput], params: Params) -> list[Row]:
    sizes = params["sizes"]
    assert isinstance(sizes, list)
    dim = int_param(params, "dim")
    rows: list[Row] = []
    ours = outputs.get("eventlog")
    for size in sizes:
        variant = f"search_{size}"
        title = f"embeddings: search top 10 of {size // 1000}k vectors, dim {dim}"
        mine = None if ours is None else ours.variants.get(variant)
        for peer in ("eventlog", "numpy", "sqlite-vec"):
            out = outputs.get(peer)
            sample = None if out is None else out.variants.get(variant)
            if sample is None:
                rows.append(Row(NUMBER, title, _LABELS[peer], "error"))
                continue
            recall = float(sample.extra.get("recall", 0.0))  # type: ignore[arg-type]
            figure = (
                f"p50 {fmt_num(sample.pct['p50'])} µs, p99 {fmt_num(sample.pct['p99'])} µs, "
                f"recall@10 {recall:.3f}"
            )
            if peer == "eventlog":
                figure += f", first search {sample.extra.get('first_search_s')} s"
            r = None if peer == "eventlog" or mine is None else ratio(mine, sample)
            check = None
            last = size == sizes[-1]
            if last and r is not None:
                need = 5.0 if peer == "numpy" else 1.0
                check = Check(f"search p50 ≥ {need:g}x {_LABELS[peer]}", r, ">=", need)
            elif last and peer == "eventlog":
                check = Check("recall@10 ≥ 0.95", recall, ">=", 0.95)
            rows.append(
                Row(NUMBER, title, _LABELS[peer], figure, ratio=r, check=check, rss_mib=out.rss_mib)  # type: ignore[union-attr]
            )
    for peer in ("eventlog", "sqlite-vec"):
        out = outputs.get(peer)
        load = None if out is None else out.variants.get("load")
        if load is not None:
            rates = ", ".join(fmt_num(x) for x in load.reps)
            rows.append(
                Row(
                    NUMBER,
                    f"embeddings: upsert rate, batches of {int_param(params, 'batch')}",
                    _LABELS[peer],
                    f"{rates} vectors/s (to {sizes[0] // 1000}k, then to {sizes[-1] // 1000}k)",
                )
            )
    return rows


def _skip() -> str | None:
    try:
        import apsw  # noqa: F401
        import numpy  # noqa: F401
        import sqlite_vec  # noqa: F401
        import usearch  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not installed (pip install 'agent-eventlog[bench]')"
    return None


WORKLOAD = Workload(
    number=NUMBER,
    key="embeddings",
    title="embeddings: upsert rate; search p50/p99 and recall@10 at 10k and 100k vectors",
    peers=("eventlog", "numpy", "sqlite-vec"),
    params=_params,
    run=_run,
    rows=_rows,
    lockstep=False,
    timeout=1800.0,
    skip=_skip,
)

if __name__ == "__main__":
    from benchmarks.runner import main

    main([WORKLOAD.key])
