"""Search against a brute-force model, the approximate index's recall and crash safety.

- exact backends (memory, small LMDB) return the brute-force model's results (hypothesis);
- the approximate index (LMDB, usearch) finds >= 95% of the exact top 10 (recall@10);
- the derived index file: a SIGKILL during upsert batches, a damaged file and a file ahead
  of the log all reopen to an index consistent with the log;
- without numpy, ``store.embeddings`` names the extra to install; importing eventlog never
  imports numpy or usearch.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventlog import RunStore
from eventlog.store.embedding_index import index_files

DIM = 3
_component = st.integers(-3, 3).map(float)
_vector = st.lists(_component, min_size=DIM, max_size=DIM).filter(any)
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("upsert"), st.sampled_from("abcdefgh"), _vector, st.integers(0, 1)),
        st.tuples(st.just("delete"), st.sampled_from("abcdefgh"), _vector, st.integers(0, 1)),
    ),
    max_size=20,
)


def brute_force(
    model: dict[str, tuple[list[float], int]],
    query: list[float],
    k: int,
    tag: int | None = None,
) -> list[tuple[str, float]]:
    def cos(a: list[float], b: list[float]) -> float:
        dot = sum(x * y for x, y in zip(a, b, strict=True))
        return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))

    scored = [(key, cos(vec, query)) for key, (vec, t) in model.items() if tag is None or t == tag]
    scored.sort(key=lambda item: (-item[1], item[0]))
    return scored[:k]


@settings(max_examples=40, deadline=None)
@given(ops=_ops, query=_vector, k=st.integers(1, 9), tag=st.sampled_from([None, 0, 1]))
def test_exact_search_equals_brute_force(
    ops: list[tuple[str, str, list[float], int]], query: list[float], k: int, tag: int | None
) -> None:
    store = RunStore.in_memory()
    model: dict[str, tuple[list[float], int]] = {}
    for op, key, vec, t in ops:
        if op == "upsert":
            store.embeddings.upsert(key, vec, metadata={"tag": t})
            model[key] = (vec, t)
        else:
            assert store.embeddings.delete(key) is (key in model)
            model.pop(key, None)
        # search between writes: the in-memory index catches up each time
        store.embeddings.search(query, k=1)
    meta = None if tag is None else {"tag": tag}
    hits = store.embeddings.search(query, k=k, metadata=meta)
    expected = brute_force(model, query, k, tag)
    assert [h.score for h in hits] == pytest.approx([s for _, s in expected], abs=1e-5)
    every = dict(brute_force(model, query, len(model), tag))
    for hit in hits:  # each hit is a live, matching embedding with its own score
        assert hit.score == pytest.approx(every[hit.id], abs=1e-5)
    assert store.embeddings.count() == len(model)
    assert store.verify() == []


def _random_vectors(n: int, dim: int, seed: int) -> list[list[float]]:
    rnd = random.Random(seed)
    return [[rnd.gauss(0.0, 1.0) for _ in range(dim)] for _ in range(n)]


def test_approximate_recall_at_10(tmp_path: Path) -> None:
    vectors = _random_vectors(2000, 32, seed=7)
    queries = _random_vectors(30, 32, seed=8)
    with RunStore.open(tmp_path / "store", durability="fast") as store:
        store.embeddings.upsert_many([(f"v{i}", v) for i, v in enumerate(vectors)])
        engine = store.embeddings.search_engine
        exact = [[h.id for h in store.embeddings.search(q, k=10)] for q in queries]
        assert store.embeddings.status()["kind"] == "exact"
        engine.exact_below = 500
        approx = [[h.id for h in store.embeddings.search(q, k=10)] for q in queries]
        assert store.embeddings.status()["kind"] == "approximate"
    found = sum(len(set(a) & set(e)) for a, e in zip(approx, exact, strict=True))
    recall = found / (10 * len(queries))
    assert recall >= 0.95, f"recall@10 {recall:.3f}"
    assert index_files(str(tmp_path / "store"))  # saved beside the store on close


_WRITER = """
import random, sys
from eventlog import RunStore
store = RunStore.open(sys.argv[1], durability="fast")
store.embeddings.search_engine.exact_below = 1
store.embeddings.search_engine.save_every = 1
rnd = random.Random(3)
for batch in range(1000):
    store.embeddings.upsert_many(
        [(f"e{(batch * 7 + i) % 150}", [rnd.gauss(0.0, 1.0) for _ in range(16)])
         for i in range(10)]
    )
    if batch % 3 == 2:
        store.embeddings.delete(f"e{batch % 150}")
    store.embeddings.search([1.0] * 16, k=3)  # catches up: saves the index file
    print(batch, flush=True)
