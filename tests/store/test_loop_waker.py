"""LoopWaker: the committing thread wakes an event loop's writers, one loop call per batch."""

from __future__ import annotations

import asyncio
import threading

import pytest

from eventlog.store.group_commit import LoopWaker, loop_waker


def test_wakes_from_another_thread_resolve_every_future_in_one_loop_pass() -> None:
    loop = asyncio.new_event_loop()
    try:
        waker = LoopWaker(loop)
        futures = [loop.create_future() for _ in range(5)]
        wakers = [threading.Thread(target=waker.wake, args=(f,)) for f in futures]
        for th in wakers:
            th.start()
        for th in wakers:
            th.join()
        assert not any(f.done() for f in futures)  # nothing runs until the loop does
        loop.run_until_complete(asyncio.sleep(0))  # one pass: the one scheduled drain
        assert [f.result() for f in futures] == [None] * 5  # each one resolved
    finally:
        loop.close()


def test_a_cancelled_future_stays_cancelled() -> None:
    loop = asyncio.new_event_loop()
    try:
        waker = LoopWaker(loop)
        cancelled, kept = loop.create_future(), loop.create_future()
        cancelled.cancel()
        waker.wake(cancelled)
        waker.wake(kept)
        loop.run_until_complete(asyncio.sleep(0))
        assert cancelled.cancelled()
        assert kept.done()
        assert not kept.cancelled()
    finally:
        loop.close()


def test_a_closed_loop_raises_and_the_waker_does_not_stay_stuck() -> None:
    loop = asyncio.new_event_loop()
    waker = LoopWaker(loop)
    future = loop.create_future()
    loop.close()
    with pytest.raises(RuntimeError):
        waker.wake(future)
    with pytest.raises(RuntimeError):  # still tries (not left "scheduled" forever)
        waker.wake(future)


def test_one_waker_per_loop() -> None:
    loop, other = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        assert loop_waker(loop) is loop_waker(loop)
        assert loop_waker(loop) is not loop_waker(other)
    finally:
        loop.close()
        other.close()
