"""Every rule of the log, written once against :class:`eventlog.storage.kv.KVTxn`.

The store's plans (:mod:`eventlog.store.plans`) open one transaction and call the engine's
parts, which do the work inside it (eventsourcing's ``method`` / ``_method(txn)`` split). The
:class:`Engine` owns one object per concern, each given its collaborators when it is built:

- ``index`` (:class:`~eventlog.engine.stream_index.StreamIndex`): stream numbers, kinds, heads,
  new and deleted streams, the log's last position;
- ``reads`` (:class:`~eventlog.engine.reads.EventReader`): events by stream and seq, the log by
  position, payload views;
- ``appends`` (:class:`~eventlog.engine.appends.Appender`): the single write step for events -
  one :class:`~eventlog.engine.appends.AppendRequest` applied in the caller's transaction, so a
  multi-run append (and group commit) is a loop over requests inside one transaction;
- ``records`` (:class:`~eventlog.engine.records.Records`): sessions and runs, idempotent
  creates, cascading deletes;
- ``streams`` (:class:`~eventlog.engine.streams.OtherStreams`): streams of other kinds;
- ``targets`` (:class:`~eventlog.engine.targets.StreamTargets`): the stream a request names
  by kind, checked or created on its first append (``expected_seq=0``);
- ``projectors`` (:class:`~eventlog.engine.projectors.ProjectorSet`): everything derived from
  events - run state, status index, session listing, executions - the built-ins included; the
  engine names none of them;
- ``forks`` (:class:`~eventlog.engine.forks.Forks`): forks of runs and streams (their
  shared prefix, lineage; :func:`eventlog.engine.lineage.forks_of` says which forks read a
  stream);
- ``replayer`` (:class:`~eventlog.engine.rebuild.Replayer`): the records and the log fed to
  projectors in one pass (rebuilds, ``verify``).

The engine itself stamps and checks the store format and rebuilds projectors from the log.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from uuid import UUID

from eventlog.engine.appends import Appender
from eventlog.engine.forks import Forks
from eventlog.engine.projectors import ProjectionTxn, ProjectorMeta, ProjectorSet, is_async
from eventlog.engine.protocols import ProjectionTx, Projector
from eventlog.engine.reads import EventReader
from eventlog.engine.rebuild import Replayer
from eventlog.engine.records import Records
from eventlog.engine.stream_index import StreamIndex
from eventlog.engine.streams import OtherStreams
from eventlog.engine.targets import StreamTargets
from eventlog.errors import InvalidTransition, StoreError
from eventlog.log import get_logger
from eventlog.model.records import EventRecord
from eventlog.storage.keys import (
    COPY_MARKER_KEY,
    FORMAT_KEY,
    FORMAT_VERSION,
    pack_u64,
    unpack_u64,
)
from eventlog.storage.kv import KVTxn

__all__ = ["Engine"]

log = get_logger("eventlog.engine")

_NO_STREAM = UUID(int=0)


class Engine:
    """The store's rules over one transaction at a time (see the module docstring)."""

    def __init__(self, projectors: Sequence[Projector] = ()) -> None:
        self.projectors = ProjectorSet(projectors)
        self.index = StreamIndex()
        self.reads = EventReader(self.index)
        self.records = Records(self.index, self.projectors)
        self.streams = OtherStreams(self.index, self.projectors)
        self.targets = StreamTargets(self.index, self.streams)
        self.appends = Appender(self.index, self.reads, self.projectors, self.targets)
        self.forks = Forks(self.index, self.reads, self.records, self.streams, self.projectors)
        self.replayer = Replayer(self.reads, self.records, self.streams)

    # -- store format ----------------------------------------------------------------------
    def init_store(self, txn: KVTxn) -> None:
        """Stamp a new store with the format version; refuse a store of a newer format."""
        if txn.get("meta", FORMAT_KEY) is None and txn.get("meta", COPY_MARKER_KEY) is None:
            txn.put("meta", FORMAT_KEY, pack_u64(FORMAT_VERSION))
        self.check_format(txn)

    def check_format(self, txn: KVTxn) -> None:
        """Refuse a store written in a newer format than this code knows."""
        if txn.get("meta", COPY_MARKER_KEY) is not None:
            raise StoreError(
                "this store is an incomplete copy (`eventlog copy` did not finish); delete it "
                "and copy again"
            )
        raw = txn.get("meta", FORMAT_KEY)
        if raw is None:
            raise StoreError("not an eventlog store (no format stamp); check the path")
        found = unpack_u64(raw)
        if found > FORMAT_VERSION:
            raise StoreError(
                f"the store uses format {found}, newer than this eventlog supports "
                f"({FORMAT_VERSION}); upgrade eventlog"
            )
        if found < FORMAT_VERSION:
            raise StoreError(
                f"the store uses format {found}, older than this eventlog's ({FORMAT_VERSION}); "
                "export it with the eventlog version that wrote it (`eventlog export --all`) "
                "and import the file into a new store"
            )

    # -- projectors ------------------------------------------------------------------------
    def rebuild(
        self,
        txn: KVTxn,
        names: Sequence[str],
        progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        """Rebuild projectors ``names`` from the stored sessions, runs and the whole log.

        Every inline projector named is fed in one pass over the records and the log
        (:class:`~eventlog.engine.rebuild.Replayer`) as if its view were empty; the result is
        written back as the difference from the old view (a key not rebuilt is deleted). An
        async projector is reset instead (its view cleared, checkpoint 0): its thread catches
        up from the log in batches, without holding this transaction. A stored event that
        breaks the lifecycle rule (``InvalidTransition``: a terminal run moved on, which an
        append refuses) is logged and left out of the views that refuse it, so the rebuild
        completes; ``store.verify()`` reports it as ``invalid_transition``.
        """
        chosen = self.projectors.subset(names)
        last = self.index.last_position(txn)
        targets: list[tuple[Projector, ProjectionTx]] = []
        for projector in chosen.all:
            tx = ProjectionTxn(txn, projector.name)
            if is_async(projector):
                tx.clear()
                chosen.set_meta(txn, projector.name, ProjectorMeta(projector.version, 0, True))
                if progress is not None:
                    progress(projector.name, 0, last)
                continue
            targets.append((projector, tx))
        # not cleared first: the replay treats each view as empty and writes back the difference
        self.replayer.replay(txn, targets, progress, last, on_refused=_log_refused, fresh=True)
        for projector, _ in targets:
            chosen.set_meta(txn, projector.name, ProjectorMeta(projector.version, last, True))

    def replay_into(
        self,
        txn: KVTxn,
        projector: Projector,
        tx: ProjectionTx,
        progress: Callable[[str, int, int], None] | None,
        last: int,
        on_bad: Callable[[UUID, int, Exception], None] | None = None,
        to_position: int | None = None,
        on_refused: Callable[[str, EventRecord, InvalidTransition], None] | None = None,
    ) -> None:
        """Feed ``projector`` (writing through ``tx``) every session, run and logged event.

        See :meth:`eventlog.engine.rebuild.Replayer.replay` for ``on_bad``, ``to_position``
        and ``on_refused``.
        """
        self.replayer.replay(
            txn,
            [(projector, tx)],
            progress,
            last,
            on_bad=on_bad,
            to_position=to_position,
            on_refused=on_refused,
        )


def _log_refused(name: str, record: EventRecord, exc: InvalidTransition) -> None:
    log.warning(
        "stored_event_refused",
        projector=name,
        run_id=str(record.run_id),
        seq=record.seq,
        error=str(exc),
        advice="run store.verify() to list such events",
    )