"""


def _consistent(path: Path) -> None:
    with RunStore.open(path) as store:
        store.embeddings.search_engine.exact_below = 1
        query = [0.5, 1.0, 2.0] * 5 + [1.0]
        approx = store.embeddings.search(query, k=5)
        assert store.embeddings.status()["kind"] == "approximate"
        assert store.verify() == []
        records = [store.embeddings.get(f"e{i}") for i in range(150)]
        model = {r.id: (list(r.vector), 0) for r in records if r is not None}
        expected = brute_force(model, query, 5)
        assert [h.score for h in approx] == pytest.approx([s for _, s in expected], abs=1e-5)


def test_sigkill_during_upsert_batches_leaves_a_consistent_index(tmp_path: Path) -> None:
    path = tmp_path / "store"
    with subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)],
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        for _ in range(25):  # wait for batches to commit and index files to be saved
            assert proc.stdout.readline(), "the writer stopped early"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert index_files(str(path))
    _consistent(path)


def test_damaged_or_ahead_index_files_are_not_trusted(tmp_path: Path) -> None:
    path = tmp_path / "store"
    with RunStore.open(path, durability="fast") as store:
        store.embeddings.search_engine.exact_below = 1
        vectors = _random_vectors(150, 16, seed=5)
        store.embeddings.upsert_many([(f"e{i}", v) for i, v in enumerate(vectors)])
        store.embeddings.save_index()
    ((position, file),) = index_files(str(path))
    # a file from the future (the store restored from an older copy): ignored, rebuilt
    ahead = path / f"embeddings.{position + 1000:016d}.usearch"
    ahead.write_bytes(b"not an index")
    Path(file).write_bytes(b"damaged")
    _consistent(path)
    assert [p for p, _ in index_files(str(path)) if p <= position + 1]


def test_without_numpy_the_error_names_the_extra(tmp_path: Path) -> None:
    script = """
import sys
sys.modules["numpy"] = None  # as if the embeddings extra were not installed
import eventlog
store = eventlog.RunStore.in_memory()
store.create_session()
assert "usearch" not in sys.modules
try:
    store.embeddings
except eventlog.EmbeddingsUnavailableError as exc:
    print(exc)
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert "pip install 'agent-eventlog[embeddings]'" in out


def test_importing_eventlog_imports_no_numpy() -> None:
    script = (
        "import sys, eventlog; s = eventlog.RunStore.in_memory(); s.ensure_session(); "
        "print(sorted(m for m in ('numpy', 'usearch') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.strip() == "[]"


def test_cli_embeddings_and_stats(tmp_path: Path) -> None:
    path = tmp_path / "store"
    with RunStore.open(path) as store:
        store.embeddings.upsert_many([("a", [1.0, 0.0]), ("b", [0.0, 1.0])])
    eventlog = str(Path(sys.executable).parent / "eventlog")
    result = subprocess.run(
        [eventlog, "embeddings", "--db", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    data = json.loads(result.stdout)
    assert (data["count"], data["dimension"], data["kind"]) == (2, 2, "exact")
    stats = subprocess.run(
        [eventlog, "stats", "--db", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "embeddings 2 (dimension 2)" in stats.stdout
