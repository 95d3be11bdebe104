"""The subscription part of the backend contract (mixed into ``StoreContract``).

Subscriptions (catch-up, live delivery, filters, deleted runs, closing), persistent consumers
(acks, resume, listing) and async projectors (checkpoints, failures, rebuild, verify). Nothing
sleeps to wait for something: a :class:`Collector` thread iterates a subscription and the test
waits on its condition with a deadline.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import ClassVar

import pytest

from eventlog import (
    EventRecord,
    ProjectionTimeoutError,
    ProjectionTx,
    ProjectorFailedError,
    RunRecord,
    RunStore,
)
from eventlog.live.subscriptions import Subscription
from eventlog.model.events import RunCompleted, TextDelta, TokenUsage, UsageRecorded

__all__ = ["Collector", "SubscriptionsContract"]

DEADLINE = 20.0  # seconds: a hung subscription fails the test instead of blocking it


class Collector:
    """Iterate ``subscription`` in a thread; wait for what it has collected."""

    def __init__(self, subscription: Subscription) -> None:
        self.subscription = subscription
        self.records: list[EventRecord] = []
        self.error: BaseException | None = None
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for record in self.subscription:
                with self._cond:
                    self.records.append(record)
                    self._cond.notify_all()
        except BaseException as exc:  # reported by wait_for / stop
            self.error = exc
        finally:
            with self._cond:
                self._cond.notify_all()

    def wait_for(self, count: int) -> list[EventRecord]:
        """Wait until ``count`` records arrived; fail after the deadline."""
        with self._cond:
            done = self._cond.wait_for(
                lambda: len(self.records) >= count or self.error is not None, DEADLINE
            )
            if self.error is not None:
                raise self.error
            assert done, f"only {len(self.records)} of {count} records arrived"
            return list(self.records)

    def stop(self) -> list[EventRecord]:
        """Close the subscription, join the thread, return everything collected."""
        self.subscription.close()
        self._thread.join(DEADLINE)
        assert not self._thread.is_alive(), "the subscription did not stop after close()"
        if self.error is not None:
            raise self.error
        return list(self.records)


class Tally:
    """An async projector counting events and tokens per run (a view to compare)."""

    name: ClassVar[str] = "tally"
    version: ClassVar[int] = 1
    event_types: ClassVar[frozenset[str]] = frozenset()
    mode: ClassVar[str] = "async"

    def __init__(self, gate: threading.Event | None = None, fail_on: str | None = None) -> None:
        self.gate = gate
        self.fail_on = fail_on

    def apply(self, tx: ProjectionTx, record: EventRecord) -> None:
        if self.gate is not None:
            assert self.gate.wait(DEADLINE), "the test never opened the gate"
        event = record.event
        if isinstance(event, TextDelta) and event.delta == self.fail_on:
            raise RuntimeError(f"cannot index {self.fail_on!r}")
        key = record.run_id.bytes
        n, tokens = map(int, (tx.get(key) or b"0 0").split())
        if isinstance(record.event, UsageRecorded):
            tokens += record.event.usage.total_tokens
        tx.put(key, f"{n + 1} {tokens}".encode())


class InlineTally(Tally):
    """The same fold, inline: its view is what the async one must equal."""

    name = "tally_inline"
    mode = "inline"


class SubscriptionsContract:
    """Subscriptions, consumers and async projectors on one backend."""

    def make_store(self, path: Path, **options: object) -> RunStore:
        raise NotImplementedError

    @staticmethod
    def new_run(store: RunStore) -> RunRecord:
        return store.create_run(store.ensure_session(), provider="openai", model="gpt-4o")

    # -- subscriptions ---------------------------------------------------------------------
    def test_subscribe_catches_up_then_delivers_live(self, store: RunStore) -> None:
        run = self.new_run(store)
        first = store.append_events(run.id, [TextDelta(str(i)) for i in range(5)])
        collector = Collector(store.subscribe(batch_size=2))
        assert [r.position for r in collector.wait_for(5)] == [r.position for r in first]
        live = [store.append_event(run.id, TextDelta(f"live {i}")) for i in range(3)]
        got = collector.wait_for(8)
        assert got == first + live
        assert collector.stop() == first + live

    def test_subscriber_sees_concurrent_writers_once_in_order(self, store: RunStore) -> None:
        runs = [self.new_run(store) for _ in range(4)]
        base = store.last_position()
        collector = Collector(store.subscribe(after_position=base, batch_size=7))

        def write(run: RunRecord) -> None:  # threads: their appends share group commits
            for i in range(25):
                store.append_events(run.id, [TextDelta(f"{i}a"), TextDelta(f"{i}b")])

        threads = [threading.Thread(target=write, args=(r,)) for r in runs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(DEADLINE)
        got = collector.wait_for(200)
        assert got == store.read_log(after_position=base)
        assert [r.position for r in got] == list(range(base + 1, base + 201))
        assert collector.stop() == got

    def test_subscribe_filters_keep_log_order(self, store: RunStore) -> None:
        a, b = self.new_run(store), self.new_run(store)
        for i in range(4):
            store.append_event(a.id, TextDelta(f"a{i}"))
            store.append_event(b.id, UsageRecorded(TokenUsage(1, 1, 2)))
        store.append_event(a.id, UsageRecorded(TokenUsage(1, 1, 2)))
        log = store.read_log()
        only_a = list(store.subscribe(run_id=a.id, timeout=0, batch_size=3))
        assert only_a == [r for r in log if r.run_id == a.id]
        usage = list(store.subscribe(event_types={"UsageRecorded"}, timeout=0))
        assert usage == [r for r in log if r.type == "UsageRecorded"]
        both = list(store.subscribe(run_id=str(a.id), event_types=["UsageRecorded"], timeout=0))
        assert both == [log[-1]]

    def test_subscribe_after_position(self, store: RunStore) -> None:
        run = self.new_run(store)
        records = store.append_events(run.id, [TextDelta(str(i)) for i in range(6)])
        got = list(store.subscribe(after_position=records[2].position, timeout=0))
        assert got == records[3:]

    def test_subscribe_skips_deleted_runs(self, store: RunStore) -> None:
        keep, gone = self.new_run(store), self.new_run(store)
        for i in range(3):
            store.append_event(keep.id, TextDelta(f"k{i}"))
            store.append_event(gone.id, TextDelta(f"g{i}"))
        store.delete_run(gone.id)  # its positions, the log's last one included, are absent
        collector = Collector(store.subscribe())
        kept = collector.wait_for(3)
        assert [r.run_id for r in kept] == [keep.id] * 3
        after = store.append_event(keep.id, TextDelta("after"))
        assert collector.wait_for(4)[-1] == after
        positions = [r.position for r in collector.stop()]
        assert positions == sorted(set(positions))

    def test_timeout_and_close_end_the_iteration(self, store: RunStore) -> None:
        assert list(store.subscribe(timeout=0.01)) == []
        sub = store.subscribe()
        collector = Collector(sub)
        assert collector.stop() == []
        assert list(sub) == []  # a closed subscription stays closed

    def test_closing_the_store_ends_subscriptions(self, store_path: Path) -> None:
        store = self.make_store(store_path)
        collector = Collector(store.subscribe())
        store.close()
        assert collector.stop() == []

    def test_bad_subscribe_arguments(self, store: RunStore) -> None:
        with pytest.raises(ValueError, match="after_position"):
            store.subscribe(after_position=-1)
        with pytest.raises(TypeError, match="event_types"):
            store.subscribe(event_types="TextDelta")
        with pytest.raises(ValueError, match="batch_size"):
            store.subscribe(batch_size=0)
        with pytest.raises(ValueError, match="ack"):
            store.subscribe(name="x", ack="sometimes")  # type: ignore[arg-type]
        for bad in ("", "-x", "a b", "x" * 101, "é"):
            with pytest.raises(ValueError, match="consumer name"):
                store.subscribe(name=bad)

    def test_async_iteration(self, store: RunStore) -> None:
        run = self.new_run(store)
        first = store.append_event(run.id, TextDelta("before"))

        async def main() -> tuple[list[EventRecord], EventRecord]:
            got: list[EventRecord] = []
            appending: asyncio.Task[EventRecord] | None = None
            async with store.subscribe(timeout=DEADLINE) as sub:
                async for record in sub:
                    got.append(record)
                    if len(got) == 1:  # appended by a thread while the loop iterates on
                        append = asyncio.to_thread(store.append_event, run.id, TextDelta("live"))
                        appending = asyncio.create_task(append)
                    if len(got) == 2:
                        break
            assert appending is not None
            return got, await appending

        got, live = asyncio.run(main())
        assert got == [first, live]

    # -- persistent consumers ----------------------------------------------------------------
    def test_consumer_auto_ack_resumes_after_the_last_batch(self, store: RunStore) -> None:
        run = self.new_run(store)
        records = store.append_events(run.id, [TextDelta(str(i)) for i in range(10)])
        sub = store.subscribe(name="indexer", batch_size=4, timeout=0)
        got = [next(sub) for _ in range(6)]  # two batches asked for: the first is acked
        assert got == records[:6]
        assert sub.acked == records[3].position
        sub.close()  # a crash-like stop: nothing more is acked
        [info] = store.consumers()
        assert (info.name, info.position) == ("indexer", records[3].position)
        assert info.lag == records[-1].position - records[3].position
        with store.subscribe(name="indexer", batch_size=4, timeout=0) as again:
            rest = list(again)
        assert rest == records[4:]  # the unacked batch is redelivered, nothing else
        [info] = store.consumers()
        assert (info.position, info.lag) == (records[-1].position, 0)

    def test_consumer_manual_ack(self, store: RunStore) -> None:
        run = self.new_run(store)
        records = store.append_events(run.id, [TextDelta(str(i)) for i in range(5)])
        with store.subscribe(name="manual", ack="manual", timeout=0) as sub:
            got = [next(sub), next(sub)]
            with pytest.raises(ValueError, match="only positions up to"):
                sub.ack(records[3].position)
            sub.ack(got[1].position)
            with pytest.raises(ValueError, match="only move forward"):
                sub.ack(got[0].position)
            assert list(sub) == records[2:]
        assert store.consumers()[0].position == got[1].position  # manual: nothing else acked
        again = store.subscribe(name="manual", ack="manual", timeout=0)
        assert list(again) == records[2:]
        again.ack()
        assert store.consumers()[0].position == records[-1].position

    def test_consumer_position_survives_and_can_be_deleted(self, store: RunStore) -> None:
        run = self.new_run(store)
        store.append_events(run.id, [TextDelta("a"), TextDelta("b")])
        with store.subscribe(name="first", timeout=0) as sub:
            assert len(list(sub)) == 2
        store.subscribe(name="second", after_position=1).close()
        assert [(c.name, c.position) for c in store.consumers()] == [("first", 2), ("second", 1)]
        assert store.delete_consumer("second") is True
        assert store.delete_consumer("second") is False
        assert [c.name for c in store.consumers()] == ["first"]
        unnamed = store.subscribe(timeout=0)
        with pytest.raises(ValueError, match="name="):
            unnamed.ack()

    def test_two_subscriptions_of_one_consumer_never_move_it_back(self, store: RunStore) -> None:
        run = self.new_run(store)
        store.append_events(run.id, [TextDelta(str(i)) for i in range(4)])
        fast = store.subscribe(name="twin", ack="manual", timeout=0)
        slow = store.subscribe(name="twin", ack="manual", timeout=0)
        assert len(list(fast)) == 4
        fast.ack()
        next(slow)
        with pytest.raises(ValueError, match="another subscription"):
            slow.ack()
        assert store.consumers()[0].position == 4

    # -- async projectors --------------------------------------------------------------------
    def test_async_projector_catches_up_and_equals_an_inline_fold(self, store_path: Path) -> None:
        with self.make_store(store_path, projectors=[Tally(), InlineTally()]) as store:
            run = self.new_run(store)
            for i in range(20):
                store.append_event(run.id, TextDelta(str(i)))
            store.append_event(run.id, UsageRecorded(TokenUsage(5, 5, 10)))
            store.append_event(run.id, RunCompleted("stop", 1))
            store.wait_for_projections(timeout=DEADLINE)
            tally = store.projection("tally")
            assert tally.get(run.id.bytes) == b"22 10"
            assert dict(tally.scan()) == dict(store.projection("tally_inline").scan())
            status = {p.name: p for p in store.projector_status()}
            assert status["tally"].mode == "async"
            assert status["tally"].checkpoint == store.last_position()
            assert status["tally"].error is None
            assert store.verify() == []

    def test_async_projector_rebuild(self, store_path: Path) -> None:
        with self.make_store(store_path, projectors=[Tally()]) as store:
            run = self.new_run(store)
            store.append_events(run.id, [TextDelta("a"), TextDelta("b")])
            store.wait_for_projections(timeout=DEADLINE)
            store.rebuild_projections(["tally"])
            store.wait_for_projections(timeout=DEADLINE)
            assert store.projection("tally").get(run.id.bytes) == b"2 0"
            assert store.verify() == []

    def test_async_projector_failure_is_reported_not_fatal(self, store_path: Path) -> None:
        with self.make_store(store_path, projectors=[Tally(fail_on="boom")]) as store:
            run = self.new_run(store)
            ok = store.append_event(run.id, TextDelta("fine"))
            store.wait_for_projections(timeout=DEADLINE)
            bad = store.append_event(run.id, TextDelta("boom"))  # the writer never notices
            with pytest.raises(ProjectorFailedError, match="cannot index") as info:
                store.wait_for_projections(timeout=DEADLINE)
            assert info.value.projector == "tally"
            assert info.value.checkpoint == ok.position
            after = store.append_event(run.id, TextDelta("after"))
            assert after.seq == 3
            [status] = [p for p in store.projector_status() if p.name == "tally"]
            assert status.checkpoint == ok.position
            assert status.error is not None
            assert f"position {bad.position}" in status.error
            assert [p.kind for p in store.verify()] == ["projector_failed"]
            assert store.projection("tally").get(run.id.bytes) == b"1 0"  # nothing skipped

    def test_wait_for_projections_times_out(self, store_path: Path) -> None:
        gate = threading.Event()
        with self.make_store(store_path, projectors=[Tally(gate=gate)]) as store:
            if store.path is None:  # memory: one lock, which the blocked projector would hold
                pytest.skip("the backend's readers wait for a running transaction")
            run = self.new_run(store)
            store.append_event(run.id, TextDelta("x"))
            with pytest.raises(ProjectionTimeoutError, match="tally at 0") as info:
                store.wait_for_projections(timeout=0.05)
            assert isinstance(info.value, TimeoutError)
            gate.set()
            store.wait_for_projections(timeout=DEADLINE)

    def test_async_projector_with_hooks_is_refused(self, store_path: Path) -> None:
        class Hooked(Tally):
            def on_run_created(self, tx: ProjectionTx, run: RunRecord) -> None:
                tx.put(run.id.bytes, b"0 0")

        with pytest.raises(ValueError, match="on_run_created"):
            self.make_store(store_path, projectors=[Hooked()])
