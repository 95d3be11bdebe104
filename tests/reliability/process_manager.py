"""A process manager for the ack-with-append SIGKILL test: consume inputs, emit outputs.

:func:`run_process_manager` subscribes to the log as the persistent consumer ``pm`` (manual
acks) and, for each input event (an event of the input stream), writes in ONE
``append_many`` with ``ack=`` (``Subscription.ack_with``): the input's position as a new
stream of its own (created by its first append, ``expected_seq=0``) and a line in the shared
output stream, together with the consumer's new position. It returns after the last input.
Killed at any moment, the outputs of an input and its ack land together or not at all, so a
restarted process manager produces every output exactly once.
"""

from __future__ import annotations

import random
from multiprocessing.synchronize import Event as EventFlag
from uuid import UUID

from eventlog import AppendRequest, RunStore, stream_id_for
from eventlog.testing.event_types import TicketTagged

__all__ = ["CONSUMER", "INPUTS", "OUTPUTS", "OUT_KIND", "output_stream", "run_process_manager"]

CONSUMER = "pm"
IN_KIND = "reliability.input"
OUT_KIND = "reliability.output"
INPUTS: UUID = stream_id_for(IN_KIND, "inputs")
OUTPUTS: UUID = stream_id_for(OUT_KIND, "all")


def output_stream(position: int) -> UUID:
    """The stream that the output of the input at ``position`` creates."""
    return stream_id_for(OUT_KIND, f"input-{position}")


def run_process_manager(path: str, last_input: int, seed: int, ready: EventFlag) -> None:
    """Process every input after the consumer's position, up to ``last_input``; then return."""
    rng = random.Random(seed)
    with RunStore.open(path) as store:
        ready.set()
        sub = store.subscribe(name=CONSUMER, ack="manual", batch_size=rng.randint(1, 8))
        with sub:
            if sub.position >= last_input:
                return
            for record in sub:
                if record.run_id != INPUTS:
                    continue  # an output of ours
                position = record.position
                tag = [TicketTagged(str(position))]
                sub.ack_with(
                    [
                        AppendRequest(output_stream(position), tag, expected_seq=0, kind=OUT_KIND),
                        AppendRequest(OUTPUTS, tag, kind=OUT_KIND),
                    ]
                )
                if position >= last_input:
                    return
