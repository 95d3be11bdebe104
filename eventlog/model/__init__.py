"""What is stored and returned: events, records, run state and status, the event-type registry.

``records`` (sessions, runs, streams, events), ``state`` (a run's fold and the lifecycle rule:
a terminal run never moves), ``status``, ``events``, ``messages``, ``registry``,
``validation``. Pure data and rules: nothing here does I/O or imports another layer of
eventlog.
"""
