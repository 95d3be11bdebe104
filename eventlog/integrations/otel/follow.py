"""The live exporter: a persistent consumer that ships every run as it finishes.

:func:`follow` subscribes to the log as a named consumer (``store.subscribe(name=...)``) and
waits for the events that end a run (``RunCompleted``, ``RunFailed``, ``RunCancelled``, a
``RunStatusChanged`` to a terminal status). For each, it reads the whole run, hands its spans
to ``deliver`` and only then acknowledges the event's position. After a crash (or a receiver
outage that made it stop) the next ``follow`` with the same name resumes after the last
acknowledged run: nothing is lost. A run delivered but not yet acknowledged when the process
died is delivered again with the same trace and span ids (they derive from the run id and
seq), so a receiver that keeps one span per id (Phoenix, Jaeger, Tempo, the Collector's
deduplicating processors) ends with exactly one copy.

>>> from eventlog import RunStore
>>> from eventlog.events import RunCompleted
>>> store = RunStore.in_memory()
>>> run = store.create_run(store.ensure_session(), provider="p", model="m")
>>> _ = store.append_event(run.id, RunCompleted("stop", 1))
>>> shipped = []
>>> follow(store, lambda spans: shipped.append(spans[0].name), timeout=0)
1
>>> shipped, [(c.name, c.lag) for c in store.consumers()]
(['invoke_agent'], [('otel', 0)])
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING
from uuid import UUID

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan

from eventlog.errors import TelemetryExportError
from eventlog.integrations.otel.spans import ends_run, run_spans

if TYPE_CHECKING:
    from eventlog.store.run_store import RunStore

__all__ = ["END_EVENT_TYPES", "follow"]

#: The event types that can end a run (``RunStatusChanged`` only to a terminal status).
END_EVENT_TYPES = ("RunCompleted", "RunFailed", "RunCancelled", "RunStatusChanged")


def follow(
    store: RunStore,
    deliver: Callable[[Sequence[ReadableSpan]], None],
    *,
    name: str = "otel",
    timeout: float | None = None,
    include_content: bool = False,
    resource: Resource | None = None,
    retries: int | None = 0,
    backoff: float = 1.0,
    on_run: Callable[[UUID, int], None] | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Deliver every run that ends (from where consumer ``name`` left off); return how many.

    ``deliver(spans)`` must raise when the receiver did not take them (what
    :func:`~eventlog.integrations.otel.export.send` does). A failed delivery is tried again
    ``retries`` more times (None: forever) with a doubling wait from ``backoff`` seconds (at
    most 30 s), then the error propagates with the run unacknowledged. ``timeout`` ends the
    loop after that many idle seconds (None: never); ``stop`` ends it from another thread.
    ``on_run(run_id, spans)`` is called after each acknowledged run.
    """
    halt = stop or threading.Event()
    shipped = 0
    with store.subscribe(
        name=name, ack="manual", event_types=END_EVENT_TYPES, timeout=timeout
    ) as sub:
        if stop is not None:

            def close_on_stop() -> None:
                halt.wait()
                sub.close()

            threading.Thread(target=close_on_stop, daemon=True).start()
        for record in sub:
            if not ends_run(record):
                continue
            run = store.get_run(record.run_id)
            if run is not None:  # deleted since it ended: nothing to ship
                spans = run_spans(
                    run,
                    store.list_events(run.id),
                    include_content=include_content,
                    resource=resource,
                )
                _deliver_with_retries(deliver, spans, retries, backoff, halt)
                shipped += 1
            sub.ack(record.position)
            if run is not None and on_run is not None:
                on_run(run.id, len(spans))
    return shipped


def _deliver_with_retries(
    deliver: Callable[[Sequence[ReadableSpan]], None],
    spans: Sequence[ReadableSpan],
    retries: int | None,
    backoff: float,
    halt: threading.Event,
) -> None:
    attempt = 0
    while True:
        try:
            deliver(spans)
            return
        except TelemetryExportError:
            attempt += 1
            if (retries is not None and attempt > retries) or halt.is_set():
                raise
            # an outage: wait (interruptible by ``stop``), then send the same spans again
            if halt.wait(min(30.0, backoff * 2 ** (attempt - 1))):
                raise
