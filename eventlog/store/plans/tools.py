"""Plans of the whole-store operations: export, import, statistics, verification.

Export reads in short snapshots (records first, then the log in chunks); import validates the
whole file, then writes it in one transaction; ``verify`` refolds everything in one snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any
from uuid import UUID

import msgspec

from eventlog.engine.core import Engine
from eventlog.engine.projectors import reader
from eventlog.errors import RunNotFound
from eventlog.log import get_logger
from eventlog.model.artifacts import ArtifactPut
from eventlog.model.records import EventRecord, RunRecord, Session, StreamRecord
from eventlog.model.status import RunStatus
from eventlog.model.validation import uuid_of
from eventlog.storage.blobs import KVBlobs, blob_chunks, blob_sink, file_blobs_of
from eventlog.storage.kv import KVBackend, KVTxn
from eventlog.store.plans.embeddings import view as embedding_view
from eventlog.store.plans.projections import ProjectionPlans
from eventlog.store.plans.records import run_with_status, session_with_activity
from eventlog.tools.jsonl import (
    ImportFileError,
    ImportSummary,
    export_lines,
    import_lines,
    parse_lines,
)
from eventlog.tools.verify import Problem, verify
from projections.artifacts import ArtifactIndex
from projections.status_index import StatusIndexQuery

__all__ = ["StoreStats", "ToolPlans"]


def _referenced(sha256: str, txn: KVTxn) -> bool:
    return ArtifactIndex(reader(txn, "artifacts")).referenced(sha256)


# the facade's logger, as before its plans moved here: logging set up for it still applies
log = get_logger("eventlog.store.run_store")


class StoreStats(msgspec.Struct):
    """What ``store.stats()`` reports (sizes are 0 for the memory backend)."""

    runs_by_status: dict[str, int]
    runs: int
    sessions: int
    events: int
    last_position: int
    map_size: int = 0
    used_bytes: int = 0
    file_bytes: int = 0
    projectors: list[dict[str, Any]] = msgspec.field(default_factory=list)
    #: streams of other kinds (LangGraph threads, Agents SDK sessions, ...) by kind
    streams_by_kind: dict[str, int] = msgspec.field(default_factory=dict)
    #: artifacts (every version) and their total size in bytes (blobs are stored once)
    artifacts: int = 0
    artifact_bytes: int = 0
    #: live embeddings and the store's embedding dimension (None until the first upsert)
    embeddings: int = 0
    embedding_dimension: int | None = None


_Records = tuple[list[Session], list[RunRecord], list[StreamRecord]]


class ToolPlans:
    """Export, import, statistics and verification of the whole store."""

    def __init__(self, backend: KVBackend, engine: Engine, projections: ProjectionPlans) -> None:
        self.backend = backend
        self.engine = engine
        self.projections = projections

    # -- export / import ------------------------------------------------------------------
    def export_jsonl(self, run_ids: Iterable[UUID | str] | None) -> Iterator[str]:
        """``export_jsonl``: the lines, read lazily in short snapshots (checks on first use)."""
        wanted = None if run_ids is None else [uuid_of(r, "run_id") for r in run_ids]
        if wanted is not None:  # a fork reads its ancestors: they go with it
            wanted = self.backend.read(partial(self._with_ancestors, wanted))
        sessions, runs, streams = self.backend.read(partial(self._records, wanted))
        shas: dict[str, int] = {}  # the blobs of the artifacts exported, read after the events

        def events() -> Iterator[EventRecord]:
            for record in self._events(wanted):
                if isinstance(record.event, ArtifactPut):
                    shas[record.event.artifact.sha256] = record.event.artifact.size
                yield record

        blobs = partial(self._blobs, shas)
        forks = self.backend.read(partial(self._stream_forks, streams))
        lines = export_lines(sessions, runs, events(), streams, blobs=blobs, stream_forks=forks)
        for line in lines:
            yield line.decode()

    def _blobs(self, shas: dict[str, int]) -> Iterator[tuple[str, int, bytes]]:
        files = file_blobs_of(self.backend.path)
        for sha, size in sorted(shas.items()):
            if not self.backend.read(partial(_referenced, sha)):
                continue  # deleted since: its blob is garbage
            try:
                for i, chunk in enumerate(blob_chunks(self.backend.read, files, sha, size)):
                    yield sha, i, chunk
            except FileNotFoundError:
                continue  # missing: verify() reports it

    def _with_ancestors(self, wanted: list[UUID], txn: KVTxn) -> list[UUID]:
        found = dict.fromkeys(wanted)
        for sid in wanted:
            if self.engine.index.stream_kind(txn, sid) is not None:
                found.update(dict.fromkeys(p for p, _ in self.engine.forks.lineage(txn, sid)))
        return list(found)

    def _stream_forks(
        self, streams: list[StreamRecord], txn: KVTxn
    ) -> dict[UUID, tuple[UUID, int]]:
        out: dict[UUID, tuple[UUID, int]] = {}
        for st in streams:
            links = self.engine.forks.lineage(txn, st.id)
            if links:
                out[st.id] = links[0]
        return out

    def _records(self, wanted: list[UUID] | None, txn: KVTxn) -> _Records:
        engine = self.engine
        streams: list[StreamRecord] = []
        if wanted is None:
            runs = [run_with_status(engine, txn, r.id) for r in engine.records.iter_runs(txn)]
            sids = [s.id for s in engine.records.iter_sessions(txn)]
            found_streams = (
                engine.streams.get_stream(txn, st.id) for st in engine.streams.iter_streams(txn)
            )
            streams = [st for st in found_streams if st is not None]
        else:
            runs = []
            named_sessions: list[UUID] = []
            for rid in wanted:
                kind = engine.index.stream_kind(txn, rid)
                if kind == "session":  # the session's record and its messages
                    named_sessions.append(rid)
                    continue
                if kind == "stream":
                    stream = engine.streams.get_stream(txn, rid)
                    if stream is not None:
                        streams.append(stream)
                        continue
                run = run_with_status(engine, txn, rid)
                if run is None:
                    raise RunNotFound(rid)
                runs.append(run)
            sids = list(
                dict.fromkeys([*(r.session_id for r in runs if r is not None), *named_sessions])
            )
        found_sessions = (session_with_activity(engine, txn, i) for i in sids)
        sessions = [s for s in found_sessions if s is not None]
        found = [r for r in runs if r is not None]
        return (
            sorted(sessions, key=lambda s: (s.created_at, s.id.bytes)),
            sorted(found, key=lambda r: (r.created_at, r.id.bytes)),
            sorted(streams, key=lambda st: (st.created_at, st.id.bytes)),
        )

    def _events(self, wanted: list[UUID] | None) -> Iterator[EventRecord]:
        reads = self.engine.reads
        if wanted is not None:
            events = [
                e
                for rid in wanted
                for e in self.backend.read(partial(self.engine.forks.own_events, stream_id=rid))
            ]
            yield from sorted(events, key=lambda e: e.position)
            return
        after = 0
        while True:
            chunk = self.backend.read(partial(reads.read_log, after_position=after, limit=5000))
            if not chunk:
                return
            yield from chunk
            after = chunk[-1].position

    def import_jsonl(
        self, lines: Iterable[str | bytes], *, require_trailer: bool = False
    ) -> ImportSummary:
        """``import_jsonl``: validate every line, then write all of it in one transaction."""
        parsed = parse_lines(lines, require_trailer=require_trailer)
        engine = self.engine
        files = file_blobs_of(self.backend.path)
        sink = blob_sink(files)

        def work(txn: KVTxn) -> ImportSummary:
            summary = import_lines(engine, txn, parsed, sink)
            for number, _, event in parsed:  # no record without its blob
                if isinstance(event, ArtifactPut) and _referenced(event.artifact.sha256, txn):
                    sha = event.artifact.sha256
                    there = files.exists(sha) if files else KVBlobs.size_of(txn, sha) is not None
                    if not there:
                        raise ImportFileError(
                            number,
                            f"artifact {event.artifact.id}: its blob {sha} is not in the file "
                            "(nor in the store); export the store again",
                        )
            return summary

        summary = self.backend.write(work)
        log.info(
            "imported",
            path=self.backend.path,
            runs=summary.runs,
            streams=summary.streams,
            events=summary.events,
        )
        return summary

    # -- statistics and checks ------------------------------------------------------------
    def stats(self) -> StoreStats:
        """``stats``: counts, sizes and projector checkpoints (a few short reads)."""
        engine = self.engine

        def work(txn: KVTxn) -> StoreStats:
            index = StatusIndexQuery(reader(txn, "status_index"))
            by_status = {s.value: index.count(status=s) for s in RunStatus}
            sessions = sum(1 for _ in txn.scan("sessions", b""))
            events = sum(1 for _ in engine.reads.iter_log(txn))
            kinds: dict[str, int] = {}
            for key, _ in txn.scan("stream_kinds", b""):  # kind NUL number
                kind = key.split(b"\x00", 1)[0].decode()
                kinds[kind] = kinds.get(kind, 0) + 1
            artifacts, artifact_bytes = ArtifactIndex(reader(txn, "artifacts")).totals()
            return StoreStats(
                runs_by_status={k: v for k, v in by_status.items() if v},
                runs=sum(by_status.values()),
                sessions=sessions,
                events=events,
                last_position=engine.index.last_position(txn),
                streams_by_kind=dict(sorted(kinds.items())),
                artifacts=artifacts,
                artifact_bytes=artifact_bytes,
                embeddings=embedding_view(txn).count(),
                embedding_dimension=embedding_view(txn).dimension(),
            )

        stats = self.backend.read(work)
        info = getattr(self.backend, "info", None)
        if callable(info):
            sizes = info()
            stats.map_size = sizes["map_size"]
            stats.used_bytes = sizes["used_bytes"]
            stats.file_bytes = sizes.get("file_bytes", 0)
        stats.projectors = [
            {
                "name": p.name,
                "version": p.version,
                "checkpoint": p.checkpoint,
                "ready": p.ready,
                "mode": p.mode,
                "error": p.error,
            }
            for p in self.backend.read(self.projections.projector_status())
        ]
        return stats

    def verify(self) -> Callable[[KVTxn], list[Problem]]:
        """``verify``: refold everything in one snapshot and compare with every view."""
        return partial(verify, self.engine)
