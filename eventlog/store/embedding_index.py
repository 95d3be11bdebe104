"""The derived vector indexes behind ``store.embeddings.search``: exact and approximate.

Both are derived from the embeddings view and the log, never the source of truth. Each
entry's *label* is its stream's number (an int handed out once, never reused). An index
knows the log position it reflects (its checkpoint) and catches up from there: the log's
embedding events after it name the streams that changed, and each changed stream's current
entry (from the view, in the same snapshot) replaces what the index had. Applying the current
state makes catching up idempotent, so an index saved ahead of its checkpoint is harmless.
A search's candidates are checked against the view before they are returned (a stream deleted
with ``delete_stream`` leaves no event to catch up from).

- :class:`ExactIndex`: a dict of normalized vectors and a matrix product (numpy).
- :class:`AnnIndex`: an HNSW graph (usearch), kept on LMDB as a file beside the store named
  by its checkpoint, ``embeddings.<position>.usearch``: written to a temporary file, synced,
  then renamed, so a crash leaves the previous file or the new one whole. On open the newest
  file that loads and is not ahead of the log is used (else the index is rebuilt).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from eventlog.engine.core import Engine
from eventlog.model.embeddings import EmbeddingDeleted, EmbeddingUpserted
from eventlog.storage.keys import unpack_u64
from eventlog.storage.kv import KVBackend, KVTxn
from eventlog.store.plans.embeddings import view

__all__ = ["AnnIndex", "Changes", "ExactIndex", "changes_since", "index_files"]

#: ``{label: normalized float32 vector or None (removed)}`` and the position they reflect
Changes = tuple[int, dict[int, Any]]
_FILE = re.compile(r"embeddings\.(\d{16})\.usearch")
_PAGE = 4096


def normalized(np: Any, raw: bytes) -> Any:
    """A stored float32 vector as a unit numpy vector."""
    vec = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    return vec / np.float32(np.linalg.norm(vec))


def changes_since(np: Any, engine: Engine, txn: KVTxn, after: int) -> Changes:
    """What changed after position ``after`` (everything live when ``after`` is 0)."""
    index = engine.index
    last = index.last_position(txn)
    query = view(txn)
    out: dict[int, Any] = {}
    if after == 0:
        for sid, entry in query.entries():
            number = index.stream_number(txn, sid)
            if number is not None:
                out[unpack_u64(number)] = normalized(np, entry.vector)
        return last, out
    touched: set[UUID] = set()
    pos = after
    while pos < last:
        page = engine.reads.read_log(txn, after_position=pos, limit=_PAGE)
        if not page:
            break
        for rec in page:
            if isinstance(rec.event, EmbeddingUpserted | EmbeddingDeleted):
                touched.add(rec.run_id)
        pos = page[-1].position
    for sid in touched:
        number = index.stream_number(txn, sid)
        if number is None:
            continue
        found = query.entry(sid)
        out[unpack_u64(number)] = None if found is None else normalized(np, found.vector)
    return last, out


class ExactIndex:
    """Every live vector, normalized, in memory; top-k by one matrix product."""

    kind = "exact"

    def __init__(self, np: Any) -> None:
        self.np = np
        self.position = 0
        self.vectors: dict[int, Any] = {}
        self._matrix: Any = None
        self._labels: Any = None

    def apply(self, changes: Changes) -> None:
        """Take ``changes`` (see :func:`changes_since`)."""
        position, items = changes
        for label, vec in items.items():
            if vec is None:
                self.vectors.pop(label, None)
            else:
                self.vectors[label] = vec
        if items:
            self._matrix = None
        self.position = position

    def __len__(self) -> int:
        return len(self.vectors)

    def search(self, query: Any, k: int, labels: Iterable[int] | None = None) -> list[int]:
        """The ``k`` best labels (of all, or of ``labels``), best first."""
        np = self.np
        if labels is not None:
            chosen = [x for x in labels if x in self.vectors]
            if not chosen:
                return []
            matrix = np.stack([self.vectors[x] for x in chosen])
            keys = np.asarray(chosen, dtype=np.uint64)
        else:
            if self._matrix is None:
                if not self.vectors:
                    return []
                self._labels = np.fromiter(self.vectors, dtype=np.uint64, count=len(self.vectors))
                self._matrix = np.stack(list(self.vectors.values()))
            matrix, keys = self._matrix, self._labels
        scores = matrix @ query
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [int(x) for x in keys[top]]


class AnnIndex:
    """An approximate (HNSW, usearch) index, saved beside an LMDB store with its checkpoint."""

    kind = "approximate"

    def __init__(
        self, np: Any, usearch: Any, directory: str | None, dimension: int, *, writable: bool
    ) -> None:
        self.np = np
        self.usearch = usearch
        self.directory = directory
        #: False on a read-only store: the file is read, never written
        self.writable = writable
        self.dimension = dimension
        self.position = 0
        self.saved_position = 0
        self.index = self._new()

    def _new(self) -> Any:
        return self.usearch.Index(
            ndim=self.dimension,
            metric="cos",
            dtype="f32",
            connectivity=16,
            expansion_add=128,
            expansion_search=64,
        )

    def __len__(self) -> int:
        return len(self.index)

    def load(self, last_position: int) -> bool:
        """Load the newest saved file not ahead of ``last_position``; False: none usable."""
        if self.directory is None:
            return False
        for position, path in index_files(self.directory):
            if position > last_position:
                continue  # ahead of the log (a store restored from an older copy)
            try:
                loaded = self.usearch.Index.restore(path)
            except Exception:  # a damaged file: try the older one, else rebuild
                continue
            if loaded is None or loaded.ndim != self.dimension:
                continue
            self.index = loaded
            self.position = self.saved_position = position
            return True
        return False

    def apply(self, changes: Changes) -> None:
        """Take ``changes`` (see :func:`changes_since`)."""
        position, items = changes
        np = self.np
        if items:
            keys = np.fromiter(items, dtype=np.uint64, count=len(items))
            present = [k for k in keys if self.index.contains(int(k))]
            if present:
                self.index.remove(np.asarray(present, dtype=np.uint64))
            live = [(k, v) for k, v in items.items() if v is not None]
            if live:
                self.index.add(
                    np.asarray([k for k, _ in live], dtype=np.uint64),
                    np.stack([v for _, v in live]),
                )
        self.position = position

    def search(self, query: Any, k: int) -> list[int]:
        """About the ``k`` best labels, best first."""
        if len(self.index) == 0:
            return []
        matches = self.index.search(query, min(k, len(self.index)))
        return [int(x) for x in matches.keys]

    def save(self) -> str | None:
        """Write the index as ``embeddings.<position>.usearch`` (atomic); drop older files."""
        if not self.writable or self.directory is None or self.position == self.saved_position:
            return None
        final = os.path.join(self.directory, f"embeddings.{self.position:016d}.usearch")
        tmp = f"{final}.{os.getpid()}.tmp"  # each process its own (two writers may save)
        self.index.save(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
        dfd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        self.saved_position = self.position
        for position, path in index_files(self.directory):
            if position != self.position:
                _unlink(path)
        _clean_temporaries(self.directory)
        return final


def index_files(directory: str) -> list[tuple[int, str]]:
    """The saved index files in ``directory``, newest checkpoint first."""
    found: list[tuple[int, str]] = []
    try:
        names = os.listdir(directory)
    except OSError:
        return found
    for name in names:
        match = _FILE.fullmatch(name)
        if match:
            found.append((int(match.group(1)), os.path.join(directory, name)))
    found.sort(reverse=True)
    return found


def _clean_temporaries(directory: str, older_than: float = 600.0) -> None:
    """Remove temporary index files a killed process left (older than ten minutes)."""
    now = time.time()
    for name in os.listdir(directory):
        if name.startswith("embeddings.") and name.endswith(".tmp"):
            path = os.path.join(directory, name)
            with contextlib.suppress(OSError):
                if now - os.path.getmtime(path) > older_than:
                    os.remove(path)


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)


def read_changes(np: Any, backend: KVBackend, engine: Engine, after: int) -> Changes:
    """:func:`changes_since` in one read snapshot of ``backend``."""
    return backend.read(lambda txn: changes_since(np, engine, txn, after))


#: one lock per store around its indexes (searches and catch-up from many threads)
IndexLock = threading.Lock
