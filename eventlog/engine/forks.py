"""Forking runs and streams inside the caller's transaction: create, list, lineage.

:class:`Forks` creates a fork (a run through :class:`~eventlog.engine.records.Records`, a
stream of another kind through :class:`~eventlog.engine.streams.OtherStreams`), links it to
its parent (:mod:`eventlog.engine.lineage`) and folds the shared prefix into the projectors
once, as if the fork's first ``at_seq`` events had just been appended: its state is then the
fold of its events. See :mod:`eventlog.engine.lineage` for the key layout.
"""

from __future__ import annotations

from uuid import UUID

from eventlog.engine.lineage import ForkBase, forks_of, link_fork, parent_of
from eventlog.engine.projectors import ProjectorSet
from eventlog.engine.reads import EventReader
from eventlog.engine.records import Records
from eventlog.engine.stream_index import Accepts, StreamIndex
from eventlog.engine.streams import OtherStreams
from eventlog.errors import ForkPointError
from eventlog.model.records import EventRecord, RunRecord, StreamRecord
from eventlog.storage.kv import KVTxn

__all__ = ["Forks"]


class Forks:
    """Create forks of runs and streams; their direct forks and their lineage."""

    def __init__(
        self,
        index: StreamIndex,
        reads: EventReader,
        records: Records,
        streams: OtherStreams,
        projectors: ProjectorSet,
    ) -> None:
        self.index = index
        self.reads = reads
        self.records = records
        self.streams = streams
        self.projectors = projectors

    def _base(self, txn: KVTxn, fork_id: UUID, parent_id: UUID, at_seq: int, kind: str) -> ForkBase:
        """The base of fork ``fork_id`` of ``parent_id`` at ``at_seq`` (``ForkPointError``)."""
        accepts: Accepts = "run" if kind == "run" else "session_or_stream"
        number = self.index.check_stream(txn, parent_id, accepts)
        head = self.index.last_seq(txn, number)
        if not 0 <= at_seq <= head:
            raise ForkPointError(parent_id, at_seq, head, kind=kind)
        return ForkBase(fork_id, parent_id, number, at_seq)

    def _link(self, txn: KVTxn, base: ForkBase) -> None:
        fork_id = base.fork_id
        number = self.index.stream_number(txn, fork_id)
        assert number is not None
        link_fork(txn, number, fork_id, base)
        if self.projectors and base.at_seq:
            prefix = self.reads.list_events(txn, fork_id, to_seq=base.at_seq, kind="any")
            self.projectors.apply_batch(txn, prefix)

    def fork_run(self, txn: KVTxn, record: RunRecord) -> RunRecord:
        """Create run ``record`` as a fork of ``record.parent_run_id`` at ``record.fork_seq``.

        The record names its parent and fork seq and is in the parent's session; the parent's
        events ``1..fork_seq`` become the fork's (shared) and are folded into its views.
        """
        assert record.parent_run_id is not None
        assert record.fork_seq is not None
        base = self._base(txn, record.id, record.parent_run_id, record.fork_seq, "run")
        created = self.records.create_run(txn, record)
        if created is record:  # not a repeated client_request_id
            self._link(txn, base)
        return created

    def fork_stream(
        self, txn: KVTxn, parent_id: UUID, at_seq: int, record: StreamRecord
    ) -> StreamRecord:
        """Create stream ``record`` as a fork of ``parent_id`` (a stream, or a session's).

        The fork is a stream of another kind (``record.kind``: the caller's choice, by
        default its parent's kind).
        """
        kind = self.index.stream_kind(txn, parent_id)
        base = self._base(txn, record.id, parent_id, at_seq, kind or "stream")
        self.streams.create_stream(txn, record)
        self._link(txn, base)
        return record

    def link(self, txn: KVTxn, fork_id: UUID, parent_id: UUID, at_seq: int) -> None:
        """Make the existing, empty stream ``fork_id`` a fork of ``parent_id`` (imports).

        Its record was created without a base; the parent must hold ``at_seq`` events.
        """
        found = self.index.stream_kind(txn, parent_id)
        base = self._base(txn, fork_id, parent_id, at_seq, "run" if found == "run" else "stream")
        self._link(txn, base)

    def own_events(self, txn: KVTxn, stream_id: UUID) -> list[EventRecord]:
        """The events of any stream that are its own: a fork's without its shared prefix."""
        number = self.index.check_stream(txn, stream_id, "any")
        found = parent_of(txn, number)
        after = 0 if found is None else found[1]
        return self.reads.list_events(txn, stream_id, after_seq=after, kind="any")

    def list_forks(self, txn: KVTxn, stream_id: UUID) -> list[tuple[UUID, int]]:
        """``(fork id, fork seq)`` of the stream's direct forks (see ``lineage.forks_of``)."""
        return forks_of(txn, stream_id)

    def lineage(self, txn: KVTxn, stream_id: UUID) -> list[tuple[UUID, int]]:
        """``(ancestor id, fork seq)`` from the stream's parent up to the root ([]: no fork).

        Each pair names an ancestor and the seq at which its child (the previous entry, or
        the stream itself for the first) forks it.
        """
        out: list[tuple[UUID, int]] = []
        number = self.index.stream_number(txn, stream_id)
        while number is not None:
            found = parent_of(txn, number)
            if found is None:
                break
            out.append(found)
            number = self.index.stream_number(txn, found[0])
        return out
