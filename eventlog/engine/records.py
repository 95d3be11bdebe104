"""Sessions and runs: their records, the session → runs index, idempotent creates, deletes.

A session owns a stream (its messages) and runs; a run owns a stream (its events). Creating
either gives it a stream number (:class:`~eventlog.engine.stream_index.StreamIndex`) and calls
the projectors' lifecycle hooks in the same transaction; deleting a session deletes its runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

from eventlog.engine.lineage import forks_of
from eventlog.engine.projectors import ProjectorSet
from eventlog.engine.stream_index import StreamIndex
from eventlog.errors import AlreadyExistsError, RunHasForks, SessionNotFound, StreamHasForks
from eventlog.model.records import RunRecord, Session
from eventlog.storage.codec import RUN_RECORD, SESSION
from eventlog.storage.keys import MAX_KEY, prefix_end
from eventlog.storage.kv import KVTxn

__all__ = ["Records"]


class Records:
    """Sessions and runs: create, read, list and delete them inside the caller's transaction."""

    def __init__(self, index: StreamIndex, projectors: ProjectorSet) -> None:
        self.index = index
        self.projectors = projectors

    # -- sessions --------------------------------------------------------------------------
    def create_session(self, txn: KVTxn, session: Session) -> Session:
        """Store ``session`` and its stream (``AlreadyExistsError`` if the id is taken)."""
        key = session.id.bytes
        if txn.get("sessions", key) is not None:
            raise AlreadyExistsError(
                f"session {session.id} already exists; omit session_id to get a new one"
            )
        txn.put("sessions", key, SESSION.encode(session))
        self.index.new_stream(txn, session.id, "session")
        self.projectors.hook(txn, "on_session_created", session)
        return session

    def get_session(self, txn: KVTxn, session_id: UUID) -> Session | None:
        """The session record as created (None: no such session)."""
        raw = txn.get("sessions", session_id.bytes)
        return None if raw is None else SESSION.decode(raw, "session", session_id)

    def session_run_ids(self, txn: KVTxn, session_id: UUID) -> list[UUID]:
        """The ids of the session's runs (in id order)."""
        sid = session_id.bytes
        return [UUID(bytes=k[16:]) for k, _ in txn.scan("session_runs", sid, prefix_end(sid))]

    def delete_session(self, txn: KVTxn, session_id: UUID) -> bool:
        """Delete the session, its runs and its messages (one transaction, idempotent)."""
        session = self.get_session(txn, session_id)
        if session is None:
            return False
        forks = forks_of(txn, session_id)  # streams forked from its messages
        if forks:
            raise StreamHasForks(session_id, [f for f, _ in forks], kind="session")
        # forks live in their parent's session and are created after it: newest stream first
        runs = self.session_run_ids(txn, session_id)
        numbers = {rid: self.index.stream_number(txn, rid) or b"" for rid in runs}
        for run_id in sorted(runs, key=numbers.__getitem__, reverse=True):
            self.delete_run(txn, run_id)
        self.index.delete_stream(txn, session_id)
        self.projectors.hook(txn, "on_session_deleted", session)
        txn.discard("sessions", session_id.bytes)
        return True

    def iter_sessions(self, txn: KVTxn) -> Iterator[Session]:
        """Every session record, in id order (rebuilds, exports)."""
        for key, raw in txn.scan("sessions", b""):
            yield SESSION.decode(raw, "session", UUID(bytes=key))

    # -- runs ------------------------------------------------------------------------------
    def create_run(self, txn: KVTxn, record: RunRecord) -> RunRecord:
        """Store the run and its stream; a repeated ``client_request_id`` returns the first."""
        if txn.get("sessions", record.session_id.bytes) is None:
            raise SessionNotFound(record.session_id)
        creq_key = None
        if record.client_request_id is not None:
            creq_key = record.session_id.bytes + record.client_request_id.encode()
            if len(creq_key) > MAX_KEY:
                raise ValueError("client_request_id is too long (max 400 bytes)")
            existing = txn.get("client_requests", creq_key)
            if existing is not None:  # an idempotent retry of the same create
                found = self.get_run(txn, UUID(bytes=existing))
                if found is not None:
                    return found
        if txn.get("runs", record.id.bytes) is not None:
            raise AlreadyExistsError(
                f"run {record.id} already exists; omit run_id to get a new one"
            )
        txn.put("runs", record.id.bytes, RUN_RECORD.encode(record))
        self.index.new_stream(txn, record.id, "run")
        txn.put("session_runs", record.session_id.bytes + record.id.bytes, b"")
        if creq_key is not None:
            txn.put("client_requests", creq_key, record.id.bytes)
        self.projectors.hook(txn, "on_run_created", record)
        return record

    def get_run(self, txn: KVTxn, run_id: UUID) -> RunRecord | None:
        """The run record as created (status ``pending``); the facade adds the current status."""
        raw = txn.get("runs", run_id.bytes)
        return None if raw is None else RUN_RECORD.decode(raw, "run", run_id, "record")

    def delete_run(
        self, txn: KVTxn, run_id: UUID, removed: list[tuple[int, int]] | None = None
    ) -> bool:
        """Delete the run with its events, idempotency keys and views; True if it existed.

        ``removed``: see :meth:`~eventlog.engine.stream_index.StreamIndex.delete_stream`.

        ``RunHasForks`` when forks still read its events (delete them first).
        """
        record = self.get_run(txn, run_id)
        if record is None:
            return False
        forks = forks_of(txn, run_id)
        if forks:
            raise RunHasForks(run_id, [f for f, _ in forks])
        rid = run_id.bytes
        self.index.delete_stream(txn, run_id, removed)
        if record.client_request_id is not None:
            txn.discard(
                "client_requests", record.session_id.bytes + record.client_request_id.encode()
            )
        txn.discard("session_runs", record.session_id.bytes + rid)
        self.projectors.hook(txn, "on_run_deleted", record)
        txn.discard("runs", rid)
        return True

    def iter_runs(self, txn: KVTxn) -> Iterator[RunRecord]:
        """Every run record as created, in id order (rebuilds, exports)."""
        for key, raw in txn.scan("runs", b""):
            yield RUN_RECORD.decode(raw, "run", UUID(bytes=key), "record")

    # -- ids by prefix ---------------------------------------------------------------------
    def find_ids(self, txn: KVTxn, table: str, hex_prefix: str, limit: int) -> list[UUID]:
        """Ids in ``table`` (``runs`` or ``sessions``) whose hex form starts with ``hex_prefix``."""
        want = hex_prefix.replace("-", "").lower()
        start = bytes.fromhex(want + "0" * (len(want) % 2))
        out: list[UUID] = []
        for key, _ in txn.scan(table, start):
            if not key.hex().startswith(want):
                break
            out.append(UUID(bytes=key))
            if len(out) >= limit:
                break
        return out
