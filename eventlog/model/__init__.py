"""What is stored and returned: events, records, run status, the event-type registry, validation.

Pure data and rules: nothing here does I/O or imports another layer of eventlog.
"""
