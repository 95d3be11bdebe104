"""Search over a store's embeddings, shared by the sync and async facades.

:class:`EmbeddingSearch` owns the store's derived indexes (:mod:`eventlog.store.embedding_index`)
and answers ``search``: cosine similarity, best first. On LMDB a store of
:attr:`EmbeddingSearch.exact_below` embeddings or more is searched with the approximate index
(asking it for more candidates when filters drop some); smaller stores, a ``session_id``
filter (a session's embeddings are read directly) and the memory and PostgreSQL backends
search exactly. Every candidate is checked against the embeddings view and scored exactly.
numpy and usearch are imported on first use (the ``embeddings`` extra).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Mapping
from functools import partial
from typing import Any
from uuid import UUID

from eventlog.engine.core import Engine
from eventlog.errors import EmbeddingDimensionError, EmbeddingsUnavailableError
from eventlog.model.embeddings import EmbeddingHit, check_vector
from eventlog.model.validation import metadata, uuid_of
from eventlog.storage.keys import pack_u64, unpack_u64
from eventlog.storage.kv import KVBackend, KVTxn
from eventlog.store.embedding_index import (
    AnnIndex,
    ExactIndex,
    index_files,
    normalized,
    read_changes,
)
from eventlog.store.plans.embeddings import EmbeddingPlans, view
from eventlog.tools.verify import Problem

__all__ = ["EmbeddingSearch", "IndexStatus", "load_modules"]

#: the most results one search returns
MAX_K = 10_000


def load_modules(ann: bool) -> tuple[Any, Any]:
    """``(numpy, usearch.index or None)``; :class:`EmbeddingsUnavailableError` when missing."""
    names = ("numpy", "usearch.index") if ann else ("numpy",)
    mods: list[Any] = []
    for name in names:
        try:
            mods.append(importlib.import_module(name))
        except ImportError:
            raise EmbeddingsUnavailableError(name.split(".")[0]) from None
    return mods[0], (mods[1] if ann else None)


class IndexStatus(dict[str, Any]):
    """``kind``, ``position`` (the log position it reflects), ``behind``, ``file``."""


class EmbeddingSearch:
    """The derived indexes of one open store and the search over them."""

    #: below this many embeddings an LMDB store searches exactly (as fast, and exact)
    exact_below = 5_000
    #: an approximate index that took this many changes since its file is saved again
    save_every = 50_000

    def __init__(self, backend: KVBackend, engine: Engine, plans: EmbeddingPlans) -> None:
        self.backend = backend
        self.engine = engine
        self.plans = plans
        local = backend.path is not None and not getattr(backend, "remote", False)
        self.ann_capable = local
        self.directory = backend.path if local else None
        self.writable = local and not backend.readonly
        self.np, self.usearch = load_modules(local)
        self._lock = threading.Lock()
        self._exact: ExactIndex | None = None
        self._ann: AnnIndex | None = None
        #: PostgreSQL: the pgvector index when the server has the extension (None: unknown)
        self.pgvector: bool | None = None if getattr(backend, "remote", False) else False
        self._pg: Any = None
        self._changes_since_save = 0

    # -- search ----------------------------------------------------------------------------
    def search(
        self,
        vector: object,
        k: int,
        session_id: UUID | str | None,
        meta: Mapping[str, object] | None,
        min_score: float | None,
    ) -> list[EmbeddingHit]:
        """``store.embeddings.search`` (see :class:`~eventlog.store.embeddings.Embeddings`)."""
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
            raise ValueError(f"k must be an int from 1 to {MAX_K}, got {k!r:.80}")
        if min_score is not None:
            if not isinstance(min_score, int | float) or isinstance(min_score, bool):
                raise TypeError(f"min_score must be a number or None, got {min_score!r:.80}")
            if not -1.0 <= float(min_score) <= 1.0:
                raise ValueError(f"min_score {min_score} must be between -1 and 1")
        values = check_vector(vector)
        sid = None if session_id is None else uuid_of(session_id, "session_id")
        wanted = metadata(meta, "metadata")
        count, dim, last = self.backend.read(self.plans.summary())
        if dim is not None and len(values) != dim:
            raise EmbeddingDimensionError(len(values), dim)
        if dim is None or count == 0:
            return []
        np = self.np
        query = normalized(np, np.asarray(values, dtype="<f4").tobytes())
        floor = None if min_score is None else float(min_score)
        if sid is not None:  # a session's embeddings: read and scored directly
            return self.backend.read(lambda txn: self._session(txn, query, k, sid, wanted, floor))
        with self._lock:
            index = self._index(dim, count, last)
            want = k if not wanted else k * 4
            while True:
                labels = index.search(query, want)
                hits, stale = self.backend.read(
                    partial(self._resolve, query=query, labels=labels, wanted=wanted)
                )
                if stale:
                    index.apply((index.position, dict.fromkeys(stale)))
                    continue
                done = len(labels) < want or want >= len(index)
                if done and len(labels) < min(want, len(index)):  # pgvector's 1000 cap
                    index = self._exact_index(last)
                    continue
                if floor is not None:
                    done = done or (bool(hits) and hits[-1].score < floor)
                    hits = [h for h in hits if h.score >= floor]
                if len(hits) >= k or done:
                    return hits[:k]
                want *= 4

    def _index(self, dim: int, count: int, last: int) -> Any:
        """The index to search, caught up with the log at ``last`` (under the lock)."""
        if self.pgvector is None:
            from eventlog.storage.postgres import vectors

            self.pgvector = vectors.available(self.backend)  # type: ignore[arg-type]
        if self.pgvector:
            if self._pg is None or self._pg.dimension != dim:
                from eventlog.storage.postgres.vectors import PgVectorIndex

                self._pg = PgVectorIndex(self.backend, dim)  # type: ignore[arg-type]
            if self._pg.position < last:
                np, backend, engine = self.np, self.backend, self.engine
                self._pg.catch_up(lambda after: read_changes(np, backend, engine, after))
            return self._pg
        if self.ann_capable and count >= self.exact_below:
            if self._ann is None or self._ann.dimension != dim:
                self._ann = AnnIndex(
                    self.np, self.usearch, self.directory, dim, writable=self.writable
                )
                self._ann.load(last)
            index: AnnIndex | ExactIndex = self._ann
        else:
            index = self._exact_index(last)
        if index.position < last:
            changes = read_changes(self.np, self.backend, self.engine, index.position)
            index.apply(changes)
            if isinstance(index, AnnIndex):
                self._changes_since_save += len(changes[1])
                if self._changes_since_save >= self.save_every or index.saved_position == 0:
                    self._save()
        return index

    def _exact_index(self, last: int) -> ExactIndex:
        """The exact in-memory index, caught up with the log at ``last``."""
        if self._exact is None:
            self._exact = ExactIndex(self.np)
        if self._exact.position < last:
            self._exact.apply(
                read_changes(self.np, self.backend, self.engine, self._exact.position)
            )
        return self._exact

    def _resolve(
        self, txn: KVTxn, query: Any, labels: list[int], wanted: dict[str, Any]
    ) -> tuple[list[EmbeddingHit], list[int]]:
        """The hits of ``labels`` that are live and match ``wanted``, scored, best first."""
        index = self.engine.index
        entries = view(txn)
        hits: list[EmbeddingHit] = []
        stale: list[int] = []
        for label in labels:
            stream = index.stream_of(txn, pack_u64(label))
            entry = None if stream is None else entries.entry(stream)
            if entry is None:
                stale.append(label)
                continue
            if wanted and any(entry.metadata.get(key, _MISSING) != v for key, v in wanted.items()):
                continue
            score = float(normalized(self.np, entry.vector) @ query)
            hits.append(
                EmbeddingHit(
                    entry.embedding_id,
                    score,
                    entry.session_id,
                    entry.run_id,
                    entry.text,
                    entry.metadata,
                )
            )
        hits.sort(key=lambda h: (-h.score, h.id))
        return hits, stale

    def _session(
        self,
        txn: KVTxn,
        query: Any,
        k: int,
        session_id: UUID,
        wanted: dict[str, Any],
        floor: float | None,
    ) -> list[EmbeddingHit]:
        """Exact search over one session's embeddings."""
        index = self.engine.index
        labels = []
        for sid, _ in view(txn).entries(session_id):
            number = index.stream_number(txn, sid)
            if number is not None:
                labels.append(unpack_u64(number))
        hits, _ = self._resolve(txn, query, labels, wanted)
        if floor is not None:
            hits = [h for h in hits if h.score >= floor]
        return hits[:k]

    # -- the derived file, status, verify ---------------------------------------------------
    def _save(self) -> None:
        if self._ann is not None and self.writable:
            self._ann.save()
            self._changes_since_save = 0

    def save(self) -> None:
        """Catch the approximate index up with the log and write its file (LMDB)."""
        count, dim, last = self.backend.read(self.plans.summary())
        with self._lock:
            if dim is not None and self.ann_capable and count >= self.exact_below:
                self._index(dim, count, last)
            self._save()

    def status(self) -> IndexStatus:
        """The index a search uses now, what it reflects and whether it is behind the log."""
        count, dim, last = self.backend.read(self.plans.summary())
        ann = self.ann_capable and count >= self.exact_below
        if self.pgvector and self._pg is not None:
            return IndexStatus(
                count=count,
                dimension=dim,
                kind="pgvector",
                position=self._pg.position,
                last_position=last,
                behind=max(0, last - self._pg.position) if count else 0,
                file_position=None,
            )
        with self._lock:
            index: AnnIndex | ExactIndex | None = self._ann if ann else self._exact
            file_position = None
            if ann and self.backend.path is not None:
                files = index_files(self.backend.path)
                file_position = files[0][0] if files else None
            position = 0 if index is None else index.position
            if index is None and file_position is not None:
                position = file_position
        return IndexStatus(
            count=count,
            dimension=dim,
            kind="approximate" if ann else "exact",
            position=position,
            last_position=last,
            behind=max(0, last - position) if count else 0,
            file_position=file_position,
        )

    def verify(self) -> list[Problem]:
        """Catch the index up and compare its labels with the embeddings view."""
        count, dim, last = self.backend.read(self.plans.summary())
        if dim is None or count == 0:
            return []
        with self._lock:
            index = self._index(dim, count, last)
            _, expected = read_changes(self.np, self.backend, self.engine, 0)
            if self._pg is not None and index is self._pg:
                have = self._pg.labels()
                where = f"pgvector table at position {index.position}"
            elif isinstance(index, AnnIndex):
                have = {int(x) for x in index.index.keys}
                where = f"approximate index at position {index.position}"
            else:
                have = set(index.vectors)
                where = f"exact index at position {index.position}"
        live = set(expected)
        missing, extra = live - have, have - live
        problems = []
        if missing:
            problems.append(
                Problem(
                    "embedding_index",
                    where,
                    f"{len(missing)} live embeddings missing (stream numbers "
                    f"{sorted(missing)[:5]}); reopen the store to rebuild the index",
                )
            )
        if extra and isinstance(index, ExactIndex):
            problems.append(
                Problem("embedding_index", where, f"{len(extra)} removed embeddings still indexed")
            )
        return problems

    def close(self) -> None:
        """Save the approximate index if it moved since its file (LMDB, not read-only)."""
        with self._lock:
            if self._ann is not None and self._ann.position != self._ann.saved_position:
                self._save()


_MISSING = object()
