"""The contract of listing pages: the status index's covering values and their upgrade.

Mixed into :class:`eventlog.testing.StoreContract`; every backend runs it. A listing page is
read from the status index's values (each run's record as created) plus each run's state
(status and update time): the records it returns must equal ``get_run`` field for field, at
every filter and at the edges of the pages, and a store whose index predates those values
(version 1: ``b""``) must list correctly before and after it is rebuilt on open.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar
from uuid import uuid4

import pytest

from eventlog import RunStatus, RunStore
from eventlog.engine.projectors import ProjectorMeta, ProjectorSet, reader
from eventlog.model.events import ModelStarted, RunFailed, RunStarted, TextDelta
from eventlog.storage.kv import KVTxn

__all__ = ["ListingContract"]


class ListingContract:
    """Listing pages through the covering status index."""

    persistent: ClassVar[bool]

    def reopen(self, store: RunStore, path: Path, **options: object) -> RunStore:
        raise NotImplementedError

    @staticmethod
    def _mixed_runs(store: RunStore) -> None:
        """Seven runs in two sessions, in several statuses, with metadata and request ids."""
        s1, s2 = store.ensure_session(), store.ensure_session()
        for i in range(7):
            run = store.create_run(
                (s1, s2)[i % 2],
                provider="p",
                model="m",
                metadata={"i": i, "tags": ["a", "é"], "nested": {"x": None}},
                client_request_id=f"req-{i}" if i % 3 == 0 else None,
            )
            if i % 3 == 1:  # the state's provider moves on; the record's stays as created
                store.append_events(
                    run.id, [RunStarted(run.session_id, "other", "m2"), ModelStarted("p", "m", 1)]
                )
            elif i % 3 == 2:
                store.append_events(run.id, [TextDelta("x"), RunFailed("boom")])

    @staticmethod
    def _check_pages(store: RunStore) -> None:
        sessions = {r.session_id for r in store.list_runs_filtered()}
        for status in (None, *RunStatus):
            for session_id in (None, *sessions):
                every = store.list_runs_filtered(status=status, session_id=session_id)
                assert every == [store.get_run(r.id) for r in every]
                assert all(status in (None, r.status) for r in every)
                assert all(session_id in (None, r.session_id) for r in every)
                n = len(every)
                for limit, offset in ((1, 0), (2, n - 1), (n, 0), (n + 5, 0), (3, n), (1, n + 1)):
                    page = store.list_runs_filtered(
                        status=status, session_id=session_id, limit=limit, offset=max(offset, 0)
                    )
                    assert page == every[max(offset, 0) : max(offset, 0) + limit]
                for k, run in enumerate(every):  # keyset: the runs after each one, by 2
                    after = store.list_runs_filtered(
                        status=status, session_id=session_id, limit=2, after=run.id
                    )
                    assert after == every[k + 1 : k + 3]

    def test_keyset_pages_with_equal_creation_times(self, store: RunStore) -> None:
        # runs created in the same microsecond differ only by id: the keyset still walks
        # each exactly once, in the listing's order, and an unknown run starts nowhere
        sid = store.ensure_session()
        for _ in range(40):
            store.create_run(sid, provider="p", model="m")
        every = store.list_runs_filtered(limit=1000)
        walked, after = [], None
        while page := store.list_runs_filtered(limit=3, after=after):
            walked += page
            after = page[-1].id
        assert walked == every
        assert store.list_runs_filtered(after=uuid4()) == []
        assert store.list_runs_filtered(after=every[0].id, offset=2, limit=1) == [every[3]]

    def test_listed_runs_equal_get_run_at_every_filter_and_edge(self, store: RunStore) -> None:
        self._mixed_runs(store)
        listed = store.list_runs_filtered()
        assert len(listed) == 7
        assert {r.status for r in listed} == {
            RunStatus.PENDING,
            RunStatus.CALLING_MODEL,
            RunStatus.FAILED,
        }
        assert {r.provider for r in listed} == {"p"}  # as created, not the state's "other"
        assert sorted(r.client_request_id or "" for r in listed)[-3:] == ["req-0", "req-3", "req-6"]
        self._check_pages(store)

    def test_status_index_of_version_1_lists_then_is_upgraded_on_open(
        self, store: RunStore, store_path: Path
    ) -> None:
        self._mixed_runs(store)
        before = store.list_runs_filtered()

        def make_version_1(txn: KVTxn) -> None:  # the lists' values were b"" then
            tx = reader(txn, "status_index")
            for key in [k for k, _ in tx.scan() if k[:1] in (b"a", b"s", b"S", b"T")]:
                tx.put(key, b"")  # type: ignore[attr-defined]
            ProjectorSet.set_meta(txn, "status_index", ProjectorMeta(1, 0, True))

        store.core.backend.write(make_version_1)
        assert store.list_runs_filtered() == before  # read run by run meanwhile
        self._check_pages(store)
        if not self.persistent:
            pytest.skip("backend does not persist: nothing to reopen")
        store = self.reopen(store, store_path)
        try:
            status = {s.name: s for s in store.projector_status()}["status_index"]
            assert (status.version, status.ready) == (2, True)
            values = store.core.backend.read(
                lambda txn: [v for k, v in reader(txn, "status_index").scan(b"a")]
            )
            assert len(values) == 7
            assert all(v[:1] == b"\x89" for v in values)
            assert store.list_runs_filtered() == before
            self._check_pages(store)
            assert store.verify() == []
        finally:
            store.close()
