"""The status index's keyset pages over a reader with prefix scans only (no ``scan_from``).

The store's own reader seeks once (the contract suite checks that on every backend); a reader
of another kind (``store.projection("status_index")``, a scratch keyspace) takes the union of
prefix ranges. Both must give the runs after a run exactly as the full listing does.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from eventlog.engine.projectors import ScratchTx
from eventlog.model.records import RunRecord
from eventlog.model.status import RunStatus
from projections.status_index import StatusIndexProjector, StatusIndexQuery

BASE = datetime(2025, 1, 1, tzinfo=UTC)


@settings(max_examples=20, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5_000_000), st.uuids(version=4)),
        min_size=1,
        max_size=12,
        unique_by=lambda t: t[1],
    ),
    st.integers(1, 4),
)
def test_runs_after_each_run_match_the_full_listing(
    runs: list[tuple[int, UUID]], limit: int
) -> None:
    tx = ScratchTx()
    projector = StatusIndexProjector()
    sid = UUID(int=1)
    for micros, rid in runs:
        at = BASE + timedelta(microseconds=micros)
        projector.on_run_created(
            tx, RunRecord(rid, sid, RunStatus.PENDING, "p", "m", {}, None, at, at)
        )
    query = StatusIndexQuery(tx)
    assert not hasattr(tx, "scan_from")  # the prefix-scan path
    every = query.entries(None, None, 1000, 0)
    assert len(every) == len(runs)
    for k, (key, _) in enumerate(every):
        after = query.entries(None, None, limit, 0, UUID(bytes=key))
        assert after == every[k + 1 : k + 1 + limit]
        mine = query.entries(None, sid, limit, 0, UUID(bytes=key))
        assert mine == after  # the session's list: the same runs here
