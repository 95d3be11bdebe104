"""PostgreSQL reads by the page: how many statements a read call sends, on a real server.

``read_log``, a subscription's catch-up batch, ``list_events``, ``read_stream`` and
``read_stream_view`` read a page in ONE statement (no ``BEGIN``/``ROLLBACK``: one autocommit
statement is one snapshot); a stream's head in one. The count is taken by wrapping
``psycopg.Cursor.execute`` (every statement of the backend goes through it, ``Connection.execute``
too) for the calling thread only; the server answers every statement for real.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import UUID

import msgspec
import pytest
from pg_support import statements, url_for

from eventlog import RunNotFound, RunStore
from eventlog.events import TextDelta

pytestmark = pytest.mark.usefixtures("pg_schemas")


def count(call: Callable[[], object]) -> tuple[int, object]:
    with statements() as sent:
        result = call()
    return len(sent), result


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunStore]:
    with RunStore.open(url_for(tmp_path / "store"), durability="fast") as s:
        yield s


def fill(store: RunStore, runs: int, events: int) -> list[UUID]:
    """``runs`` runs of ``events`` events each, interleaved in the log; their ids."""
    sid = store.create_session().id
    ids = [store.create_run(sid, provider="p", model="m").id for _ in range(runs)]
    for k in range(0, events, 50):
        for rid in ids:
            store.append_events(rid, [TextDelta(f"{k + i}") for i in range(50)])
    return ids


def test_read_log_reads_a_page_of_1000_in_one_statement(store: RunStore) -> None:
    ids = fill(store, 4, 300)
    n, page = count(lambda: store.read_log(limit=1000))
    assert n == 1
    assert isinstance(page, list)
    assert [r.position for r in page] == list(range(1, 1001))
    assert {r.run_id for r in page} == set(ids)
    # the same events as read one by one in a snapshot of their own streams
    every = {(r.run_id, r.seq): r for rid in ids for r in store.list_events(rid)}
    assert all(every[(r.run_id, r.seq)] == r for r in page)
    n, rest = count(lambda: store.read_log(after_position=1000, limit=1000))
    assert n == 1
    assert [r.position for r in rest] == list(range(1001, 1201))  # type: ignore[attr-defined]


def test_read_log_skips_deleted_runs_and_reads_past_a_page(store: RunStore) -> None:
    ids = fill(store, 3, 500)
    store.delete_run(ids[1])
    expected = [r for rid in (ids[0], ids[2]) for r in store.list_events(rid)]
    expected.sort(key=lambda r: r.position)
    assert store.read_log() == expected  # 1,000 events over 1,500 positions: several pages
    n, page = count(lambda: store.read_log(after_position=10, limit=100))
    assert page == [r for r in expected if r.position > 10][:100]
    assert n <= 4  # a page with tombstones may take another: then in one snapshot


def test_subscription_catch_up_reads_a_batch_in_one_statement(store: RunStore) -> None:
    ids = fill(store, 2, 300)
    with store.subscribe(batch_size=500, timeout=0) as sub:
        n, first = count(lambda: next(iter(sub)))
        assert n == 1
        assert first.position == 1  # type: ignore[attr-defined]
        got = [first, *sub]
    assert [r.position for r in got] == list(range(1, 601))
    with store.subscribe(run_id=ids[1], batch_size=600, timeout=0) as sub:
        n, first = count(lambda: next(iter(sub)))
        assert n == 1
        assert [first, *sub] == store.list_events(ids[1])


def test_a_stream_page_is_one_statement(store: RunStore) -> None:
    rid = fill(store, 2, 300)[0]
    n, events = count(lambda: store.list_events(rid))
    assert (n, [r.seq for r in events]) == (1, list(range(1, 301)))  # type: ignore[attr-defined]
    n, events = count(lambda: store.list_events(rid, after_seq=10, to_seq=60, limit=20))
    assert (n, [r.seq for r in events]) == (1, list(range(11, 31)))  # type: ignore[attr-defined]
    n, events = count(lambda: store.read_stream(rid, after_seq=250))
    assert (n, [r.seq for r in events]) == (1, list(range(251, 301)))  # type: ignore[attr-defined]

    class Delta(msgspec.Struct):
        delta: str

    n, views = count(lambda: store.read_stream_view(rid, Delta, after_seq=5, limit=3))
    expected = [(seq, "TextDelta", Delta(str(seq - 1))) for seq in (6, 7, 8)]
    assert (n, views) == (1, expected)


def test_a_streams_head_is_one_statement(store: RunStore) -> None:
    rid = fill(store, 2, 100)[1]
    last = store.list_events(rid)[-1]
    assert count(lambda: store.read_stream(rid, reverse=True, limit=1)) == (1, [last])
    assert count(lambda: store.last_events(1, run_id=rid)) == (1, [last])
    tail = store.list_events(rid)[-5:]
    assert count(lambda: store.read_stream(rid, reverse=True, limit=5)) == (1, tail[::-1])


def test_a_missing_stream_is_still_one_statement_and_a_typed_error(store: RunStore) -> None:
    fill(store, 1, 50)
    missing = UUID(int=7)
    with statements() as sent, pytest.raises(RunNotFound):
        store.list_events(missing)
    assert len(sent) == 1
    session = store.create_session().id
    with pytest.raises(RunNotFound):  # a session is not a run
        store.list_events(session)


def test_a_read_that_needs_more_than_one_page_runs_in_one_snapshot(store: RunStore) -> None:
    fill(store, 1, 2500)
    with statements() as sent:
        events = store.read_log()
    assert [r.position for r in events] == list(range(1, 2501))
    begins = [s for s in sent if s.startswith(b"BEGIN")]
    assert len(begins) == 1, sent  # the pages after the first are read in a snapshot
