"""``verify``'s lineage checks: every fork's parent exists and has its prefix, the index agrees.

Each fork base (:mod:`eventlog.engine.lineage`) must name a stream that exists and a parent
that exists with at least ``fork_seq`` events; the parent's forks index must hold the same
entry and nothing else; a run record that names a parent must be a fork of it at its
``fork_seq``.
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from eventlog.engine.core import Engine
from eventlog.engine.lineage import iter_fork_bases
from eventlog.storage.keys import pack_u64, prefix_end, unpack_u64
from eventlog.storage.kv import KVTxn

__all__ = ["check_lineage"]

#: what ``verify`` collects: (kind, where, detail, stream id)
Report = Callable[[str, UUID, str], None]


def check_lineage(engine: Engine, txn: KVTxn, report: Report) -> None:
    """Call ``report(where, stream id, detail)`` for each lineage inconsistency."""
    index = engine.index
    bases: dict[UUID, tuple[UUID, int]] = {}
    for number, base in iter_fork_bases(txn):
        fork = base.fork_id
        bases[fork] = (base.parent_id, base.at_seq)
        if index.stream_of(txn, number) != fork:
            report(f"fork {fork}", fork, f"stream {unpack_u64(number)} is not this fork")
        if index.stream_number(txn, base.parent_id) != base.parent_number:
            report(f"fork {fork}", fork, f"its parent {base.parent_id} does not exist")
        elif index.last_seq(txn, base.parent_number) < base.at_seq:
            head = index.last_seq(txn, base.parent_number)
            report(
                f"fork {fork}",
                fork,
                f"forks {base.parent_id} at seq {base.at_seq} but its head is {head}",
            )
        entry = txn.get("forks", b"c" + base.parent_id.bytes + fork.bytes)
        if entry != pack_u64(base.at_seq):
            report(f"fork {fork}", fork, f"missing from the forks index of {base.parent_id}")
    for key, value in txn.scan("forks", b"c", prefix_end(b"c")):
        parent, fork = UUID(bytes=key[1:17]), UUID(bytes=key[17:33])
        if bases.get(fork) != (parent, unpack_u64(value)):
            report(f"fork {fork}", fork, f"indexed as a fork of {parent} but is none")
    for run in engine.records.iter_runs(txn):
        named = None if run.parent_run_id is None else (run.parent_run_id, run.fork_seq)
        if named != bases.get(run.id):
            report(
                f"run {run.id}",
                run.id,
                f"its record names parent {named}, the log says {bases.get(run.id)}",
            )
